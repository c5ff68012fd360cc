"""The insured place's medical system of a sandbox (regions/medical.py, DESIGN §4.5).

People and policies are hand-made so every amount is known; the arithmetic of each expected split is in a
comment. ``Split`` is positional:
``Split(total, full_self_pay, over_cap, b_class_self_pay, in_scope, deductible, fund_pay, account_pay, cash_pay)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.domain import (
    Bill,
    BillLine,
    CardCredential,
    CardStatus,
    CatalogueClass,
    FileRemoteCare,
    Filing,
    FilingType,
    Gender,
    Insurance,
    InsuranceType,
    OutcomeState,
    RegionSettlement,
    Reversal,
    Split,
    VisitType,
)
from adapters.errors import (
    HolderMismatch,
    IdempotencyKeyReused,
    NotInsured,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from adapters.identifiers import ssn_check
from regions.cardsystem import SandboxClock
from regions.faults import Faults
from regions.medical import MedicalSystem
from regions.policy import Accumulator, Policy, PolicyKey, load_policies
from regions.seed import SeededPerson, generate

A, B, C = CatalogueClass.A, CatalogueClass.B, CatalogueClass.C
EMPLOYEE, RESIDENT = InsuranceType.EMPLOYEE, InsuranceType.RESIDENT
INPATIENT, OUTPATIENT = VisitType.INPATIENT, VisitType.OUTPATIENT
REGION = "yangtze-delta"
BEIJING = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=BEIJING).timestamp()  # the sandbox's "today": 2026-06-15
YEAR = 2026
State = tuple[Accumulator, Accumulator, int]  # outpatient, inpatient accumulators; account balance
TREATED_IN = "110105"  # 北京朝阳: the treatment area of every bill unless a test says otherwise


def _policy(
    insurance: InsuranceType, visit: VisitType, first: int, later: int, ratios: tuple[int, int, int], cap: int
) -> Policy:
    return Policy(
        "31", insurance, visit, first, later, dict(zip((1, 2, 3), ratios, strict=True)), cap, 1000, 2000, 1000
    )


# Every row: 乙类 self-pay 10 %, penalty 20 % unfiled, 10 % temporary filing.
POLICIES: dict[PolicyKey, Policy] = {
    ("31", EMPLOYEE, OUTPATIENT): _policy(EMPLOYEE, OUTPATIENT, 20_000, 20_000, (7000, 6000, 5000), 300_000),
    ("31", EMPLOYEE, INPATIENT): _policy(EMPLOYEE, INPATIENT, 100_000, 50_000, (9000, 8500, 8000), 10_000_000),
    ("31", RESIDENT, OUTPATIENT): _policy(RESIDENT, OUTPATIENT, 10_000, 10_000, (5500, 5500, 5000), 200_000),
    ("31", RESIDENT, INPATIENT): _policy(RESIDENT, INPATIENT, 80_000, 40_000, (8500, 8000, 7000), 25_000_000),
}


def ssn(seq: str) -> str:
    first17 = "310104" + "19800101" + seq
    return first17 + ssn_check(first17)


def seeded(
    number: str,
    name: str,
    insurance: InsuranceType | None,
    balance: int = 0,
    outpatient: tuple[int, int] = (0, 0),
    inpatient: tuple[int, int] = (0, 0),
) -> SeededPerson:
    """A hand-made person insured in 上海徐汇 (310104); accumulators as (deductible_used, fund_paid)."""
    return SeededPerson(
        social_security_number=ssn(number),
        name=name,
        gender=Gender.MALE,
        birth_date="1980-01-01",
        card_number="X00000019",
        card_identification_code="310104D156000005AD932A48BDC3B9E9",
        issuing_area="310104",
        status=CardStatus.NORMAL,
        generation=3,
        valid_until="2030-01-01",
        insurance=Insurance("310104", insurance) if insurance else None,
        account_balance_fen=balance,
        accumulators={
            "OUTPATIENT": {"deductible_used_fen": outpatient[0], "fund_paid_fen": outpatient[1]},
            "INPATIENT": {"deductible_used_fen": inpatient[0], "fund_paid_fen": inpatient[1]},
        }
        if insurance
        else {},
        fails_production=False,
    )


# 王伟: employee, account 1,000 yuan; outpatient deductible 50 of 200 yuan used, fund paid 400 yuan;
# inpatient fund paid 10,000 yuan.
WANG = seeded("001", "王伟", EMPLOYEE, 100_000, outpatient=(5000, 40_000), inpatient=(0, 1_000_000))
LI = seeded("002", "李娜", RESIDENT)
ZHAO = seeded("003", "赵强", None)  # no medical insurance


def system(*people: SeededPerson, faults: Faults | None = None) -> tuple[MedicalSystem, SandboxClock]:
    clock = SandboxClock(lambda: NOW)
    return MedicalSystem(REGION, list(people or (WANG, LI, ZHAO)), POLICIES, clock, faults), clock


def credential(p: SeededPerson, name: str | None = None) -> CardCredential:
    return CardCredential(
        p.social_security_number, p.card_number, p.card_identification_code, p.issuing_area, name or p.name
    )


def line(cls: CatalogueClass, amount: int, cap: int = 0) -> BillLine:
    return BillLine(f"{cls.value}-{amount}", "项目", cls, 1, amount, amount, cap)


def bill(
    request_id: str,
    who: SeededPerson,
    *lines: BillLine,
    visit: VisitType = OUTPATIENT,
    level: int = 2,
    later: bool = False,
    use_account: bool = True,
    area: str = TREATED_IN,
    name: str | None = None,
) -> Bill:
    return Bill(
        request_id, credential(who, name), "310104", area, "H110105001", level, visit, later, lines, use_account
    )


def reversal(request_id: str, settlement_request_id: str, who: SeededPerson = WANG) -> Reversal:
    return Reversal(request_id, settlement_request_id, who.social_security_number, "病人要求")


def state(med: MedicalSystem, who: SeededPerson = WANG, year: int = YEAR) -> State:
    """(outpatient accumulator, inpatient accumulator, account balance) of this year."""
    p = who.social_security_number
    balance = med.person(p).account_balance_fen
    return med.accumulator(p, OUTPATIENT, year), med.accumulator(p, INPATIENT, year), balance


WANG_AT_START = (Accumulator(5000, 40_000), Accumulator(0, 1_000_000), 100_000)

# Outpatient, level 2, unfiled, account used: A 60000 + C 70000 → total 130000, full_self_pay 70000,
# in_scope 60000; deductible left 20000 − 5000 = 15000; ratio 6000 − 2000 = 4000 → fund rnd(45000, 4000)
# = 18000; personal 130000 − 18000 = 112000; account min(112000, 100000) = 100000; cash 12000.
FIRST_BILL = (line(A, 60_000), line(C, 70_000))
FIRST_SPLIT = Split(130_000, 70_000, 0, 0, 60_000, 15_000, 18_000, 100_000, 12_000)
AFTER_FIRST = (Accumulator(20_000, 58_000), Accumulator(0, 1_000_000), 0)


# --- settle -----------------------------------------------------------------------------------------------


def test_settle_adds_to_this_years_accumulator_and_debits_the_account() -> None:
    med, _ = system()
    assert state(med) == WANG_AT_START
    got = med.settle(bill("S-1", WANG, *FIRST_BILL))
    assert got == RegionSettlement("S-1", "yangtze-delta-S00000001", FIRST_SPLIT)
    assert state(med) == AFTER_FIRST


def test_the_next_settlement_sees_the_updated_accumulators_and_account() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    # Deductible now used up (20000 of 20000) → 0; A 10000 at 4000 bp → fund 4000; personal 6000,
    # account empty → cash 6000.
    got = med.settle(bill("S-2", WANG, line(A, 10_000)))
    assert got.split == Split(10_000, 0, 0, 0, 10_000, 0, 4000, 0, 6000)
    assert got.region_settlement_id == "yangtze-delta-S00000002"
    assert state(med) == (Accumulator(20_000, 62_000), Accumulator(0, 1_000_000), 0)


def test_inpatient_settlement_touches_only_the_inpatient_accumulator() -> None:
    med, _ = system()
    # A 300000 + B 10000: b rnd(10000, 1000) = 1000, in_scope 309000; first admission deductible 100000;
    # level 3 unfiled 8000 − 2000 = 6000 → fund rnd(209000, 6000) = 125400; personal 310000 − 125400 = 184600;
    # account 100000, cash 84600.
    got = med.settle(bill("S-1", WANG, line(A, 300_000), line(B, 10_000), visit=INPATIENT, level=3))
    assert got.split == Split(310_000, 0, 0, 1000, 309_000, 100_000, 125_400, 100_000, 84_600)
    assert state(med) == (Accumulator(5000, 40_000), Accumulator(100_000, 1_125_400), 0)


def test_resident_settlement_leaves_no_account_debit() -> None:
    med, _ = system()
    # Resident outpatient: A 30000, deductible 10000, level 2 5500 − 2000 = 3500 → fund rnd(20000, 3500) = 7000;
    # personal 23000, all cash although the account was asked for.
    got = med.settle(bill("S-1", LI, line(A, 30_000)))
    assert got.split == Split(30_000, 0, 0, 0, 30_000, 10_000, 7000, 0, 23_000)
    assert state(med, LI) == (Accumulator(10_000, 7000), Accumulator(0, 0), 0)


def test_pre_settle_changes_nothing() -> None:
    med, _ = system()
    assert med.pre_settle(bill("P-1", WANG, *FIRST_BILL)) == FIRST_SPLIT
    assert med.pre_settle(bill("P-1", WANG, *FIRST_BILL)) == FIRST_SPLIT
    assert state(med) == WANG_AT_START
    assert med.outcome("P-1").state is OutcomeState.NOT_FOUND


def test_settlements_count_towards_the_year_of_the_sandbox_clock() -> None:
    med, clock = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    clock.advance(200 * 86400)  # 2026-06-15 12:00 → 2027-01-01 12:00
    assert state(med, year=2027) == (Accumulator(), Accumulator(), 0)
    # New year, outpatient deductible again 20000: A 10000 → deductible 10000, fund 0, cash 10000.
    assert med.settle(bill("S-2", WANG, line(A, 10_000))).split == Split(10_000, 0, 0, 0, 10_000, 10_000, 0, 0, 10_000)
    assert state(med, year=2027) == (Accumulator(10_000, 0), Accumulator(), 0)
    # Reversing last year's settlement restores last year's accumulators and the account, not this year's.
    med.reverse(reversal("R-1", "S-1"))
    assert state(med, year=2026) == WANG_AT_START
    assert state(med, year=2027) == (Accumulator(10_000, 0), Accumulator(), 100_000)


# --- idempotency and corrections --------------------------------------------------------------------------


def test_same_message_id_and_bill_replays_the_first_settlement() -> None:
    med, _ = system()
    first = med.settle(bill("S-1", WANG, *FIRST_BILL))
    assert med.settle(bill("S-1", WANG, *FIRST_BILL)) == first
    assert state(med) == AFTER_FIRST  # applied once
    assert med.settle(bill("S-2", WANG, line(A, 1))).region_settlement_id == "yangtze-delta-S00000002"


@pytest.mark.parametrize(
    "other",
    [
        bill("S-1", WANG, line(A, 60_001), line(C, 70_000)),
        bill("S-1", WANG, *FIRST_BILL, use_account=False),
        bill("S-1", WANG, *FIRST_BILL, level=3),
        bill("S-1", WANG, *FIRST_BILL, area="110108"),
        bill("S-1", LI, *FIRST_BILL),
    ],
    ids=["amount", "account", "level", "area", "person"],
)
def test_same_message_id_with_another_bill_is_refused(other: Bill) -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    with pytest.raises(IdempotencyKeyReused) as caught:
        med.settle(other)
    assert caught.value.metadata == {"request_id": "S-1"}
    assert state(med) == AFTER_FIRST
    assert state(med, LI) == (Accumulator(), Accumulator(), 0)


def test_correction_of_an_unseen_message_id_voids_a_late_settlement() -> None:
    med, _ = system()
    med.correct("S-9")
    assert med.outcome("S-9").state is OutcomeState.CORRECTED
    with pytest.raises(SettlementCorrected) as caught:
        med.settle(bill("S-9", WANG, *FIRST_BILL))
    assert caught.value.metadata == {"request_id": "S-9"}
    assert state(med) == WANG_AT_START
    assert med.corrections == ["S-9"]


def test_correction_of_a_settlement_undoes_it_once() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    med.correct("S-1")
    assert state(med) == WANG_AT_START
    assert med.outcome("S-1").state is OutcomeState.CORRECTED
    med.correct("S-1")  # a repeated correction must not credit the account again
    assert state(med) == WANG_AT_START
    assert med.corrections == ["S-1", "S-1"]
    with pytest.raises(SettlementCorrected):
        med.settle(bill("S-1", WANG, *FIRST_BILL))
    assert state(med) == WANG_AT_START


def test_correction_of_a_reversed_settlement_changes_nothing() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    med.reverse(reversal("R-1", "S-1"))
    med.correct("S-1")
    assert state(med) == WANG_AT_START
    assert med.outcome("S-1").state is OutcomeState.REVERSED


# --- reversal ---------------------------------------------------------------------------------------------


def test_reverse_restores_and_a_second_reversal_is_refused() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    med.reverse(reversal("R-1", "S-1"))
    assert state(med) == WANG_AT_START
    with pytest.raises(SettlementNotSettled) as caught:
        med.reverse(reversal("R-2", "S-1"))
    assert caught.value.metadata == {"settlement_id": "S-1", "state": "REVERSED"}
    with pytest.raises(SettlementNotSettled):  # the refusal is remembered under R-2
        med.reverse(reversal("R-2", "S-1"))
    assert state(med) == WANG_AT_START


def test_a_repeated_reversal_id_answers_as_the_first_time() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    med.reverse(reversal("R-1", "S-1"))
    med.reverse(reversal("R-1", "S-1"))
    med.reverse(reversal("R-1", "S-1"))
    assert state(med) == WANG_AT_START  # restored once: the account is 100000, not 300000
    assert med.outcome("S-1").state is OutcomeState.REVERSED


def test_a_reversal_id_reused_for_another_settlement_is_refused() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    med.settle(bill("S-2", WANG, line(A, 10_000)))
    med.reverse(reversal("R-1", "S-1"))
    with pytest.raises(IdempotencyKeyReused):
        med.reverse(reversal("R-1", "S-2"))
    assert med.outcome("S-2").state is OutcomeState.SETTLED


def test_reversal_of_a_corrected_settlement_is_refused() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    med.correct("S-1")
    with pytest.raises(SettlementNotSettled) as caught:
        med.reverse(reversal("R-1", "S-1"))
    assert caught.value.metadata["state"] == "CORRECTED"
    assert state(med) == WANG_AT_START


def test_reversal_of_an_unknown_settlement_is_refused() -> None:
    med, _ = system()
    with pytest.raises(SettlementNotFound) as caught:
        med.reverse(reversal("R-1", "S-404"))
    assert caught.value.metadata == {"request_id": "S-404"}
    assert med.outcome("S-404").state is OutcomeState.NOT_FOUND


def test_reversal_naming_another_person_is_refused() -> None:
    med, _ = system()
    med.settle(bill("S-1", WANG, *FIRST_BILL))
    with pytest.raises(SettlementNotFound):
        med.reverse(reversal("R-1", "S-1", who=LI))
    assert state(med) == AFTER_FIRST
    assert med.outcome("S-1").state is OutcomeState.SETTLED


# --- outcome ----------------------------------------------------------------------------------------------


def test_outcome_states() -> None:
    med, _ = system()
    assert med.outcome("S-1").state is OutcomeState.NOT_FOUND
    assert med.outcome("S-1").settlement is None
    settled = med.settle(bill("S-1", WANG, *FIRST_BILL))
    assert (med.outcome("S-1").state, med.outcome("S-1").settlement) == (OutcomeState.SETTLED, settled)
    med.settle(bill("S-2", WANG, line(A, 10_000)))
    med.reverse(reversal("R-1", "S-1"))
    assert (med.outcome("S-1").state, med.outcome("S-1").settlement) == (OutcomeState.REVERSED, settled)
    med.correct("S-2")
    assert med.outcome("S-2").state is OutcomeState.CORRECTED
    med.correct("S-3")
    assert (med.outcome("S-3").state, med.outcome("S-3").settlement) == (OutcomeState.CORRECTED, None)


# --- people -----------------------------------------------------------------------------------------------


def test_a_person_without_medical_insurance_is_refused() -> None:
    med, _ = system()
    with pytest.raises(NotInsured):
        med.settle(bill("S-1", ZHAO, *FIRST_BILL))
    with pytest.raises(NotInsured):
        med.pre_settle(bill("S-1", ZHAO, *FIRST_BILL))
    with pytest.raises(NotInsured):
        med.file(
            "F-1", FileRemoteCare("F-1", credential(ZHAO), "110000", FilingType.EMERGENCY, "2026-01-01", "2026-12-31")
        )
    assert med.outcome("S-1").state is OutcomeState.NOT_FOUND
    assert NotInsured.reason == "NOT_INSURED"


def test_an_unknown_person_is_not_insured() -> None:
    med, _ = system(WANG)
    with pytest.raises(NotInsured):
        med.settle(bill("S-1", LI, *FIRST_BILL))


def test_a_wrong_holder_name_is_refused_and_nothing_is_booked() -> None:
    med, _ = system()
    with pytest.raises(HolderMismatch):
        med.settle(bill("S-1", WANG, *FIRST_BILL, name="王芳"))
    assert med.outcome("S-1").state is OutcomeState.NOT_FOUND
    assert state(med) == WANG_AT_START


def test_the_seeded_system_uses_the_seed_and_the_shipped_policies() -> None:
    people = generate(REGION, ("31", "32", "33", "34"))
    med = MedicalSystem(REGION, people, load_policies(), SandboxClock(lambda: NOW))
    uninsured = next(p for p in people if p.insurance is None)
    with pytest.raises(NotInsured):
        med.pre_settle(bill("P-1", uninsured, line(A, 100)))
    shanghai = next(
        p
        for p in people
        if p.insurance and p.insurance.insurance_type is EMPLOYEE and p.insurance.insured_area.startswith("31")
    )
    ded, fund = (
        shanghai.accumulators["INPATIENT"]["deductible_used_fen"],
        shanghai.accumulators["INPATIENT"]["fund_paid_fen"],
    )
    assert med.accumulator(shanghai.social_security_number, INPATIENT) == Accumulator(ded, fund)
    # Shipped 31 EMPLOYEE INPATIENT: deductible 150000, level 3 ratio 8800 − 2000 unfiled = 6800.
    # A 300000 → fund rnd(150000, 6800) = 102000; personal 198000, account not used → cash.
    got = med.settle(bill("S-1", shanghai, line(A, 300_000), visit=INPATIENT, level=3, use_account=False))
    assert got.split == Split(300_000, 0, 0, 0, 300_000, 150_000, 102_000, 0, 198_000)
    assert med.accumulator(shanghai.social_security_number, INPATIENT) == Accumulator(ded + 150_000, fund + 102_000)
    assert med.person(shanghai.social_security_number).account_balance_fen == shanghai.account_balance_fen


# --- filings ----------------------------------------------------------------------------------------------

LT, TMP = FilingType.LONG_TERM_RESIDENT, FilingType.REFERRAL
THIS_YEAR = ("2026-01-01", "2026-12-31")


@pytest.mark.parametrize(
    ("filings", "fund"),
    [
        # Inpatient A 300000, first admission, level 3 (8000 bp), deductible 100000 → 200000 above it:
        # no valid filing 6000 bp → 120000; temporary 7000 → 140000; long-term 8000 → 160000.
        ([], 120_000),
        ([("110105", LT, *THIS_YEAR)], 160_000),
        ([("110000", LT, *THIS_YEAR)], 160_000),  # the province covers every area in it
        ([("110105", FilingType.RETIREE_RESETTLED, *THIS_YEAR)], 160_000),
        ([("110105", FilingType.WORKING_AWAY, *THIS_YEAR)], 160_000),
        ([("110105", TMP, *THIS_YEAR)], 140_000),
        ([("110000", FilingType.EMERGENCY, *THIS_YEAR)], 140_000),
        ([("110105", FilingType.TEMPORARY_OTHER, *THIS_YEAR)], 140_000),
        ([("110108", LT, *THIS_YEAR)], 120_000),  # another district
        ([("120000", LT, *THIS_YEAR)], 120_000),  # another province
        ([("110105", LT, "2025-01-01", "2026-06-14")], 120_000),  # expired yesterday
        ([("110105", LT, "2025-06-15", "2026-06-15")], 160_000),  # valid to the end of today
        ([("110105", LT, "2026-06-16", "2027-06-15")], 120_000),  # not valid yet
        ([("110105", LT, "2025-01-01", "2026-06-14"), ("110105", TMP, *THIS_YEAR)], 140_000),
        ([("110000", TMP, *THIS_YEAR), ("110105", LT, *THIS_YEAR)], 160_000),  # long-term wins
    ],
)
def test_filing_decides_the_penalty(filings: list[tuple[str, FilingType, str, str]], fund: int) -> None:
    med, _ = system()
    for i, (area, kind, start, end) in enumerate(filings):
        med.file(f"F-{i}", FileRemoteCare(f"F-{i}", credential(WANG), area, kind, start, end))
    got = med.settle(bill("S-1", WANG, line(A, 300_000), visit=INPATIENT, level=3, use_account=False))
    assert got.split == Split(300_000, 0, 0, 0, 300_000, 100_000, fund, 0, 300_000 - fund)
    assert med.accumulator(WANG.social_security_number, INPATIENT) == Accumulator(100_000, 1_000_000 + fund)


def test_a_filing_expires_with_the_sandbox_clock() -> None:
    med, clock = system()
    med.file("F-1", FileRemoteCare("F-1", credential(WANG), "110000", LT, "2026-06-01", "2026-06-30"))
    inpatient = (line(A, 300_000),)
    assert med.pre_settle(bill("P", WANG, *inpatient, visit=INPATIENT, level=3)).fund_pay_fen == 160_000
    clock.advance(16 * 86400)  # 2026-07-01 Beijing
    assert med.pre_settle(bill("P", WANG, *inpatient, visit=INPATIENT, level=3)).fund_pay_fen == 120_000


def test_the_filing_day_is_the_beijing_day() -> None:
    med, clock = system()
    med.file("F-1", FileRemoteCare("F-1", credential(WANG), "110105", LT, "2026-01-01", "2026-06-15"))
    inpatient = bill("P", WANG, line(A, 300_000), visit=INPATIENT, level=3)
    clock.advance(11.5 * 3600)  # 2026-06-15 23:30 Beijing (15:30 UTC): still covered
    assert med.pre_settle(inpatient).fund_pay_fen == 160_000
    clock.advance(3600)  # 2026-06-16 00:30 Beijing, though still 06-15 in UTC: expired
    assert med.pre_settle(inpatient).fund_pay_fen == 120_000


def test_filing_returns_the_filing_and_a_repeat_returns_it_again() -> None:
    med, _ = system()
    request = FileRemoteCare("F-1", credential(WANG), "110000", LT, *THIS_YEAR)
    filing = med.file("F-1", request)
    assert filing == Filing("yangtze-delta-F0000001", "110000", LT, *THIS_YEAR)
    assert med.file("F-1", request) == filing
    assert med.person(WANG.social_security_number).filings == [filing]


# --- faults -----------------------------------------------------------------------------------------------


def test_unbalanced_splits_are_answered_but_the_true_split_is_applied() -> None:
    med, _ = system(faults=Faults(unbalanced_splits=True))
    got = med.settle(bill("S-1", WANG, *FIRST_BILL))
    assert got.split == Split(130_000, 70_000, 0, 0, 60_000, 15_000, 18_001, 100_000, 12_000)
    assert got.split.violations() == ["total != fund_pay + account_pay + cash_pay"]
    assert state(med) == AFTER_FIRST  # fund paid 40000 + 18000, not + 18001
    assert med.settle(bill("S-1", WANG, *FIRST_BILL)).split.violations() != []  # the replay too
    med.reverse(reversal("R-1", "S-1"))
    assert state(med) == WANG_AT_START


def test_balanced_splits_without_the_fault() -> None:
    med, _ = system(faults=Faults())
    assert med.settle(bill("S-1", WANG, *FIRST_BILL)).split.violations() == []


# --- properties -------------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=60, deadline=None)
pairs = st.tuples(st.integers(0, 300_000), st.integers(0, 12_000_000))
people = st.builds(
    lambda kind, balance, out, inp: seeded("009", "钱磊", kind, balance if kind is EMPLOYEE else 0, out, inp),
    st.sampled_from(InsuranceType),
    st.integers(0, 2_000_000),
    pairs,
    pairs,
)
bill_lines = st.builds(
    line,
    st.sampled_from(CatalogueClass),
    st.integers(0, 3_000_000),
    st.one_of(st.just(0), st.integers(1, 3_000_000)),
)
bill_shapes = st.fixed_dictionaries(
    {
        "visit": st.sampled_from(VisitType),
        "level": st.sampled_from((1, 2, 3)),
        "later": st.booleans(),
        "use_account": st.booleans(),
    }
)


def plus(before: State, visit: VisitType, split: Split) -> State:
    """The state after ``split`` was settled for ``visit``."""
    out, inp, balance = before
    acc = out if visit is OUTPATIENT else inp
    acc = Accumulator(acc.deductible_used_fen + split.deductible_fen, acc.fund_paid_fen + split.fund_pay_fen)
    if visit is OUTPATIENT:
        return acc, inp, balance - split.account_pay_fen
    return out, acc, balance - split.account_pay_fen


@pytest.mark.parametrize("undo", ["reverse", "correct"])
@PROPERTY
@given(
    who=people,
    lines1=st.lists(bill_lines, max_size=5),
    shape1=bill_shapes,
    lines2=st.lists(bill_lines, max_size=5),
    shape2=bill_shapes,
)
def test_undoing_a_settlement_restores_accumulators_and_account_exactly(
    undo: str,
    who: SeededPerson,
    lines1: list[BillLine],
    shape1: dict[str, Any],
    lines2: list[BillLine],
    shape2: dict[str, Any],
) -> None:
    med, _ = system(who)

    def undone(request_id: str) -> None:
        if undo == "reverse":
            med.reverse(reversal(f"R-{request_id}", request_id, who))
        else:
            med.correct(request_id)

    start = state(med, who)
    first = med.settle(bill("S-1", who, *lines1, **shape1)).split
    assert first.violations() == []
    after_first = plus(start, shape1["visit"], first)
    assert state(med, who) == after_first
    assert after_first[2] >= 0
    second = med.settle(bill("S-2", who, *lines2, **shape2)).split
    assert state(med, who) == plus(after_first, shape2["visit"], second)
    undone("S-1")
    assert state(med, who) == plus(start, shape2["visit"], second)
    undone("S-2")
    assert state(med, who) == start
