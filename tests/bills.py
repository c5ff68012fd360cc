"""Bills and people for the hub's settlement tests."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

from adapters.domain import CardStatus, InsuranceType, VisitType
from regions.policy import Accumulator
from regions.sandbox import RunningSandbox
from regions.seed import VENUES as VENUES  # the tests' treatment places, re-exported
from regions.seed import SeededPerson
from tests.conftest import Federation, credential
from yikatong.v1 import common_pb2, settlement_pb2

A, B, C = settlement_pb2.CATALOGUE_CLASS_A, settlement_pb2.CATALOGUE_CLASS_B, settlement_pb2.CATALOGUE_CLASS_C
OUTPATIENT, INPATIENT = settlement_pb2.VISIT_TYPE_OUTPATIENT, settlement_pb2.VISIT_TYPE_INPATIENT


def line(cls: settlement_pb2.CatalogueClass.ValueType, qty: int, price: int, cap: int = 0) -> settlement_pb2.BillLine:
    return settlement_pb2.BillLine(
        item_code=f"ITEM{cls}{qty}{price}",
        item_name="检查",
        catalogue_class=cls,
        quantity=qty,
        unit_price_fen=price,
        amount_fen=qty * price,
        price_cap_fen=cap,
    )


STANDARD_LINES = (line(A, 2, 45_000), line(B, 3, 12_345), line(C, 1, 8_800), line(A, 1, 300_000, cap=250_000))


def settle_request(
    person: SeededPerson,
    venue_area: str,
    *,
    request_id: str | None = None,
    visit: settlement_pb2.VisitType.ValueType = INPATIENT,
    level: int = 3,
    lines: tuple[settlement_pb2.BillLine, ...] = STANDARD_LINES,
    use_account: bool = True,
) -> settlement_pb2.SettleRequest:
    return settlement_pb2.SettleRequest(
        request_id=request_id or str(uuid.uuid4()),
        card=credential(person),
        venue=common_pb2.Venue(area_code=venue_area, institution_id=f"H{venue_area}01"),
        hospital_level=level,
        visit_type=visit,
        lines=lines,
        use_personal_account=use_account,
    )


def insured(
    fed: Federation, region: str, *, province: str = "", kind: InsuranceType | None = None, skip: int = 0
) -> SeededPerson:
    """A NORMAL-card holder insured in the region (optionally in a province and of an insurance type)."""
    people = [
        p
        for p in fed.people(region)
        if p.status is CardStatus.NORMAL
        and p.insurance is not None
        and p.issuing_area.startswith(province)
        and (kind is None or p.insurance.insurance_type is kind)
    ]
    return people[skip]


def money(sandbox: RunningSandbox, person: SeededPerson, visit: VisitType) -> tuple[Accumulator, int]:
    """The person's accumulator of the visit type this year and account balance, at the region."""
    ssn = person.social_security_number
    return sandbox.medical.accumulator(ssn, visit), sandbox.medical.insured[ssn].account_balance_fen


def after(before: tuple[Accumulator, int], split: settlement_pb2.Split) -> tuple[Accumulator, int]:
    """What the region's figures must be after one settlement of ``split``."""
    acc, balance = before
    moved = Accumulator(acc.deductible_used_fen + split.deductible_fen, acc.fund_paid_fen + split.fund_pay_fen)
    return moved, balance - split.account_pay_fen


def ledger_rows(path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Rows read straight from the hub's ledger file (a second connection; WAL lets it read)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()
