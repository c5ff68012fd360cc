"""The 京津冀 region's own gRPC wire (result codes, message ids, fen), against the real sandbox.

What every region adapter does alike is tested in ``test_region_adapters.py``; the medical tests here check
what this wire carries: the split in fen as the insured place booked it, ``msgid``/``omsgid`` keying, the
settlement states and the refusal codes 1010–1013.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from adapters.domain import (
    Bill,
    BillLine,
    CardCredential,
    CardStatus,
    CatalogueClass,
    FileRemoteCare,
    FilingType,
    InsuranceType,
    OutcomeState,
    Reversal,
    ServiceKind,
    SettlementOutcome,
    StandInAdvice,
    VisitType,
)
from adapters.errors import (
    IdempotencyKeyReused,
    NotInsured,
    RegionProtocolError,
    RegionTimeout,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from adapters.interface import AdapterSettings
from adapters.jingjinji import JingjinjiAdapter, codec
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1 import medical_insurance_pb2 as mpb
from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceStub
from jingjinji.v1.medical_insurance_pb2_grpc import MedicalInsuranceServiceStub
from regions.cardsystem import CardRow, CardSystem
from regions.config import RegionConfig
from regions.policy import Accumulator
from regions.sandbox import RunningSandbox
from tests.conftest import HubLink

REGION = "beijing-tianjin-hebei"
TIMEOUT = 5.0
TREATMENT_AREA = "310104"  # Shanghai: cross-province care

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]


@pytest.fixture
async def sandbox(start_region: StartSandbox) -> RunningSandbox:
    return await start_region(REGION)


@pytest.fixture
async def adapter(sandbox: RunningSandbox, region_configs: dict[str, RegionConfig]) -> AsyncIterator[JingjinjiAdapter]:
    made = JingjinjiAdapter(AdapterSettings(REGION, sandbox.address, region_configs[REGION].options))
    await made.start()
    yield made
    await made.close()


def card_in(system: CardSystem, status: CardStatus) -> CardRow:
    return next(row for row in system.cards.values() if row.card.status is status)


def insured_card(sandbox: RunningSandbox, *, insured: bool = True) -> CardCredential:
    """A NORMAL card of an employee with money in the personal account (or of someone with no insurance)."""
    medical = sandbox.medical
    for row in sandbox.system.cards.values():
        person = medical.insured.get(row.ssn)
        usable = person is not None and person.insurance_type is InsuranceType.EMPLOYEE
        if row.card.status is CardStatus.NORMAL and (
            (usable and person is not None and person.account_balance_fen > 0) if insured else person is None
        ):
            name = sandbox.system.people[row.ssn].holder.name
            card = row.card
            return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)
    raise AssertionError("the seed has no such card")


def inpatient_bill(credential: CardCredential, insured_area: str) -> Bill:
    """¥7,300 in three lines: 甲类, 乙类 above its price cap, 丙类."""
    return Bill(
        request_id=str(uuid.uuid4()),
        credential=credential,
        insured_area=insured_area,
        treatment_area=TREATMENT_AREA,
        institution_id="H31010400001",
        hospital_level=3,
        visit_type=VisitType.INPATIENT,
        later_admission=False,
        lines=(
            BillLine("250101001", "住院诊查费", CatalogueClass.A, 10, 50_000, 500_000),
            BillLine("XB01BAC046", "低分子肝素注射液", CatalogueClass.B, 2, 100_000, 200_000, price_cap_fen=75_000),
            BillLine("330000001", "特需病房床位费", CatalogueClass.C, 1, 30_000, 30_000),
        ),
        use_personal_account=True,
    )


@pytest.fixture
def bill(sandbox: RunningSandbox) -> Bill:
    credential = insured_card(sandbox)
    return inpatient_bill(credential, sandbox.medical.insured[credential.social_security_number].insured_area)


def money(sandbox: RunningSandbox, ssn: str) -> tuple[Accumulator, int]:
    """The person's inpatient accumulator this year and personal-account balance."""
    return sandbox.medical.accumulator(ssn, VisitType.INPATIENT), sandbox.medical.insured[ssn].account_balance_fen


# --- the card centre's own wire -----------------------------------------------------------------


async def test_card_centre_answers_malformed_input_with_code_1000(sandbox: RunningSandbox, hub_link: HubLink) -> None:
    row = card_in(sandbox.system, CardStatus.NORMAL)
    fields = {"sfzh": row.ssn, "kh": row.card.card_number, "sbm": row.card.card_identification_code}
    async with hub_link.channel(sandbox.address) as channel:
        stub = CardCenterServiceStub(channel)
        bad_action = await stub.ChangeCardState(pb.ChangeCardStateRequest(msgid="m", action="FLY", **fields))
        no_msgid = await stub.ChangeCardState(pb.ChangeCardStateRequest(action="ENABLE", **fields))

    assert bad_action.result.code == 1000
    assert no_msgid.result.code == 1000
    assert sandbox.system.cards[row.card.card_number].card.status is CardStatus.NORMAL


