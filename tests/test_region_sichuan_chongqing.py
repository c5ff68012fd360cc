"""The 川渝 adapter against the real 川渝 sandbox on loopback port 0."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from importlib.metadata import entry_points

import aiohttp
import pytest

from adapters import errors
from adapters.domain import (
    ApplyCard,
    Card,
    CardAction,
    CardCredential,
    CardStatus,
    ChangeCard,
    Delivery,
    ReplaceCard,
    ReplaceReason,
    Stage,
)
from adapters.identifiers import ssn_check
from adapters.interface import AdapterSettings
from adapters.sichuan_chongqing import SichuanChongqingAdapter, codec, translated_errors
from adapters.sichuan_chongqing.signing import signed_headers
from regions.cardsystem import PersonRow
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


def person_without_card(sandbox: RunningSandbox) -> PersonRow:
    return next(p for p in sandbox.system.people.values() if not p.card_numbers and not p.fails_production)


def status_changes(sandbox: RunningSandbox) -> list[Card]:
    changes: list[Card] = []
    sandbox.system.listeners.append(lambda card, _: changes.append(card))
    return changes


def apply_request(person: PersonRow, request_id: str = "apply-1") -> ApplyCard:
    ssn = person.holder.social_security_number
    return ApplyCard(request_id, ssn, person.holder.name, ssn[:6], Delivery.OUTLET)


# --- reads ---------------------------------------------------------------------------------------------


async def test_get_card_of_a_normal_card_returns_holder_and_insurance(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    row = next(
        r
        for r in sandbox.system.cards.values()
        if r.card.status is CardStatus.NORMAL and sandbox.system.people[r.ssn].insurance
    )
    person = sandbox.system.people[row.ssn]
    cred = CardCredential(row.ssn, row.card.card_number, row.card.card_identification_code, "", person.holder.name)

    record = await adapter.get_card(cred, timeout=T)

    assert record.card == row.card
    assert record.holder == person.holder
    assert record.insurances == (person.insurance,)


@pytest.mark.parametrize("status", [s for s in CardStatus if s is not CardStatus.NORMAL])
async def test_get_card_returns_each_non_normal_status(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter, status: CardStatus
) -> None:
    record = await adapter.get_card(credential(sandbox, status), timeout=T)

    assert record.card.status is status


@pytest.mark.parametrize("field", ["social_security_number", "card_identification_code"])
async def test_get_card_with_a_field_of_another_card_is_a_holder_mismatch(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter, field: str
) -> None:
    cred, other = credential(sandbox, CardStatus.NORMAL), credential(sandbox, CardStatus.SEALED)

    with pytest.raises(errors.HolderMismatch):
        await adapter.get_card(replace(cred, **{field: getattr(other, field)}), timeout=T)


async def test_get_card_of_an_unknown_card_is_card_not_found(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    assert "X00000019" not in sandbox.system.cards

    with pytest.raises(errors.CardNotFound):
        await adapter.get_card(replace(cred, card_number="X00000019"), timeout=T)


async def test_knows_holder(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    known = next(iter(sandbox.system.people))
    stranger = "11010119900101123" + ssn_check("11010119900101123")
    assert stranger not in sandbox.system.people

    assert await adapter.knows_holder(known, timeout=T) is True
    assert await adapter.knows_holder(stranger, timeout=T) is False


async def test_check_health_returns_when_the_region_answers(adapter: SichuanChongqingAdapter) -> None:
    await adapter.check_health(timeout=T)


# --- applications --------------------------------------------------------------------------------------


async def test_an_application_moves_through_every_stage_to_issued(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    person = person_without_card(sandbox)
    ssn, name = person.holder.social_security_number, person.holder.name

    submitted = await adapter.apply_card(apply_request(person), timeout=T)
    assert submitted.stage is Stage.SUBMITTED
    assert (await adapter.get_application(ssn, name, timeout=T)).stage is Stage.SUBMITTED

    seen = []
    for _ in range(5):
        sandbox.system.clock.advance(sandbox.system.stage_seconds)
        seen.append((await adapter.get_application(ssn, name, timeout=T)).stage)
    assert seen == [
        Stage.BANK_ACCOUNT_OPENED,
        Stage.AT_CARD_FACTORY,
        Stage.KEYS_LOADED,
        Stage.READY_AT_OUTLET,
        Stage.ISSUED,
    ]
    issued = await adapter.get_application(ssn, name, timeout=T)
    assert issued.application_id == submitted.application_id
    assert [e.stage for e in issued.history] == [Stage.SUBMITTED, *seen]
    assert issued.card is not None and issued.card.status is CardStatus.SEALED
    assert issued.card.card_number in sandbox.system.cards


async def test_a_failed_application_carries_its_reason(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    person = person_without_card(sandbox)
    person.fails_production = True  # the seed has few such people; make one
    await adapter.apply_card(apply_request(person), timeout=T)
    sandbox.system.clock.advance(sandbox.system.stage_seconds * 10)

    failed = await adapter.get_application(person.holder.social_security_number, person.holder.name, timeout=T)

    assert failed.stage is Stage.FAILED
    assert failed.failure_reason
    assert failed.card is None


async def test_apply_refusals(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    holder = sandbox.system.people[credential(sandbox, CardStatus.NORMAL).social_security_number]
    person = person_without_card(sandbox)
    stranger = "11010119900101123" + ssn_check("11010119900101123")

    with pytest.raises(errors.CardAlreadyHeld):
        await adapter.apply_card(apply_request(holder, "a1"), timeout=T)
    with pytest.raises(errors.HolderMismatch):
        await adapter.apply_card(replace(apply_request(person, "a2"), holder_name="无名"), timeout=T)
    with pytest.raises(errors.HolderNotFound):
        await adapter.apply_card(replace(apply_request(person, "a3"), social_security_number=stranger), timeout=T)
    with pytest.raises(errors.ApplicationNotFound):
        await adapter.get_application(person.holder.social_security_number, person.holder.name, timeout=T)


# --- status changes and replacement --------------------------------------------------------------------


async def test_enable_report_loss_and_cancel_loss(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    cred = credential(sandbox, CardStatus.SEALED)

    enabled = await adapter.change_card(ChangeCard("c1", cred, CardAction.ENABLE), timeout=T)
    lost = await adapter.change_card(ChangeCard("c2", cred, CardAction.REPORT_LOSS), timeout=T)
    found = await adapter.change_card(ChangeCard("c3", cred, CardAction.CANCEL_LOSS), timeout=T)

    assert (enabled.status, lost.status, found.status) == (
        CardStatus.NORMAL,
        CardStatus.TEMPORARILY_LOST,
        CardStatus.NORMAL,
    )
    assert sandbox.system.cards[cred.card_number].card == found


@pytest.mark.parametrize(
    ("status", "action"),
    [(CardStatus.NORMAL, CardAction.ENABLE), (CardStatus.LOST, CardAction.CANCEL_LOSS)],
)
async def test_a_change_not_allowed_from_the_status_is_a_conflict(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter, status: CardStatus, action: CardAction
) -> None:
    with pytest.raises(errors.CardStateConflict) as caught:
        await adapter.change_card(ChangeCard("c1", credential(sandbox, status), action), timeout=T)

    assert caught.value.metadata == {"action": action.name, "status": status.name}


async def test_replace_cancels_the_old_card_and_starts_an_application(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)

    application = await adapter.replace_card(ReplaceCard("r1", cred, ReplaceReason.DAMAGED), timeout=T)

    assert application.stage is Stage.SUBMITTED
    assert (await adapter.get_card(cred, timeout=T)).card.status is CardStatus.CANCELLED
    latest = await adapter.get_application(cred.social_security_number, cred.holder_name, timeout=T)
    assert latest.application_id == application.application_id


# --- idempotency ---------------------------------------------------------------------------------------


async def test_a_replayed_write_gets_the_same_answer_and_changes_state_once(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    changes = status_changes(sandbox)
    request = ChangeCard("same-id", cred, CardAction.REPORT_LOSS)

    first = await adapter.change_card(request, timeout=T)
    second = await adapter.change_card(request, timeout=T)

    assert first == second
    assert [c.status for c in changes] == [CardStatus.TEMPORARILY_LOST]


async def test_a_replayed_application_is_one_application(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    person = person_without_card(sandbox)

    first = await adapter.apply_card(apply_request(person), timeout=T)
    second = await adapter.apply_card(apply_request(person), timeout=T)

    assert first == second
    assert len(person.applications) == 1


async def test_a_request_id_reused_for_another_request_is_refused(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    await adapter.change_card(ChangeCard("reused", cred, CardAction.REPORT_LOSS), timeout=T)

    with pytest.raises(errors.IdempotencyKeyReused) as caught:
        await adapter.change_card(ChangeCard("reused", cred, CardAction.CANCEL_LOSS), timeout=T)

    assert caught.value.metadata == {"request_id": "reused"}
    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.TEMPORARILY_LOST


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


# --- faults --------------------------------------------------------------------------------------------


async def test_a_region_that_is_down_is_unavailable(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    sandbox.faults.down = True

    with pytest.raises(errors.RegionUnavailable):
        await adapter.check_health(timeout=T)


async def test_a_busy_region_is_unavailable_and_processes_nothing(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    changes = status_changes(sandbox)
    sandbox.faults.error_rate = 1.0

    with pytest.raises(errors.RegionUnavailable):
        await adapter.change_card(ChangeCard("c1", cred, CardAction.REPORT_LOSS), timeout=T)
    assert changes == []
    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.NORMAL


async def test_a_slow_region_times_out(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    sandbox.faults.latency_ms = 500

    with pytest.raises(errors.RegionTimeout):
        await adapter.get_card(credential(sandbox, CardStatus.NORMAL), timeout=0.1)


async def test_a_closed_port_is_unavailable(make_adapter: MakeAdapter) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    adapter = await make_adapter(endpoint=f"http://127.0.0.1:{port}")

    with pytest.raises(errors.RegionUnavailable):
        await adapter.check_health(timeout=T)


def test_the_adapter_is_registered_under_its_entry_point() -> None:
    (entry,) = [ep for ep in entry_points(group="yikatong.adapters") if ep.name == REGION]

    assert entry.load() is SichuanChongqingAdapter


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
