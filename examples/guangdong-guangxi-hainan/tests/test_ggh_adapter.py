"""The adapter against the region's real sandbox: every RegionAdapter call, its refusals and its faults."""

from __future__ import annotations

import datetime as dt
import socket
import uuid
from dataclasses import replace

import pytest
from conftest import MakeAdapter, T, bill, card_row, credential
from yikatong_ggh import GuangdongGuangxiHainanAdapter

from adapters.domain import (
    ApplyCard,
    CardAction,
    CardStatus,
    ChangeCard,
    Delivery,
    FileRemoteCare,
    FilingType,
    InsuranceType,
    OutcomeState,
    ReplaceCard,
    ReplaceReason,
    Reversal,
    ServiceKind,
    Stage,
    StandInAdvice,
    VisitType,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    NotInsured,
    RegionProtocolError,
    RegionTimeout,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from adapters.identifiers import ssn_check
from adapters.interface import AdapterSettings
from regions.backend import Backend
from regions.policy import Accumulator

REGION = "guangdong-guangxi-hainan"
UNKNOWN_SSN = "44010619900101123" + ssn_check("44010619900101123")  # well-formed, not seeded


# --- cards -------------------------------------------------------------------------------------------------------


async def test_get_card_returns_the_region_record_whatever_the_status(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    for status in CardStatus:
        row = card_row(backend, status)
        cred = credential(backend, row)

        record = await adapter.get_card(replace(cred, issuing_area=""), timeout=T)

        assert record == backend.cards.record(row.ssn, row.card.card_number)
        assert record.card.status is status


async def test_all_three_provinces_are_seeded_on_their_own_city_codes(backend: Backend) -> None:
    areas = {row.card.issuing_area for row in backend.cards.cards.values()}

    assert {"440100", "440300", "450100", "460100", "460200"} <= areas
    assert {area[:2] for area in areas} == {"44", "45", "46"}


@pytest.mark.parametrize("wrong", ["ssn", "chip_code", "name"])
async def test_a_field_of_another_holder_is_a_holder_mismatch(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter, wrong: str
) -> None:
    cred = credential(backend, card_row(backend, CardStatus.NORMAL))
    other = credential(backend, card_row(backend, CardStatus.SEALED))
    field = {"ssn": "social_security_number", "chip_code": "card_identification_code", "name": "holder_name"}[wrong]

    with pytest.raises(HolderMismatch):
        await adapter.get_card(replace(cred, **{field: getattr(other, field)}), timeout=T)


async def test_an_unknown_card_is_not_found_and_an_unknown_person_unknown(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    cred = credential(backend, card_row(backend, CardStatus.NORMAL))

    with pytest.raises(CardNotFound) as caught:
        await adapter.get_card(replace(cred, card_number="X00000019"), timeout=T)
    assert caught.value.metadata == {"region": REGION}
    assert await adapter.knows_holder(cred.social_security_number, timeout=T) is True
    assert await adapter.knows_holder(UNKNOWN_SSN, timeout=T) is False


async def test_an_application_moves_to_issued_with_its_card(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    person = next(p for p in backend.cards.people.values() if not p.card_numbers and not p.fails_production)
    ssn, name = person.holder.social_security_number, person.holder.name
    request = ApplyCard(str(uuid.uuid4()), ssn, name, ssn[:6], Delivery.MAIL)

    submitted = await adapter.apply_card(request, timeout=T)
    backend.cards.clock.advance(10 * backend.cards.stage_seconds)
    issued = await adapter.get_application(ssn, name, timeout=T)

    assert submitted.stage is Stage.SUBMITTED and submitted.card is None
    assert issued.application_id == submitted.application_id
    assert [e.stage for e in issued.history][-3:] == [Stage.KEYS_LOADED, Stage.MAILED, Stage.ISSUED]
    assert issued.card is not None and issued.card.status is CardStatus.SEALED
    with pytest.raises(CardAlreadyHeld):
        await adapter.apply_card(replace(request, request_id=str(uuid.uuid4())), timeout=T)


async def test_apply_and_progress_refusals(backend: Backend, adapter: GuangdongGuangxiHainanAdapter) -> None:
    cred = credential(backend, card_row(backend, CardStatus.NORMAL))

    with pytest.raises(HolderNotFound):
        await adapter.apply_card(ApplyCard("a1", UNKNOWN_SSN, "张三", "440100"), timeout=T)
    with pytest.raises(HolderMismatch):
        await adapter.apply_card(ApplyCard("a2", cred.social_security_number, "不是他", "440100"), timeout=T)
    with pytest.raises(CardAlreadyHeld):
        await adapter.apply_card(ApplyCard("a3", cred.social_security_number, cred.holder_name, "440100"), timeout=T)
    with pytest.raises(ApplicationNotFound):
        await adapter.get_application(cred.social_security_number, cred.holder_name, timeout=T)


async def test_report_loss_cancel_it_and_a_conflict(backend: Backend, adapter: GuangdongGuangxiHainanAdapter) -> None:
    cred = credential(backend, card_row(backend, CardStatus.NORMAL))

    lost = await adapter.change_card(ChangeCard("c1", cred, CardAction.REPORT_LOSS), timeout=T)
    found = await adapter.change_card(ChangeCard("c2", cred, CardAction.CANCEL_LOSS), timeout=T)
    with pytest.raises(CardStateConflict) as caught:
        await adapter.change_card(ChangeCard("c3", cred, CardAction.ENABLE), timeout=T)

    assert (lost.status, found.status) == (CardStatus.TEMPORARILY_LOST, CardStatus.NORMAL)
    assert caught.value.metadata == {"action": "ENABLE", "status": "NORMAL"}


async def test_replace_cancels_the_card_once(backend: Backend, adapter: GuangdongGuangxiHainanAdapter) -> None:
    cred = credential(backend, card_row(backend, CardStatus.LOST))

    application = await adapter.replace_card(ReplaceCard("r1", cred, ReplaceReason.LOST), timeout=T)
    with pytest.raises(CardStateConflict) as caught:
        await adapter.replace_card(ReplaceCard("r2", cred, ReplaceReason.LOST), timeout=T)

    assert application.stage is Stage.SUBMITTED
    assert backend.cards.cards[cred.card_number].card.status is CardStatus.CANCELLED
    assert caught.value.metadata == {"action": "REPLACE", "status": "CANCELLED"}


async def test_a_replayed_write_changes_once_and_a_reused_id_is_refused(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    cred = credential(backend, card_row(backend, CardStatus.SEALED))
    changes: list[object] = []
    backend.cards.listeners.append(lambda card, _: changes.append(card))
    enable = ChangeCard("same-id", cred, CardAction.ENABLE)

    first = await adapter.change_card(enable, timeout=T)
    again = await adapter.change_card(enable, timeout=T)
    with pytest.raises(IdempotencyKeyReused) as caught:
        await adapter.change_card(replace(enable, action=CardAction.REPORT_LOSS), timeout=T)

    assert first == again and first.status is CardStatus.NORMAL
    assert len(changes) == 1
    assert caught.value.metadata == {"request_id": "same-id"}


# --- medical settlement --------------------------------------------------------------------------------------------


def insured_area(backend: Backend, ssn: str) -> str:
    return backend.medical.insured[ssn].insured_area


def money(backend: Backend, ssn: str) -> tuple[Accumulator, int]:
    return backend.medical.accumulator(ssn, VisitType.INPATIENT), backend.medical.insured[ssn].account_balance_fen


@pytest.mark.parametrize("province", ["44", "45", "46"])
async def test_pre_settle_is_the_province_policy_split_and_changes_nothing(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter, province: str
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.EMPLOYEE, province=province)
    cred, area, before = credential(backend, row), insured_area(backend, row.ssn), money(backend, row.ssn)
    policy = backend.medical.policies[(province, InsuranceType.EMPLOYEE, VisitType.INPATIENT)]

    split = await adapter.pre_settle(bill(cred, area), timeout=T)

    assert split == backend.medical.pre_settle(bill(cred, area))
    assert split.deductible_fen == policy.deductible_first_fen
    assert split.violations() == []
    assert money(backend, row.ssn) == before


async def test_settle_replays_its_message_id_and_moves_the_money_once(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.EMPLOYEE, province="44")
    cred, (acc, balance) = credential(backend, row), money(backend, row.ssn)
    the_bill = bill(cred, insured_area(backend, row.ssn))

    settled = await adapter.settle(the_bill, timeout=T)
    replayed = await adapter.settle(the_bill, timeout=T)
    with pytest.raises(IdempotencyKeyReused):
        await adapter.settle(replace(the_bill, lines=the_bill.lines[:1]), timeout=T)
    outcome = await adapter.settlement_outcome(the_bill.request_id, timeout=T)

    split = settled.split
    assert replayed == settled and settled.request_id == the_bill.request_id
    assert outcome.state is OutcomeState.SETTLED and outcome.settlement == settled
    assert money(backend, row.ssn) == (
        Accumulator(acc.deductible_used_fen + split.deductible_fen, acc.fund_paid_fen + split.fund_pay_fen),
        balance - split.account_pay_fen,
    )


async def test_a_correction_restores_the_money_and_voids_an_unseen_id(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.EMPLOYEE, province="45")
    cred, before = credential(backend, row), money(backend, row.ssn)
    area = insured_area(backend, row.ssn)
    applied, unseen = bill(cred, area), bill(cred, area)

    await adapter.settle(applied, timeout=T)
    await adapter.correct_settlement(applied.request_id, timeout=T)
    await adapter.correct_settlement(applied.request_id, timeout=T)  # harmless to repeat
    await adapter.correct_settlement(unseen.request_id, timeout=T)
    with pytest.raises(SettlementCorrected) as caught:
        await adapter.settle(unseen, timeout=T)

    assert money(backend, row.ssn) == before
    assert (await adapter.settlement_outcome(applied.request_id, timeout=T)).state is OutcomeState.CORRECTED
    assert caught.value.metadata == {"request_id": unseen.request_id}
    never = await adapter.settlement_outcome("never-seen", timeout=T)
    assert never.state is OutcomeState.NOT_FOUND and never.settlement is None


async def test_a_reversal_happens_once(backend: Backend, adapter: GuangdongGuangxiHainanAdapter) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.RESIDENT, province="46")
    cred, before = credential(backend, row), money(backend, row.ssn)
    the_bill = bill(cred, insured_area(backend, row.ssn))
    await adapter.settle(the_bill, timeout=T)
    reversal = Reversal("rev-1", the_bill.request_id, row.ssn, "病人退费")

    await adapter.reverse_settlement(reversal, timeout=T)
    await adapter.reverse_settlement(reversal, timeout=T)  # the same reversal again answers alike
    with pytest.raises(SettlementNotSettled) as not_settled:
        await adapter.reverse_settlement(replace(reversal, request_id="rev-2"), timeout=T)
    with pytest.raises(SettlementNotFound) as not_found:
        await adapter.reverse_settlement(Reversal("rev-3", "no-such-settlement", row.ssn, ""), timeout=T)

    assert money(backend, row.ssn) == before
    assert not_settled.value.metadata == {"settlement_id": the_bill.request_id, "state": "REVERSED"}
    assert not_found.value.metadata == {"request_id": "no-such-settlement"}


async def test_a_long_term_filing_lifts_the_ratio_and_no_insurance_is_refused(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.EMPLOYEE, province="44")
    cred, area = credential(backend, row), insured_area(backend, row.ssn)
    today = backend.medical.today()
    until = (today + dt.timedelta(days=365)).isoformat()
    filing_request = FileRemoteCare("f1", cred, "310000", FilingType.LONG_TERM_RESIDENT, today.isoformat(), until)
    unfiled = await adapter.pre_settle(bill(cred, area), timeout=T)

    filing = await adapter.file_remote_care(filing_request, timeout=T)
    filed = await adapter.pre_settle(bill(cred, area), timeout=T)

    assert (filing.treatment_area, filing.filing_type) == ("310000", FilingType.LONG_TERM_RESIDENT)
    assert (filing.valid_from, filing.valid_until) == (filing_request.valid_from, filing_request.valid_until)
    assert await adapter.file_remote_care(filing_request, timeout=T) == filing
    assert filed.fund_pay_fen > unfiled.fund_pay_fen
    uninsured = next(r for r in backend.cards.cards.values() if backend.cards.people[r.ssn].insurance is None)
    with pytest.raises(NotInsured):
        await adapter.pre_settle(bill(credential(backend, uninsured), area), timeout=T)


async def test_a_stand_in_advice_is_recorded_once(backend: Backend, adapter: GuangdongGuangxiHainanAdapter) -> None:
    row = card_row(backend, CardStatus.NORMAL)
    advice = StandInAdvice(
        "adv-1", row.card.card_number, row.card.issuing_area, ServiceKind.MUSEUM, "310104",
        "2026-11-28T09:30:00+08:00", "2026-11-28T09:10:00+08:00",
    )  # fmt: skip

    await adapter.send_stand_in_advice(advice, timeout=T)
    await adapter.send_stand_in_advice(advice, timeout=T)

    assert backend.cards.advices == {"adv-1": advice}


# --- faults and transport ------------------------------------------------------------------------------------------


async def test_health_and_a_region_that_is_down_or_busy(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    await adapter.check_health(timeout=T)
    cred = credential(backend, card_row(backend, CardStatus.SEALED))

    for knob in ({"down": True}, {"down": False, "error_rate": 1.0}):
        backend.faults.update(knob)
        with pytest.raises(RegionUnavailable) as caught:
            await adapter.change_card(ChangeCard(str(uuid.uuid4()), cred, CardAction.ENABLE), timeout=T)
        assert caught.value.retryable and caught.value.may_have_reached  # it answered: it may have got the call
        assert caught.value.metadata == {"region": REGION}
    assert backend.cards.cards[cred.card_number].card.status is CardStatus.SEALED


async def test_a_slow_region_times_out_and_a_late_settlement_was_still_applied(
    backend: Backend, adapter: GuangdongGuangxiHainanAdapter
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.EMPLOYEE)
    the_bill = bill(credential(backend, row), insured_area(backend, row.ssn))
    backend.faults.update({"answer_delay_ms": 400, "answer_delay_scope": "settlement"})

    with pytest.raises(RegionTimeout) as caught:
        await adapter.settle(the_bill, timeout=0.1)
    await adapter.check_health(timeout=T)  # a card-system call is not held back

    assert caught.value.may_have_reached
    assert backend.medical.outcome(the_bill.request_id).state is OutcomeState.SETTLED
    backend.faults.update({"clear": True, "latency_ms": 400})
    with pytest.raises(RegionTimeout):
        await adapter.check_health(timeout=0.1)


async def test_connection_refused_is_unavailable(make_adapter: MakeAdapter) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = await make_adapter(f"http://127.0.0.1:{port}")

    with pytest.raises(RegionUnavailable):
        await adapter.check_health(timeout=T)


async def test_a_wrong_channel_key_is_a_protocol_error_and_changes_nothing(
    backend: Backend, make_adapter: MakeAdapter
) -> None:
    cred = credential(backend, card_row(backend, CardStatus.SEALED))
    adapter = await make_adapter(api_key="not-the-channel-key")

    with pytest.raises(RegionProtocolError):
        await adapter.change_card(ChangeCard("k1", cred, CardAction.ENABLE), timeout=T)
    assert backend.cards.cards[cred.card_number].card.status is CardStatus.SEALED


def test_the_adapter_needs_its_channel_key() -> None:
    with pytest.raises(ValueError, match="api_key"):
        GuangdongGuangxiHainanAdapter(AdapterSettings(REGION, "http://127.0.0.1:1", {}))