# --- the medical-insurance centre: settlement -------------------------------------------------------


async def test_settle_books_exactly_the_split_it_answers(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill
) -> None:
    ssn = bill.credential.social_security_number
    before, balance_before = money(sandbox, ssn)

    preview = await adapter.pre_settle(bill, timeout=TIMEOUT)
    assert money(sandbox, ssn) == (before, balance_before)
    settlement = await adapter.settle(bill, timeout=TIMEOUT)

    split = settlement.split
    after, balance_after = money(sandbox, ssn)
    assert split == preview
    assert split.violations() == []
    assert (split.total_fen, split.over_cap_fen, split.full_self_pay_fen) == (730_000, 125_000, 30_000)
    assert split.deductible_fen > 0 and split.fund_pay_fen > 0 and split.account_pay_fen > 0
    assert after.deductible_used_fen - before.deductible_used_fen == split.deductible_fen
    assert after.fund_paid_fen - before.fund_paid_fen == split.fund_pay_fen
    assert balance_before - balance_after == split.account_pay_fen
    assert settlement.request_id == bill.request_id
    assert settlement.region_settlement_id.startswith(REGION)
    outcome = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)
    assert outcome == SettlementOutcome(OutcomeState.SETTLED, settlement)


async def test_the_same_msgid_replays_the_settlement_and_refuses_another_bill(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill
) -> None:
    first = await adapter.settle(bill, timeout=TIMEOUT)
    booked = money(sandbox, bill.credential.social_security_number)

    again = await adapter.settle(bill, timeout=TIMEOUT)
    with pytest.raises(IdempotencyKeyReused) as refused:
        await adapter.settle(replace(bill, lines=bill.lines[:1]), timeout=TIMEOUT)

    assert again == first
    assert money(sandbox, bill.credential.social_security_number) == booked
    assert refused.value.metadata["request_id"] == bill.request_id


async def test_a_correction_that_arrives_first_voids_the_msgid_for_good(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill
) -> None:
    untouched = money(sandbox, bill.credential.social_security_number)

    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)
    with pytest.raises(SettlementCorrected) as refused:
        await adapter.settle(bill, timeout=TIMEOUT)
    outcome = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)

    assert refused.value.metadata["request_id"] == bill.request_id
    assert (outcome.state, outcome.settlement) == (OutcomeState.CORRECTED, None)
    assert money(sandbox, bill.credential.social_security_number) == untouched
    assert sandbox.medical.corrections == [bill.request_id]


async def test_a_correction_of_a_booked_settlement_restores_the_money_once(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill
) -> None:
    untouched = money(sandbox, bill.credential.social_security_number)
    settlement = await adapter.settle(bill, timeout=TIMEOUT)

    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)
    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)

    outcome = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)
    assert (outcome.state, outcome.settlement) == (OutcomeState.CORRECTED, settlement)
    assert money(sandbox, bill.credential.social_security_number) == untouched


async def test_a_settlement_is_reversed_once(sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill) -> None:
    ssn = bill.credential.social_security_number
    untouched = money(sandbox, ssn)
    await adapter.settle(bill, timeout=TIMEOUT)
    reversal = Reversal(str(uuid.uuid4()), bill.request_id, ssn, "patient cancelled the bill")

    await adapter.reverse_settlement(reversal, timeout=TIMEOUT)
    await adapter.reverse_settlement(reversal, timeout=TIMEOUT)  # a retry of the same message: no second refund
    with pytest.raises(SettlementNotSettled) as again:
        await adapter.reverse_settlement(replace(reversal, request_id=str(uuid.uuid4())), timeout=TIMEOUT)

    assert money(sandbox, ssn) == untouched
    assert (await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)).state is OutcomeState.REVERSED
    assert again.value.metadata == {"settlement_id": bill.request_id, "state": "REVERSED"}


async def test_reversing_an_unknown_or_corrected_settlement_is_refused(adapter: JingjinjiAdapter, bill: Bill) -> None:
    ssn = bill.credential.social_security_number
    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)

    with pytest.raises(SettlementNotFound) as unknown:
        await adapter.reverse_settlement(Reversal(str(uuid.uuid4()), "never-sent", ssn, ""), timeout=TIMEOUT)
    with pytest.raises(SettlementNotSettled) as corrected:
        await adapter.reverse_settlement(Reversal(str(uuid.uuid4()), bill.request_id, ssn, ""), timeout=TIMEOUT)

    assert unknown.value.metadata["request_id"] == "never-sent"
    assert corrected.value.metadata["state"] == "CORRECTED"


