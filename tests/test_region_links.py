"""The hub's links to the regions (issue 13, item 4): TLS to every sandbox, the hub's client certificate where the
region asks for one, and nothing reaches a region over a link that is not what it should be.

The 川渝 signature's replay and tampering refusals are in ``test_region_sichuan_chongqing.py``; the conformance
rules ``LINK-*`` check every adapter the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.domain import CardCredential, CardStatus
from adapters.errors import AdapterError, RegionUnavailable
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from regions.certificates import DEV_CA_NAME, Authority
from regions.sandbox import RunningSandbox
from tests.conftest import REGION_IDS, StartSandbox

T = 5.0
MakeAdapter = Callable[..., Awaitable[RegionAdapter]]


@pytest.fixture(params=REGION_IDS)
async def sandbox(start_region: StartSandbox, request: pytest.FixtureRequest) -> RunningSandbox:
    return await start_region(request.param)


@pytest.fixture
async def make_adapter(sandbox: RunningSandbox) -> AsyncIterator[MakeAdapter]:
    """The region's adapter with its configured options, changed as the test says; closed after the test."""
    made: list[RegionAdapter] = []
    config = sandbox.config

    async def make(endpoint: str = "", **options: str | None) -> RegionAdapter:
        changed = {k: v for k, v in {**config.options, **options}.items() if v is not None}
        cls = AdapterRegistry.from_entry_points().get(config.adapter)
        made.append(cls(AdapterSettings(config.region_id, endpoint or sandbox.address, changed)))
        await made[-1].start()
        return made[-1]

    yield make
    for adapter in made:
        await adapter.close()


def normal_card(sandbox: RunningSandbox) -> CardCredential:
    row = next(r for r in sandbox.system.cards.values() if r.card.status is CardStatus.NORMAL)
    card, name = row.card, sandbox.system.people[row.ssn].holder.name
    return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)


def reached(sandbox: RunningSandbox) -> int:
    assert sandbox.wiretap is not None
    return len(sandbox.wiretap.requests)


async def test_every_sandbox_serves_tls_and_the_configured_adapter_reaches_it(
    sandbox: RunningSandbox, make_adapter: MakeAdapter
) -> None:
    adapter = await make_adapter()

    record = await adapter.get_card(normal_card(sandbox), timeout=T)

    assert record.card.status is CardStatus.NORMAL
    assert sandbox.address.startswith("https://") or "://" not in sandbox.address  # gRPC: host:port, TLS
    assert sandbox.config.sandbox.tls_cert.startswith("-----BEGIN CERTIFICATE-----")


async def test_plaintext_to_a_tls_sandbox_fails_and_reaches_nothing(
    sandbox: RunningSandbox, make_adapter: MakeAdapter
) -> None:
    plain = sandbox.address.replace("https://", "http://")
    adapter = await make_adapter(plain, plaintext="true")  # the gRPC adapter's opt-out; HTTP ones read the scheme
    before = reached(sandbox)

    with pytest.raises(AdapterError):
        await adapter.get_card(normal_card(sandbox), timeout=T)

    assert reached(sandbox) == before


async def test_an_untrusted_region_certificate_is_refused_before_anything_is_sent(
    sandbox: RunningSandbox, make_adapter: MakeAdapter, tmp_path: Path
) -> None:
    stranger = Authority(tmp_path / "stranger").ensure(DEV_CA_NAME)  # same name as the region's CA, another key
    adapter = await make_adapter(tls_ca=stranger.ca.read_text())
    before = reached(sandbox)

    with pytest.raises(RegionUnavailable) as caught:
        await adapter.get_card(normal_card(sandbox), timeout=T)

    assert caught.value.may_have_reached is False and caught.value.retryable
    assert reached(sandbox) == before


async def test_a_region_that_asks_for_the_hubs_certificate_refuses_a_link_without_it(
    sandbox: RunningSandbox, make_adapter: MakeAdapter
) -> None:
    asks = bool(sandbox.config.sandbox.tls_client_ca)
    adapter = await make_adapter(tls_cert=None, tls_key=None)
    before = reached(sandbox)

    if not asks:  # 川渝 knows the hub by its signatures and asks for no certificate
        assert sandbox.config.region_id == "sichuan-chongqing"
        await adapter.check_health(timeout=T)
        return
    with pytest.raises(AdapterError):
        await adapter.get_card(normal_card(sandbox), timeout=T)
    assert reached(sandbox) == before
    assert sandbox.config.region_id in {"yangtze-delta", "beijing-tianjin-hebei"}


def test_tls_options_go_together(sandbox: RunningSandbox) -> None:
    config = sandbox.config
    cls = AdapterRegistry.from_entry_points().get(config.adapter)
    options = {**config.options, "tls_cert": config.sandbox.tls_cert}
    options.pop("tls_key", None)

    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        cls(replace(AdapterSettings(config.region_id, sandbox.address), options=options))
