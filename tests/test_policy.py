"""The §4.5 split (regions/policy.py): worked examples, invariants under random bills, the policy file.

Every worked example states its policy numbers and the expected ``Split`` as literal fen, with the arithmetic
in a comment so a reviewer can check it by hand. ``Split`` is positional throughout:
``Split(total, full_self_pay, over_cap, b_class_self_pay, in_scope, deductible, fund_pay, account_pay, cash_pay)``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.domain import BillLine, CatalogueClass, InsuranceType, Split, VisitType
from regions.config import ConfigError
from regions.policy import POLICY_FILE, Accumulator, FilingCover, Policy, compute_split, load_policies, rnd

A, B, C, OUT = CatalogueClass.A, CatalogueClass.B, CatalogueClass.C, CatalogueClass.OUT_OF_CATALOGUE
EMPLOYEE, RESIDENT = InsuranceType.EMPLOYEE, InsuranceType.RESIDENT
INPATIENT, OUTPATIENT = VisitType.INPATIENT, VisitType.OUTPATIENT
NONE, TEMPORARY, LONG_TERM = FilingCover.NONE, FilingCover.TEMPORARY, FilingCover.LONG_TERM

# Employee inpatient: deductible 1,000 yuan first / 500 later admission, ratio 90/85/80 %, cap 100,000 yuan,
# 乙类 self-pay 10 %, penalties 20 % unfiled / 10 % temporary filing.
EMP_IN = Policy(
    "31",
    EMPLOYEE,
    INPATIENT,
    deductible_first_fen=100_000,
    deductible_later_fen=50_000,
    ratio_bp={1: 9000, 2: 8500, 3: 8000},
    annual_cap_fen=10_000_000,
    b_class_self_pay_bp=1000,
    unfiled_penalty_bp=2000,
    temporary_filing_penalty_bp=1000,
)
# Employee outpatient: yearly deductible 200 yuan (deductible_later 999.99 yuan must never be used for
# outpatient care), ratio 70/60/50 %, cap 3,000 yuan, 乙类 self-pay 15 %, penalties 20 % / 10 %.
EMP_OUT = Policy(
    "31",
    EMPLOYEE,
    OUTPATIENT,
    deductible_first_fen=20_000,
    deductible_later_fen=99_999,
    ratio_bp={1: 7000, 2: 6000, 3: 5000},
    annual_cap_fen=300_000,
    b_class_self_pay_bp=1500,
    unfiled_penalty_bp=2000,
    temporary_filing_penalty_bp=1000,
)
# Resident inpatient: deductible 800 / 400 yuan, ratio 85/80/70 %, cap 250,000 yuan, 乙类 15 %, 20 % / 10 %.
RES_IN = Policy(
    "31",
    RESIDENT,
    INPATIENT,
    deductible_first_fen=80_000,
    deductible_later_fen=40_000,
    ratio_bp={1: 8500, 2: 8000, 3: 7000},
    annual_cap_fen=25_000_000,
    b_class_self_pay_bp=1500,
    unfiled_penalty_bp=2000,
    temporary_filing_penalty_bp=1000,
)


FRESH_YEAR = Accumulator()  # nothing used yet this year


def line(cls: CatalogueClass, amount: int, cap: int = 0) -> BillLine:
    return BillLine(f"{cls.value}-{amount}", "项目", cls, 1, amount, amount, cap)


def split(
    policy: Policy,
    *lines: BillLine,
    level: int = 3,
    later: bool = False,
    filing: FilingCover = LONG_TERM,
    acc: Accumulator = FRESH_YEAR,
    balance: int = 0,
    use_account: bool = False,
) -> Split:
    return compute_split(
        policy,
        lines,
        hospital_level=level,
        later_admission=later,
        filing=filing,
        accumulator=acc,
        account_balance_fen=balance,
        use_personal_account=use_account,
    )


# --- rnd ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bp", "expected"),
    [
        (5, 5000, 3),  # 2.5 → 3: half rounds up
        (3, 5000, 2),  # 1.5 → 2
        (25, 1000, 3),  # 2.5 → 3
        (14, 1000, 1),  # 1.4 → 1
        (16, 1000, 2),  # 1.6 → 2
        (1, 4999, 0),  # 0.4999 → 0
        (1, 5000, 1),  # 0.5 → 1
        (12_345, 1000, 1235),  # 1234.5 → 1235
        (12_344, 1000, 1234),  # 1234.4 → 1234
        (0, 8000, 0),
        (999_999_999, 10000, 999_999_999),  # 100 % is exact
        (999_999_999, 0, 0),
    ],
)
def test_rnd_is_half_up_in_integers(amount: int, bp: int, expected: int) -> None:
    assert rnd(amount, bp) == expected


# --- worked examples ------------------------------------------------------------------------------------


def test_class_a_inpatient_first_admission_employee_not_using_account() -> None:
    # A 3,000.00 → in_scope 300000; first admission: deductible min(300000, 100000) = 100000;
    # long-term filing, level 3: 8000 bp → fund rnd(200000, 8000) = 160000; personal 300000 − 160000 = 140000;
    # balance 500000 but the account is not used → account 0, cash 140000.
    got = split(EMP_IN, line(A, 300_000), balance=500_000, use_account=False)
    assert got == Split(300_000, 0, 0, 0, 300_000, 100_000, 160_000, 0, 140_000)


def test_class_a_inpatient_later_admission_uses_the_later_deductible() -> None:
    # A 200000, level 1 (9000 bp), later admission: deductible min(200000, 50000) = 50000;
    # fund rnd(150000, 9000) = 135000; personal 65000 → cash.
    got = split(EMP_IN, line(A, 200_000), level=1, later=True)
    assert got == Split(200_000, 0, 0, 0, 200_000, 50_000, 135_000, 0, 65_000)


def test_class_a_inpatient_first_admission_uses_the_first_deductible() -> None:
    # Same bill as above, first admission: deductible 100000; fund rnd(100000, 9000) = 90000; personal 110000.
    got = split(EMP_IN, line(A, 200_000), level=1, later=False)
    assert got == Split(200_000, 0, 0, 0, 200_000, 100_000, 90_000, 0, 110_000)


def test_class_b_self_pay_rounds_half_up() -> None:
    # B 12350 at 1500 bp: 1852.5 → b 1853; in_scope 12350 − 1853 = 10497. Outpatient deductible all used
    # (20000 − 20000 = 0) → deductible 0; level 1 7000 bp: fund rnd(10497, 7000) = 7347.9 → 7348;
    # personal 12350 − 7348 = 5002.
    got = split(EMP_OUT, line(B, 12_350), level=1, acc=Accumulator(deductible_used_fen=20_000))
    assert got == Split(12_350, 0, 0, 1853, 10_497, 0, 7348, 0, 5002)


def test_class_c_is_full_self_pay_and_account_covers_it() -> None:
    # C 50000 → full_self_pay 50000, in_scope 0, deductible min(0, 100000) = 0, fund 0;
    # personal 50000; employee using an account of 80000 → account 50000, cash 0.
    got = split(EMP_IN, line(C, 50_000), balance=80_000, use_account=True)
    assert got == Split(50_000, 50_000, 0, 0, 0, 0, 0, 50_000, 0)


def test_out_of_catalogue_over_its_price_cap() -> None:
    # OUT 7777 capped at 5000: over_cap 2777, eligible 5000 → full_self_pay 5000; nothing in scope; cash 7777.
    got = split(EMP_OUT, line(OUT, 7777, cap=5000))
    assert got == Split(7777, 5000, 2777, 0, 0, 0, 0, 0, 7777)


def test_price_caps_cut_a_and_b_lines_only_above_the_cap() -> None:
    # A 80000 cap 60000 → over 20000, in_scope 60000; B 30000 cap 40000 → over 0, b rnd(30000, 1000) = 3000,
    # in_scope 27000; A 10000 cap 0 (none) → in_scope 10000; A 5000 cap 5000 → over 0, in_scope 5000.
    # total 125000; in_scope 102000; later admission: deductible 50000; level 2 8500 bp:
    # fund rnd(52000, 8500) = 44200; personal 125000 − 44200 = 80800.
    lines = (line(A, 80_000, 60_000), line(B, 30_000, 40_000), line(A, 10_000), line(A, 5000, 5000))
    got = split(EMP_IN, *lines, level=2, later=True)
    assert got == Split(125_000, 0, 20_000, 3000, 102_000, 50_000, 44_200, 0, 80_800)


def test_outpatient_deductible_partly_used_this_year() -> None:
    # Deductible 20000, 15000 used → 5000 left (deductible_later 99999 is ignored for outpatient care, even
    # with later_admission set); A 25000, level 2 6000 bp: fund rnd(20000, 6000) = 12000; personal 13000.
    acc = Accumulator(deductible_used_fen=15_000, fund_paid_fen=0)
    got = split(EMP_OUT, line(A, 25_000), level=2, later=True, acc=acc)
    assert got == Split(25_000, 0, 0, 0, 25_000, 5000, 12_000, 0, 13_000)


def test_outpatient_deductible_used_beyond_it_leaves_none() -> None:
    # 30000 used of a 20000 deductible → max(0, −10000) = 0; A 25000, level 3 5000 bp: fund 12500.
    got = split(EMP_OUT, line(A, 25_000), acc=Accumulator(deductible_used_fen=30_000))
    assert got == Split(25_000, 0, 0, 0, 25_000, 0, 12_500, 0, 12_500)


def test_deductible_larger_than_in_scope() -> None:
    # A 40000 < first-admission deductible 100000 → deductible 40000, nothing left for the fund; cash 40000.
    got = split(EMP_IN, line(A, 40_000))
    assert got == Split(40_000, 0, 0, 0, 40_000, 40_000, 0, 0, 40_000)


def test_annual_cap_nearly_reached_limits_fund_pay() -> None:
    # Cap 10,000,000, fund already paid 9,950,000 → 50000 left. A 500000, deductible 100000, level 3
    # 8000 bp: rnd(400000, 8000) = 320000 → min(320000, 50000) = 50000; personal 450000.
    got = split(EMP_IN, line(A, 500_000), acc=Accumulator(fund_paid_fen=9_950_000))
    assert got == Split(500_000, 0, 0, 0, 500_000, 100_000, 50_000, 0, 450_000)


def test_annual_cap_already_exceeded_fund_pays_nothing() -> None:
    # Fund paid 10,200,000 > cap 10,000,000 → max(0, −200000) = 0 → fund 0. The inpatient deductible is per
    # admission: deductible_used 100000 this year does not reduce it → 100000. personal 500000.
    acc = Accumulator(deductible_used_fen=100_000, fund_paid_fen=10_200_000)
    got = split(EMP_IN, line(A, 500_000), acc=acc)
    assert got == Split(500_000, 0, 0, 0, 500_000, 100_000, 0, 0, 500_000)


@pytest.mark.parametrize(
    ("filing", "expected"),
    [
        # A 300000, deductible 100000, level 3 8000 bp.
        # Unfiled: 8000 − 2000 = 6000 → fund rnd(200000, 6000) = 120000; personal 180000.
        (NONE, Split(300_000, 0, 0, 0, 300_000, 100_000, 120_000, 0, 180_000)),
        # Temporary filing: 8000 − 1000 = 7000 → fund 140000; personal 160000.
        (TEMPORARY, Split(300_000, 0, 0, 0, 300_000, 100_000, 140_000, 0, 160_000)),
        # Long-term filing: no penalty, 8000 → fund 160000; personal 140000.
        (LONG_TERM, Split(300_000, 0, 0, 0, 300_000, 100_000, 160_000, 0, 140_000)),
    ],
)
def test_filing_penalty(filing: FilingCover, expected: Split) -> None:
    assert split(EMP_IN, line(A, 300_000), filing=filing) == expected


@pytest.mark.parametrize(
    ("filing", "fund"),
    [
        (NONE, 0),  # 1500 − 2000 = −500 → floored at 0 → fund 0
        (TEMPORARY, 10_000),  # 1500 − 1000 = 500 → rnd(200000, 500) = 10000
        (LONG_TERM, 30_000),  # 1500 → rnd(200000, 1500) = 30000
    ],
)
def test_penalty_larger_than_ratio_floors_the_ratio_at_zero(filing: FilingCover, fund: int) -> None:
    # Level 1 ratio only 1500 bp; A 300000, deductible 100000.
    policy = replace(EMP_IN, ratio_bp={1: 1500, 2: 8500, 3: 8000})
    got = split(policy, line(A, 300_000), level=1, filing=filing)
    assert got == Split(300_000, 0, 0, 0, 300_000, 100_000, fund, 0, 300_000 - fund)


def test_employee_account_short_of_the_personal_share() -> None:
    # As the first example (personal 140000), account balance 50000 used → account 50000, cash 90000.
    got = split(EMP_IN, line(A, 300_000), balance=50_000, use_account=True)
    assert got == Split(300_000, 0, 0, 0, 300_000, 100_000, 160_000, 50_000, 90_000)


def test_resident_never_pays_from_an_account() -> None:
    # Resident: A 300000, deductible 80000, level 3 7000 bp: fund rnd(220000, 7000) = 154000;
    # personal 146000; account asked for with a balance of 500000 → still 0; cash 146000.
    got = split(RES_IN, line(A, 300_000), balance=500_000, use_account=True)
    assert got == Split(300_000, 0, 0, 0, 300_000, 80_000, 154_000, 0, 146_000)


def test_mixed_multi_line_bill() -> None:
    # A 123457                → in_scope 123457
    # A 50000 cap 45000       → over 5000, in_scope 45000
    # B 33335                 → b rnd(33335, 1000) = 3333.5 → 3334, in_scope 30001
    # B 20000 cap 15005       → over 4995, b rnd(15005, 1000) = 1500.5 → 1501 (on the eligible part), in_scope 13504
    # C 8800                  → full_self_pay 8800
    # OUT 1200 cap 1000       → over 200, full_self_pay 1000
    # total 236792 = full 9800 + over 10195 + b 4835 + in_scope 211962.
    # First admission: deductible 100000. Level 2, temporary filing: 8500 − 1000 = 7500 bp;
    # rnd(111962, 7500) = 83971.5 → 83972; cap 10,000,000 − 1,000,000 paid leaves room → fund 83972.
    # personal 236792 − 83972 = 152820; account 100000 (all of it) → cash 52820.
    lines = (
        line(A, 123_457),
        line(A, 50_000, 45_000),
        line(B, 33_335),
        line(B, 20_000, 15_005),
        line(C, 8800),
        line(OUT, 1200, 1000),
    )
    acc = Accumulator(deductible_used_fen=0, fund_paid_fen=1_000_000)
    got = split(EMP_IN, *lines, level=2, filing=TEMPORARY, acc=acc, balance=100_000, use_account=True)
    assert got == Split(236_792, 9800, 10_195, 4835, 211_962, 100_000, 83_972, 100_000, 52_820)
    assert got.violations() == []


def test_empty_bill_is_all_zero() -> None:
    assert split(EMP_IN, balance=1000, use_account=True) == Split(0, 0, 0, 0, 0, 0, 0, 0, 0)


# --- Split.violations -----------------------------------------------------------------------------------

BALANCED = Split(100, 10, 0, 0, 90, 20, 50, 30, 20)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        ({"in_scope_fen": 91}, ["total != full_self_pay + over_cap + b_class_self_pay + in_scope"]),
        ({"over_cap_fen": 1}, ["total != full_self_pay + over_cap + b_class_self_pay + in_scope"]),
        ({"fund_pay_fen": 51}, ["total != fund_pay + account_pay + cash_pay"]),
        (
            {"total_fen": 101},
            [
                "total != full_self_pay + over_cap + b_class_self_pay + in_scope",
                "total != fund_pay + account_pay + cash_pay",
            ],
        ),
        ({"deductible_fen": 91}, ["deductible > in_scope"]),
        ({"deductible_fen": 90}, []),
        # Still balancing, but a part is negative: 50 + 70 − 20 = 100.
        ({"account_pay_fen": 70, "cash_pay_fen": -20}, ["cash_pay_fen < 0"]),
        ({"full_self_pay_fen": 15, "over_cap_fen": -5}, ["over_cap_fen < 0"]),
        (
            {"deductible_fen": -1, "fund_pay_fen": -50, "cash_pay_fen": 70, "in_scope_fen": 89},
            [
                "deductible_fen < 0",
                "fund_pay_fen < 0",
                "total != full_self_pay + over_cap + b_class_self_pay + in_scope",
                "total != fund_pay + account_pay + cash_pay",
            ],
        ),
    ],
)
def test_violations_name_each_broken_invariant(changes: dict[str, int], expected: list[str]) -> None:
    assert replace(BALANCED, **changes).violations() == expected


# --- the shipped policy file and bad files ---------------------------------------------------------------

PROVINCES = ("11", "12", "13", "31", "32", "33", "34", "50", "51")


def test_shipped_policies_cover_every_province_type_and_visit() -> None:
    policies = load_policies()
    assert len(policies) == 36
    expected = {(p, i, v) for p in PROVINCES for i in InsuranceType for v in VisitType}
    assert set(policies) == expected
    for key, policy in policies.items():
        assert (policy.province, policy.insurance_type, policy.visit_type) == key
        assert set(policy.ratio_bp) == {1, 2, 3}
        shares = [*policy.ratio_bp.values(), policy.b_class_self_pay_bp]
        shares += [policy.unfiled_penalty_bp, policy.temporary_filing_penalty_bp]
        assert all(0 <= bp <= 10000 for bp in shares), key
        assert min(policy.deductible_first_fen, policy.deductible_later_fen, policy.annual_cap_fen) >= 0, key


def test_shipped_beijing_employee_inpatient_row() -> None:
    assert load_policies()[("11", EMPLOYEE, INPATIENT)] == Policy(
        "11",
        EMPLOYEE,
        INPATIENT,
        deductible_first_fen=130_000,
        deductible_later_fen=65_000,
        ratio_bp={1: 9500, 2: 9200, 3: 9000},
        annual_cap_fen=50_000_000,
        b_class_self_pay_bp=1000,
        unfiled_penalty_bp=2000,
        temporary_filing_penalty_bp=1000,
    )


GOOD_ROW = {
    "province": '"31"',
    "insurance_type": '"EMPLOYEE"',
    "visit_type": '"INPATIENT"',
    "deductible_first_fen": "100000",
    "deductible_later_fen": "50000",
    "ratio_bp": '{ "1" = 9000, "2" = 8500, "3" = 8000 }',
    "annual_cap_fen": "10000000",
    "b_class_self_pay_bp": "1000",
    "unfiled_penalty_bp": "2000",
    "temporary_filing_penalty_bp": "1000",
}


def write_policies(path: Path, *rows: dict[str, str]) -> Path:
    text = "".join("[[policy]]\n" + "".join(f"{k} = {v}\n" for k, v in row.items()) + "\n" for row in rows)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_hand_written_file_loads(tmp_path: Path) -> None:
    policies = load_policies(write_policies(tmp_path / "p.toml", GOOD_ROW))
    assert policies == {("31", EMPLOYEE, INPATIENT): EMP_IN}


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"ratio_bp": '{ "1" = 9000, "2" = 10001, "3" = 8000 }'}, "policy[0].ratio_bp.2"),
        ({"ratio_bp": '{ "1" = 9000, "2" = 8500 }'}, "policy[0].ratio_bp.3"),
        ({"ratio_bp": "9000"}, "policy[0].ratio_bp"),
        ({"unfiled_penalty_bp": "-1"}, "policy[0].unfiled_penalty_bp"),
        ({"b_class_self_pay_bp": "10001"}, "policy[0].b_class_self_pay_bp"),
        ({"temporary_filing_penalty_bp": '"1000"'}, "policy[0].temporary_filing_penalty_bp"),
        ({"annual_cap_fen": "-5"}, "policy[0].annual_cap_fen"),
        ({"deductible_first_fen": "1000.5"}, "policy[0].deductible_first_fen"),
        ({"deductible_later_fen": "true"}, "policy[0].deductible_later_fen"),
        ({"province": "31"}, "policy[0].province"),
    ],
)
def test_a_bad_value_is_refused_naming_the_key(tmp_path: Path, changes: dict[str, str], key: str) -> None:
    path = write_policies(tmp_path / "p.toml", {**GOOD_ROW, **changes})
    with pytest.raises(ConfigError) as caught:
        load_policies(path)
    assert caught.value.key == key
    assert caught.value.path == str(path)
    assert key in str(caught.value)


def test_a_missing_key_is_refused_naming_it(tmp_path: Path) -> None:
    row = {k: v for k, v in GOOD_ROW.items() if k != "deductible_later_fen"}
    with pytest.raises(ConfigError) as caught:
        load_policies(write_policies(tmp_path / "p.toml", row))
    assert caught.value.key == "policy[0].deductible_later_fen"


def test_an_unknown_insurance_type_is_refused(tmp_path: Path) -> None:
    path = write_policies(tmp_path / "p.toml", GOOD_ROW, {**GOOD_ROW, "insurance_type": '"SELF_EMPLOYED"'})
    with pytest.raises(ConfigError) as caught:
        load_policies(path)
    assert caught.value.key.startswith("policy[1].")
    assert "insurance_type" in caught.value.key


def test_a_duplicate_row_is_refused(tmp_path: Path) -> None:
    path = write_policies(tmp_path / "p.toml", GOOD_ROW, {**GOOD_ROW, "visit_type": '"OUTPATIENT"'}, GOOD_ROW)
    with pytest.raises(ConfigError) as caught:
        load_policies(path)
    assert caught.value.key == "policy[2]"
    assert "duplicates" in str(caught.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_policies(tmp_path / "absent.toml")
    assert caught.value.key == "(file)"


def test_the_default_file_is_the_shipped_one() -> None:
    assert POLICY_FILE.name == "policies.toml"
    assert load_policies(POLICY_FILE) == load_policies()


# --- properties -----------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=150, deadline=None)
bps = st.integers(0, 10000)
fen = st.integers(0, 5_000_000)
bill_lines = st.builds(
    lambda cls, amount, cap: line(cls, amount, cap),
    st.sampled_from(CatalogueClass),
    fen,
    st.one_of(st.just(0), st.integers(1, 5_000_000)),
)
policies = st.builds(
    Policy,
    province=st.just("31"),
    insurance_type=st.sampled_from(InsuranceType),
    visit_type=st.sampled_from(VisitType),
    deductible_first_fen=st.integers(0, 500_000),
    deductible_later_fen=st.integers(0, 500_000),
    ratio_bp=st.fixed_dictionaries({1: bps, 2: bps, 3: bps}),
    annual_cap_fen=st.integers(0, 100_000_000),
    b_class_self_pay_bp=bps,
    unfiled_penalty_bp=bps,
    temporary_filing_penalty_bp=bps,
)
accumulators = st.builds(Accumulator, st.integers(0, 600_000), st.integers(0, 120_000_000))


@PROPERTY
@given(
    policy=policies,
    lines=st.lists(bill_lines, max_size=8),
    level=st.sampled_from((1, 2, 3)),
    later=st.booleans(),
    filing=st.sampled_from(FilingCover),
    acc=accumulators,
    balance=st.integers(0, 10_000_000),
    use_account=st.booleans(),
)
def test_every_split_balances_and_respects_its_limits(
    policy: Policy,
    lines: list[BillLine],
    level: int,
    later: bool,
    filing: FilingCover,
    acc: Accumulator,
    balance: int,
    use_account: bool,
) -> None:
    got = split(
        policy, *lines, level=level, later=later, filing=filing, acc=acc, balance=balance, use_account=use_account
    )
    assert got.violations() == []
    assert got.total_fen == sum(x.amount_fen for x in lines)
    assert got.fund_pay_fen <= max(0, policy.annual_cap_fen - acc.fund_paid_fen)
    assert got.fund_pay_fen <= got.in_scope_fen - got.deductible_fen
    assert got.account_pay_fen <= balance
    if policy.visit_type is INPATIENT:
        threshold = policy.deductible_later_fen if later else policy.deductible_first_fen
    else:
        threshold = max(0, policy.deductible_first_fen - acc.deductible_used_fen)
    assert got.deductible_fen <= threshold
    if policy.insurance_type is RESIDENT or not use_account:
        assert got.account_pay_fen == 0
    if filing is LONG_TERM and policy.annual_cap_fen - acc.fund_paid_fen >= got.in_scope_fen:
        # Without a penalty or the cap the fund pays at least the ratio's share, rounded down.
        assert got.fund_pay_fen >= (got.in_scope_fen - got.deductible_fen) * policy.ratio_bp[level] // 10000


@PROPERTY
@given(policy=policies, lines=st.lists(bill_lines, min_size=1, max_size=6), acc=accumulators)
def test_a_penalty_never_raises_the_fund_pay(policy: Policy, lines: list[BillLine], acc: Accumulator) -> None:
    fund = {f: split(policy, *lines, filing=f, acc=acc).fund_pay_fen for f in FilingCover}
    assert fund[NONE] <= fund[LONG_TERM]
    assert fund[TEMPORARY] <= fund[LONG_TERM]
