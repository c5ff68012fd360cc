"""The 川渝 protocol: signed requests, the server's own refusals, and where foreign errors are translated.

What every region adapter does alike is tested in ``test_region_adapters.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest

from adapters import errors
from adapters.domain import Card, CardAction, CardCredential, CardStatus, ChangeCard
from adapters.interface import AdapterSettings
from adapters.sichuan_chongqing import SichuanChongqingAdapter, codec, translated_errors
from adapters.sichuan_chongqing.signing import signed_headers
from regions.config import RegionConfig
from regions.sandbox import RunningSandbox

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]
MakeAdapter = Callable[..., Awaitable[SichuanChongqingAdapter]]

REGION = "sichuan-chongqing"
T = 5.0  # seconds each call may take


@pytest.fixture
async def sandbox(start_region: StartSandbox) -> RunningSandbox:
    return await start_region(REGION)


@pytest.fixture
async def make_adapter(sandbox: RunningSandbox, region_configs: dict[str, RegionConfig]) -> AsyncIterator[MakeAdapter]:
    """Build and start adapters (by default with the region's settings); all are closed after the test."""
    made: list[SichuanChongqingAdapter] = []

    async def make(
        endpoint: str = "", secret: str = "", clock: Callable[[], float] = time.time
    ) -> SichuanChongqingAdapter:
        options = {**region_configs[REGION].options, **({"secret": secret} if secret else {})}
        made.append(SichuanChongqingAdapter(AdapterSettings(REGION, endpoint or sandbox.address, options), clock=clock))
        await made[-1].start()
        return made[-1]

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
async def adapter(make_adapter: MakeAdapter) -> SichuanChongqingAdapter:
    return await make_adapter()


def credential(sandbox: RunningSandbox, status: CardStatus) -> CardCredential:
    row = next(r for r in sandbox.system.cards.values() if r.card.status is status)
    name = sandbox.system.people[row.ssn].holder.name
    return CardCredential(row.ssn, row.card.card_number, row.card.card_identification_code, row.card.issuing_area, name)


def status_changes(sandbox: RunningSandbox) -> list[Card]:
    changes: list[Card] = []
    sandbox.system.listeners.append(lambda card, _: changes.append(card))
    return changes


async def test_get_card_needs_no_issuing_area(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)

    record = await adapter.get_card(replace(cred, issuing_area=""), timeout=T)

    assert record.card == sandbox.system.cards[cred.card_number].card


# --- signatures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "skew"), [("not-the-shared-secret", 0.0), ("", -1000.0)], ids=["wrong-secret", "stale"]
)
async def test_a_badly_signed_write_is_refused_and_changes_nothing(
    sandbox: RunningSandbox, make_adapter: MakeAdapter, secret: str, skew: float
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    changes = status_changes(sandbox)
    adapter = await make_adapter(secret=secret, clock=lambda: time.time() + skew)

    with pytest.raises(errors.RegionProtocolError):
        await adapter.change_card(ChangeCard("c1", cred, CardAction.REPORT_LOSS), timeout=T)

    assert changes == []
    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.NORMAL


async def raw_post(
    sandbox: RunningSandbox, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.post(sandbox.address + path, data=body, headers=headers) as r:
        return r.status, json.loads(await r.read())


async def test_the_server_names_missing_and_stale_signatures(
    sandbox: RunningSandbox, region_configs: dict[str, RegionConfig]
) -> None:
    options = region_configs[REGION].options
    body = b'{"requestId": "x"}'
    stale = signed_headers(options["paas_id"], options["secret"], body, time.time() - 301)

    unsigned = {"code": "4010", "message": "request signature refused", "data": None}
    assert await raw_post(sandbox, "/v2/applications", body, {}) == (401, unsigned)
    assert (await raw_post(sandbox, "/v2/applications", body, stale))[1]["code"] == "4011"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"requestId": 7}', b'{"requestId": "x", "idNo": "1", "name": "n"}'],
)
async def test_malformed_input_is_a_400_not_a_500(
    sandbox: RunningSandbox, region_configs: dict[str, RegionConfig], body: bytes
) -> None:
    options = region_configs[REGION].options
    headers = signed_headers(options["paas_id"], options["secret"], body, time.time())

    status, reply = await raw_post(sandbox, "/v2/applications", body, headers)

    assert (status, reply["code"]) == (400, "4000")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), errors.RegionProtocolError),
        (ValueError("not JSON"), errors.RegionProtocolError),
        (TimeoutError(), errors.RegionTimeout),
        (codec.ErrorReply(503, "5030", "busy", None), errors.RegionUnavailable),
        (codec.ErrorReply(401, "4010", "refused", None), errors.RegionProtocolError),
        (codec.ErrorReply(409, "4090", "conflict", {"action": "ENABLE"}), errors.RegionProtocolError),
        (codec.ErrorReply(200, "4040", "a refusal must be a 4xx", None), errors.RegionProtocolError),
    ],
)
def test_foreign_errors_are_translated_at_one_choke_point(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected), translated_errors(REGION):
        raise raised