async def test_an_unseen_msgid_has_no_outcome(adapter: JingjinjiAdapter) -> None:
    outcome = await adapter.settlement_outcome(str(uuid.uuid4()), timeout=TIMEOUT)

    assert (outcome.state, outcome.settlement) == (OutcomeState.NOT_FOUND, None)


async def test_a_person_without_medical_insurance_gets_code_1010(
    sandbox: RunningSandbox,
    adapter: JingjinjiAdapter,
    hub_link: HubLink,
) -> None:
    uninsured = inpatient_bill(insured_card(sandbox, insured=False), "110101")

    with pytest.raises(NotInsured):
        await adapter.settle(uninsured, timeout=TIMEOUT)
    async with hub_link.channel(sandbox.address) as channel:
        answer = await MedicalInsuranceServiceStub(channel).PreSettle(mpb.PreSettleRequest(bill=codec.bill(uninsured)))

    assert answer.result.code == 1010
    assert sandbox.medical.outcome(uninsured.request_id).state is OutcomeState.NOT_FOUND


async def test_a_late_answer_times_out_although_the_region_settled(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill
) -> None:
    sandbox.faults.update({"answer_delay_ms": 1000, "answer_delay_calls": 1})

    with pytest.raises(RegionTimeout):
        await adapter.settle(bill, timeout=0.3)

    outcome = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)
    assert outcome.state is OutcomeState.SETTLED


async def test_card_centre_answers_are_held_back_too(sandbox: RunningSandbox, adapter: JingjinjiAdapter) -> None:
    sandbox.faults.update({"answer_delay_ms": 1000})

    with pytest.raises(RegionTimeout):
        await adapter.knows_holder(card_in(sandbox.system, CardStatus.NORMAL).ssn, timeout=0.3)


# --- the medical-insurance centre: filing -----------------------------------------------------------


async def test_a_long_term_filing_lifts_the_unfiled_penalty(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter, bill: Bill
) -> None:
    today = sandbox.medical.today()
    request = FileRemoteCare(
        str(uuid.uuid4()),
        bill.credential,
        TREATMENT_AREA[:2] + "0000",
        FilingType.LONG_TERM_RESIDENT,
        (today - dt.timedelta(days=1)).isoformat(),
        (today + dt.timedelta(days=365)).isoformat(),
    )
    unfiled = await adapter.pre_settle(bill, timeout=TIMEOUT)

    filing = await adapter.file_remote_care(request, timeout=TIMEOUT)
    again = await adapter.file_remote_care(request, timeout=TIMEOUT)
    filed = await adapter.pre_settle(bill, timeout=TIMEOUT)

    assert again == filing
    assert (filing.treatment_area, filing.filing_type) == ("310000", FilingType.LONG_TERM_RESIDENT)
    assert (filing.valid_from, filing.valid_until) == (request.valid_from, request.valid_until)
    assert filed.fund_pay_fen > unfiled.fund_pay_fen


# --- the medical-insurance centre: unreadable requests ---------------------------------------------


async def test_medical_centre_answers_malformed_input_with_code_1000(
    sandbox: RunningSandbox, bill: Bill, hub_link: HubLink
) -> None:
    patient = mpb.Patient(sfzh=bill.credential.social_security_number, xm=bill.credential.holder_name)
    line = mpb.BillLine(
        item_code="1", catalogue_class=mpb.CATALOGUE_CLASS_A, quantity=1, unit_price_fen=100, amount_fen=100
    )
    good = mpb.Bill(
        patient=patient,
        cbd=sandbox.medical.insured[patient.sfzh].insured_area,
        treatment_area=TREATMENT_AREA,
        hospital_level=2,
        visit_type=mpb.VISIT_TYPE_OUTPATIENT,
        lines=[line],
    )
    unspecified_class = mpb.BillLine(item_code="1", quantity=1, amount_fen=100)
    negative = mpb.BillLine(item_code="1", catalogue_class=mpb.CATALOGUE_CLASS_A, quantity=1, amount_fen=-100)
    miscounted = mpb.BillLine(
        item_code="1", catalogue_class=mpb.CATALOGUE_CLASS_A, quantity=2, unit_price_fen=100, amount_fen=100
    )
    bad_bills = [
        mpb.Bill(**{**_fields(good), "hospital_level": 4}),
        mpb.Bill(**{**_fields(good), "visit_type": mpb.VISIT_TYPE_UNSPECIFIED}),
        mpb.Bill(**{**_fields(good), "treatment_area": "31"}),
        mpb.Bill(**{**_fields(good), "lines": [unspecified_class]}),
        mpb.Bill(**{**_fields(good), "lines": [negative]}),
        mpb.Bill(**{**_fields(good), "lines": [miscounted]}),
    ]
    async with hub_link.channel(sandbox.address) as channel:
        stub = MedicalInsuranceServiceStub(channel)
        answers = [await stub.Settle(mpb.SettleRequest(msgid=f"bad-{i}", bill=b)) for i, b in enumerate(bad_bills)]
        answers.append(await stub.Settle(mpb.SettleRequest(bill=good)))
        answers.append(await stub.QuerySettlement(mpb.QuerySettlementRequest()))
        answers.append(await stub.CorrectSettlement(mpb.CorrectSettlementRequest(omsgid="x" * 65)))
        answers.append(await stub.ReverseSettlement(mpb.ReverseSettlementRequest(msgid="r", omsgid="s")))
        filing = mpb.FileRemoteCareRequest(
            msgid="f", patient=patient, treatment_area="310000", filing_type=mpb.FILING_TYPE_REFERRAL
        )
        answers.append(await stub.FileRemoteCare(filing))
        fine = await stub.PreSettle(mpb.PreSettleRequest(bill=good))

    assert [a.result.code for a in answers] == [1000] * 11
    assert fine.result.code == 0  # the bill the bad ones were made from is readable
    assert sandbox.medical.settlements == {}
    assert sandbox.medical.insured[patient.sfzh].filings == []


