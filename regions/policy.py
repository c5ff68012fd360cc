"""The insured place's policy (参保地政策) and the split it gives a bill (DESIGN §4.5).

The policy tables ship in ``regions/policies.toml``: one row per province, insurance type and visit type.
:func:`compute_split` is the §4.5 algorithm, in integer fen with half-up rounding; a region's system runs it
with the person's accumulators and account and the filing that covers the treatment place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.domain import BillLine, CatalogueClass, InsuranceType, Split, VisitType
from regions.config import ConfigError, Table

POLICY_FILE = Path(__file__).resolve().parent / "policies.toml"
LEVELS = (1, 2, 3)
_FEN_FIELDS = ("deductible_first_fen", "deductible_later_fen", "annual_cap_fen")
_BP_FIELDS = ("b_class_self_pay_bp", "unfiled_penalty_bp", "temporary_filing_penalty_bp")


def rnd(amount_fen: int, bp: int) -> int:
    """``amount × bp / 10000`` rounded half-up, in integer arithmetic."""
    return (amount_fen * bp + 5000) // 10000


class FilingCover(enum.Enum):
    """Which kind of filing (备案) covers the treatment place on the day of treatment."""

    NONE = "NONE"
    TEMPORARY = "TEMPORARY"
    LONG_TERM = "LONG_TERM"


@dataclass(frozen=True)
class Policy:
    """§4.5 parameters of one (province, insurance type, visit type).

    Attributes:
        deductible_first_fen: 起付线; inpatient: the year's first admission; outpatient: the yearly deductible.
        deductible_later_fen: inpatient admissions after the first in the year.
        ratio_bp: the fund's share of in-scope cost above the deductible, by hospital level 1–3.
        annual_cap_fen: the most the fund pays in a year for this visit type.
        b_class_self_pay_bp: share of a 乙类 line the patient pays first.
        unfiled_penalty_bp: ratio cut without a valid filing.
        temporary_filing_penalty_bp: ratio cut with a temporary (referral, emergency, other) filing.
    """

    province: str
    insurance_type: InsuranceType
    visit_type: VisitType
    deductible_first_fen: int
    deductible_later_fen: int
    ratio_bp: Mapping[int, int]
    annual_cap_fen: int
    b_class_self_pay_bp: int
    unfiled_penalty_bp: int
    temporary_filing_penalty_bp: int

    def as_json(self) -> dict[str, object]:
        """The row as ``yikatong sandbox policy`` prints it (DESIGN §9)."""
        return {
            "province": self.province,
            "insurance_type": self.insurance_type.value,
            "visit_type": self.visit_type.value,
            "deductible_first_fen": self.deductible_first_fen,
            "deductible_later_fen": self.deductible_later_fen,
            "ratio_bp": {str(level): self.ratio_bp[level] for level in LEVELS},
            "annual_cap_fen": self.annual_cap_fen,
            "b_class_self_pay_bp": self.b_class_self_pay_bp,
            "unfiled_penalty_bp": self.unfiled_penalty_bp,
            "temporary_filing_penalty_bp": self.temporary_filing_penalty_bp,
        }


@dataclass(frozen=True)
class Accumulator:
    """What this year's settlements of one visit type already used."""

    deductible_used_fen: int = 0
    fund_paid_fen: int = 0


PolicyKey = tuple[str, InsuranceType, VisitType]


def compute_split(
    policy: Policy,
    lines: Iterable[BillLine],
    *,
    hospital_level: int,
    later_admission: bool,
    filing: FilingCover,
    accumulator: Accumulator,
    account_balance_fen: int,
    use_personal_account: bool,
) -> Split:
    """The §4.5 split of a bill under ``policy``."""
    total = full_self_pay = over_cap = b_class = in_scope = 0
    for line in lines:
        total += line.amount_fen
        over = max(0, line.amount_fen - line.price_cap_fen) if line.price_cap_fen else 0
        eligible = line.amount_fen - over
        over_cap += over
        if line.catalogue_class is CatalogueClass.A:
            in_scope += eligible
        elif line.catalogue_class is CatalogueClass.B:
            b = rnd(eligible, policy.b_class_self_pay_bp)
            b_class += b
            in_scope += eligible - b
        else:
            full_self_pay += eligible
    if policy.visit_type is VisitType.INPATIENT:
        threshold = policy.deductible_later_fen if later_admission else policy.deductible_first_fen
    else:
        threshold = max(0, policy.deductible_first_fen - accumulator.deductible_used_fen)
    deductible = min(in_scope, threshold)
    penalty = {
        FilingCover.NONE: policy.unfiled_penalty_bp,
        FilingCover.TEMPORARY: policy.temporary_filing_penalty_bp,
        FilingCover.LONG_TERM: 0,
    }[filing]
    ratio = max(0, policy.ratio_bp[hospital_level] - penalty)
    fund_pay = min(rnd(in_scope - deductible, ratio), max(0, policy.annual_cap_fen - accumulator.fund_paid_fen))
    personal = total - fund_pay
    employee = policy.insurance_type is InsuranceType.EMPLOYEE
    account_pay = min(personal, account_balance_fen) if employee and use_personal_account else 0
    return Split(
        total_fen=total,
        full_self_pay_fen=full_self_pay,
        over_cap_fen=over_cap,
        b_class_self_pay_fen=b_class,
        in_scope_fen=in_scope,
        deductible_fen=deductible,
        fund_pay_fen=fund_pay,
        account_pay_fen=account_pay,
        cash_pay_fen=personal - account_pay,
    )


def _policy(path: Path, row: Mapping[str, object], index: int) -> Policy:
    where = f"policy[{index}]."
    t = Table(path, row, where)
    try:
        insurance_type = InsuranceType(t.get("insurance_type", str))
        visit_type = VisitType(t.get("visit_type", str))
    except ValueError as exc:
        raise ConfigError(t.path, where + "insurance_type/visit_type", "", str(exc)) from None
    ratios = t.table("ratio_bp")
    ratio_bp = {level: ratios.get(str(level), int) for level in LEVELS}
    money = {key: t.get(key, int) for key in _FEN_FIELDS}
    shares = {key: t.get(key, int) for key in _BP_FIELDS}
    for key, value in money.items():
        if value < 0:
            raise ConfigError(path, where + key, value, "must be ≥ 0 fen")
    for key, value in [*shares.items(), *((f"ratio_bp.{k}", v) for k, v in ratio_bp.items())]:
        if not 0 <= value <= 10000:
            raise ConfigError(path, where + key, value, "must be from 0 to 10000 basis points")
    return Policy(t.get("province", str), insurance_type, visit_type, ratio_bp=ratio_bp, **money, **shares)


def load_policies(path: Path = POLICY_FILE) -> dict[PolicyKey, Policy]:
    """Every policy row of the file, keyed by (province, insurance type, visit type); duplicates refused."""
    root = Table.load(path)
    rows = root.get("policy", list)
    policies: dict[PolicyKey, Policy] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(path, f"policy[{i}]", row, "must be a table")
        policy = _policy(path, row, i)
        key = (policy.province, policy.insurance_type, policy.visit_type)
        if key in policies:
            raise ConfigError(path, f"policy[{i}]", key, "duplicates an earlier row")
        policies[key] = policy
    return policies
