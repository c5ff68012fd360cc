"""The 京津冀 adapter against the real Beijing–Tianjin–Hebei sandbox (native gRPC card centre)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest

from adapters.domain import (
    ApplyCard,
    Card,
    CardAction,
    CardCredential,
    CardStatus,
    ChangeCard,
    ReplaceCard,
    ReplaceReason,
    Stage,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    RegionTimeout,
    RegionUnavailable,
)
from adapters.interface import AdapterSettings
from adapters.jingjinji import JingjinjiAdapter
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceStub
from regions.cardsystem import CardRow, CardSystem, PersonRow
from regions.sandbox import RunningSandbox

REGION = "beijing-tianjin-hebei"
TIMEOUT = 5.0
UNKNOWN_SSN = "110101199003071234"

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]


@pytest.fixture
async def sandbox(start_region: StartSandbox) -> RunningSandbox:
    return await start_region(REGION)


@pytest.fixture
async def adapter(sandbox: RunningSandbox) -> AsyncIterator[JingjinjiAdapter]:
    adapter = JingjinjiAdapter(AdapterSettings(REGION, sandbox.address))
    await adapter.start()
    yield adapter
    await adapter.close()


def card_in(system: CardSystem, status: CardStatus) -> CardRow:
    return next(row for row in system.cards.values() if row.card.status is status)


def credential(system: CardSystem, row: CardRow) -> CardCredential:
    card = row.card
    name = system.people[row.ssn].holder.name
    return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)


def person_without_card(system: CardSystem) -> PersonRow:
    return next(
        p for p in system.people.values() if not p.card_numbers and not p.applications and not p.fails_production
    )


def change(system: CardSystem, row: CardRow, action: CardAction, request_id: str) -> ChangeCard:
    return ChangeCard(request_id, credential(system, row), action)


# --- reads --------------------------------------------------------------------------------------


async def test_get_card_returns_holder_card_and_insurance(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    system = sandbox.system
    row = next(
        r
        for r in system.cards.values()
        if r.card.status is CardStatus.NORMAL and system.people[r.ssn].insurance is not None
    )
    person = system.people[row.ssn]

    record = await adapter.get_card(credential(system, row), timeout=TIMEOUT)

    assert record.holder == person.holder
    assert record.card == row.card
    assert record.insurances == (person.insurance,)


@pytest.mark.parametrize(
    "status",
    [
        CardStatus.SEALED,
        CardStatus.LOST,
        CardStatus.LOCKED,
        CardStatus.TEMPORARILY_LOST,
        CardStatus.CANCELLED,
    ],
)
async def test_get_card_reports_any_status(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox, status: CardStatus
) -> None:
    row = card_in(sandbox.system, status)

    record = await adapter.get_card(credential(sandbox.system, row), timeout=TIMEOUT)

    assert record.card.status is status


async def test_get_card_with_another_persons_ssn_is_a_holder_mismatch(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox
) -> None:
    row = card_in(sandbox.system, CardStatus.NORMAL)
    other = next(ssn for ssn in sandbox.system.people if ssn != row.ssn)
    wrong = CardCredential(other, row.card.card_number, row.card.card_identification_code, row.card.issuing_area, "")

    with pytest.raises(HolderMismatch):
        await adapter.get_card(wrong, timeout=TIMEOUT)


async def test_get_unknown_card_is_not_found(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    assert "X00000019" not in sandbox.system.cards
    unknown = CardCredential(UNKNOWN_SSN, "X00000019", "", "110101", "")

    with pytest.raises(CardNotFound):
        await adapter.get_card(unknown, timeout=TIMEOUT)


async def test_knows_holder(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    known = next(iter(sandbox.system.people))
    assert UNKNOWN_SSN not in sandbox.system.people

    assert await adapter.knows_holder(known, timeout=TIMEOUT) is True
    assert await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT) is False


async def test_check_health_answers(adapter: JingjinjiAdapter) -> None:
    await adapter.check_health(timeout=TIMEOUT)


# --- applications -------------------------------------------------------------------------------


async def test_application_moves_to_issued_on_the_sandbox_clock(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox
) -> None:
    person = person_without_card(sandbox.system)
    ssn, name = person.holder.social_security_number, person.holder.name
    area = person.insurance.insured_area if person.insurance else ssn[:6]

    submitted = await adapter.apply_card(ApplyCard("apply-1", ssn, name, area), timeout=TIMEOUT)
    progress = await adapter.get_application(ssn, name, timeout=TIMEOUT)
    sandbox.system.clock.advance(3600)
    issued = await adapter.get_application(ssn, name, timeout=TIMEOUT)

    assert submitted.stage is Stage.SUBMITTED
    assert progress.application_id == submitted.application_id
    assert progress.stage is Stage.SUBMITTED
    assert issued.stage is Stage.ISSUED
    assert [e.stage for e in issued.history] == [
        Stage.SUBMITTED,
        Stage.BANK_ACCOUNT_OPENED,
        Stage.AT_CARD_FACTORY,
        Stage.KEYS_LOADED,
        Stage.READY_AT_OUTLET,
        Stage.ISSUED,
    ]
    assert issued.card is not None
    assert issued.card.status is CardStatus.SEALED


async def test_application_refusals(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    holder = sandbox.system.people[card_in(sandbox.system, CardStatus.NORMAL).ssn].holder
    person = person_without_card(sandbox.system).holder
    ssn = holder.social_security_number

    with pytest.raises(CardAlreadyHeld):
        await adapter.apply_card(ApplyCard("apply-2", ssn, holder.name, "110101"), timeout=TIMEOUT)
    with pytest.raises(HolderNotFound):
        await adapter.apply_card(ApplyCard("apply-3", UNKNOWN_SSN, "王伟", "110101"), timeout=TIMEOUT)
    with pytest.raises(ApplicationNotFound):
        await adapter.get_application(person.social_security_number, person.name, timeout=TIMEOUT)


# --- status changes and replacement ---------------------------------------------------------------


async def test_enable_report_loss_and_cancel_loss(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    system = sandbox.system
    row = card_in(system, CardStatus.SEALED)

    enabled = await adapter.change_card(change(system, row, CardAction.ENABLE, "c-1"), timeout=TIMEOUT)
    lost = await adapter.change_card(change(system, row, CardAction.REPORT_LOSS, "c-2"), timeout=TIMEOUT)
    back = await adapter.change_card(change(system, row, CardAction.CANCEL_LOSS, "c-3"), timeout=TIMEOUT)

    assert enabled.status is CardStatus.NORMAL
    assert lost.status is CardStatus.TEMPORARILY_LOST
    assert back.status is CardStatus.NORMAL
    assert system.cards[row.card.card_number].card.status is CardStatus.NORMAL


async def test_change_not_allowed_from_status_is_a_conflict(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    row = card_in(sandbox.system, CardStatus.NORMAL)

    with pytest.raises(CardStateConflict) as caught:
        await adapter.change_card(change(sandbox.system, row, CardAction.ENABLE, "c-4"), timeout=TIMEOUT)

    assert caught.value.metadata == {"action": "ENABLE", "status": "NORMAL"}


async def test_replace_cancels_the_card_and_starts_an_application(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox
) -> None:
    system = sandbox.system
    row = card_in(system, CardStatus.NORMAL)
    request = ReplaceCard("r-1", credential(system, row), ReplaceReason.DAMAGED)

    application = await adapter.replace_card(request, timeout=TIMEOUT)

    assert application.stage is Stage.SUBMITTED
    assert system.cards[row.card.card_number].card.status is CardStatus.CANCELLED
    with pytest.raises(CardStateConflict) as caught:
        await adapter.replace_card(ReplaceCard("r-2", request.credential, request.reason), timeout=TIMEOUT)
    assert caught.value.metadata == {"action": "REPLACE", "status": "CANCELLED"}


# --- idempotency --------------------------------------------------------------------------------


async def test_replayed_request_id_gives_the_same_answer_and_one_change(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox
) -> None:
    system = sandbox.system
    row = card_in(system, CardStatus.NORMAL)
    changes: list[Card] = []
    system.listeners.append(lambda card, _ssn: changes.append(card))
    request = change(system, row, CardAction.REPORT_LOSS, "same-id")

    first = await adapter.change_card(request, timeout=TIMEOUT)
    again = await adapter.change_card(request, timeout=TIMEOUT)

    assert again == first
    assert [c.status for c in changes] == [CardStatus.TEMPORARILY_LOST]


async def test_request_id_reused_for_another_body_is_refused(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox
) -> None:
    system = sandbox.system
    row = card_in(system, CardStatus.NORMAL)
    await adapter.change_card(change(system, row, CardAction.REPORT_LOSS, "reused"), timeout=TIMEOUT)

    with pytest.raises(IdempotencyKeyReused) as caught:
        await adapter.change_card(change(system, row, CardAction.CANCEL_LOSS, "reused"), timeout=TIMEOUT)

    assert caught.value.metadata == {"request_id": "reused"}
    assert system.cards[row.card.card_number].card.status is CardStatus.TEMPORARILY_LOST


# --- faults -------------------------------------------------------------------------------------


@pytest.mark.parametrize("knobs", [{"down": True}, {"error_rate": 1.0}])
async def test_refused_calls_are_region_unavailable(
    adapter: JingjinjiAdapter, sandbox: RunningSandbox, knobs: dict[str, object]
) -> None:
    sandbox.faults.update(knobs)

    with pytest.raises(RegionUnavailable) as caught:
        await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT)

    assert caught.value.retryable and not caught.value.may_have_reached
    assert caught.value.region == REGION


async def test_slow_region_is_a_timeout(adapter: JingjinjiAdapter, sandbox: RunningSandbox) -> None:
    sandbox.faults.latency_ms = 500

    with pytest.raises(RegionTimeout) as caught:
        await adapter.check_health(timeout=0.1)

    assert caught.value.may_have_reached


async def test_nothing_listening_is_region_unavailable() -> None:
    adapter = JingjinjiAdapter(AdapterSettings(REGION, "127.0.0.1:1"))
    await adapter.start()
    try:
        with pytest.raises(RegionUnavailable):
            await adapter.check_health(timeout=TIMEOUT)
    finally:
        await adapter.close()


# --- the card centre's own wire -----------------------------------------------------------------


async def test_card_centre_answers_malformed_input_with_code_1000(sandbox: RunningSandbox) -> None:
    row = card_in(sandbox.system, CardStatus.NORMAL)
    fields = {"sfzh": row.ssn, "kh": row.card.card_number, "sbm": row.card.card_identification_code}
    async with grpc.aio.insecure_channel(sandbox.address) as channel:
        stub = CardCenterServiceStub(channel)
        bad_action = await stub.ChangeCardState(pb.ChangeCardStateRequest(msgid="m", action="FLY", **fields))
        no_msgid = await stub.ChangeCardState(pb.ChangeCardStateRequest(action="ENABLE", **fields))

    assert bad_action.result.code == 1000
    assert no_msgid.result.code == 1000
    assert sandbox.system.cards[row.card.card_number].card.status is CardStatus.NORMAL