def _fields(bill: mpb.Bill) -> dict[str, object]:
    return {field.name: value for field, value in bill.ListFields()}


# --- the card centre: stand-in advices ------------------------------------------------------------


def advice(sandbox: RunningSandbox, **changes: str) -> StandInAdvice:
    card = card_in(sandbox.system, CardStatus.NORMAL).card
    made = StandInAdvice(
        advice_id=str(uuid.uuid4()),
        card_number=card.card_number,
        issuing_area=card.issuing_area,
        service_kind=ServiceKind.MUSEUM,
        venue_area="130102",
        granted_at="2025-03-01T08:30:15.250+08:00",
        status_confirmed_at="2025-03-01T00:10:00Z",
    )
    return replace(made, **changes)


async def test_a_stand_in_advice_is_recorded_once_with_every_field(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter
) -> None:
    advices = [replace(advice(sandbox), service_kind=kind) for kind in ServiceKind]

    for sent in advices:
        await adapter.send_stand_in_advice(sent, timeout=TIMEOUT)
    await adapter.send_stand_in_advice(advices[0], timeout=TIMEOUT)  # the hub resends until acknowledged

    assert sandbox.system.advices == {sent.advice_id: sent for sent in advices}


async def test_card_centre_answers_a_malformed_advice_with_code_1000_naming_the_field(
    sandbox: RunningSandbox,
    adapter: JingjinjiAdapter,
    hub_link: HubLink,
) -> None:
    good = codec.stand_in_advice(advice(sandbox))
    bad = {
        "msgid": "",
        "kh": "X0000001",
        "fkd": "11",
        "service_kind": pb.SERVICE_KIND_UNSPECIFIED,
        "venue_area": "",
        "granted_at": "2025-03-01T08:30:00",  # no offset
        "state_confirmed_at": "2025-02-30T08:30:00+08:00",
    }
    async with hub_link.channel(sandbox.address) as channel:
        stub = CardCenterServiceStub(channel)
        fine = await stub.RecordStandInAdvice(good)
        for field, value in bad.items():
            request = pb.RecordStandInAdviceRequest()
            request.CopyFrom(good)
            setattr(request, field, value)
            answer = await stub.RecordStandInAdvice(request)
            assert answer.result.code == 1000
            assert answer.result.message.startswith(f"bad input: {field} ")
    with pytest.raises(RegionProtocolError):
        await adapter.send_stand_in_advice(advice(sandbox, card_number="X00000018"), timeout=TIMEOUT)

    assert fine.result.code == 0
    assert list(sandbox.system.advices) == [good.msgid]


async def test_a_stand_in_advice_meets_the_fault_knobs_as_a_card_call(
    sandbox: RunningSandbox, adapter: JingjinjiAdapter
) -> None:
    sent = advice(sandbox)
    sandbox.faults.update({"down": True})
    with pytest.raises(RegionUnavailable):
        await adapter.send_stand_in_advice(sent, timeout=TIMEOUT)
    assert sandbox.system.advices == {}

    # Held back only when every call is: it is no settlement call.
    sandbox.faults.update({"down": False, "answer_delay_ms": 1000, "answer_delay_scope": "settlement"})
    await adapter.send_stand_in_advice(sent, timeout=0.5)
    sandbox.faults.update({"answer_delay_scope": "all"})
    with pytest.raises(RegionTimeout):
        await adapter.send_stand_in_advice(sent, timeout=0.3)

    assert sandbox.system.advices == {sent.advice_id: sent}
