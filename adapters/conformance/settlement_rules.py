"""Rules of cross-province medical settlement at the insured place (DESIGN §4.5, §6).

The split a region computes is the reference: each check asks the sandbox's own medical system what the bill
it sent should give (``sandbox.medical.pre_settle``, no side effects) and reads the person's accumulators and
account there, so an adapter that drops or mangles a field of the bill, or of the split, is caught.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from adapters.conformance.rule import Rule, Unmet, answer, describe, holds, refused, rule, same
from adapters.conformance.target import Target
from adapters.domain import Bill, FileRemoteCare, FilingType, OutcomeState, Reversal, Split, VisitType
from adapters.errors import (
    IdempotencyKeyReused,
    NotInsured,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from regions.policy import Accumulator

# A request id with characters a careless encoder breaks (path, query, fragment, percent, space).
ODD_REQUEST_ID = "hub/2026 07?x=1#%2F~"


def _new_id() -> str:
    return str(uuid.uuid4())


def _expected_split(t: Target, bill: Bill) -> Split:
    """What the region's own system gives the bill now (nothing changes)."""
    try:
        return t.sandbox.medical.pre_settle(bill)
    except Exception as exc:  # a broken sample or policy table, not the adapter's fault, but say so
        raise Unmet("the sandbox to price the sample bill", describe(exc)) from exc


def _moved(before: tuple[Accumulator, int], split: Split) -> tuple[Accumulator, int]:
    """The person's figures after one settlement of ``split``."""
    acc, balance = before
    return (
        Accumulator(acc.deductible_used_fen + split.deductible_fen, acc.fund_paid_fen + split.fund_pay_fen),
        balance - split.account_pay_fen,
    )


def _balanced(split: Split, bill: Bill) -> None:
    broken = split.violations()
    holds(not broken, "a split that keeps the §4.5 invariants", "; ".join(broken))
    same("total_fen (the sum of the bill's lines)", sum(line.amount_fen for line in bill.lines), split.total_fen)


@rule("FILING", "备案 is recorded once per request id with the request's fields, and the next split honours it")
async def filing(t: Target) -> None:
    person = t.samples.employee
    area = t.samples.treatment_area[:2] + "0000"  # the whole treatment province
    request = FileRemoteCare(_new_id(), t.credential(person), area, FilingType.WORKING_AWAY, "2020-01-01", "2099-12-31")
    first = await answer("file_remote_care", t.adapter.file_remote_care(request, timeout=t.timeout))
    again = await answer("file_remote_care replayed", t.adapter.file_remote_care(request, timeout=t.timeout))
    got = (first.treatment_area, first.filing_type, first.valid_from, first.valid_until)
    same("filing fields", (area, FilingType.WORKING_AWAY, "2020-01-01", "2099-12-31"), got)
    same("the replay's answer", first, again)
    same("filings the region holds", 1, len(t.sandbox.medical.insured[person.social_security_number].filings))
    await refused(
        IdempotencyKeyReused,
        "file_remote_care of another filing type under the same request_id",
        t.adapter.file_remote_care(replace(request, filing_type=FilingType.REFERRAL), timeout=t.timeout),
    )
    bill = t.bill(person, _new_id())
    split = await answer("pre_settle after the filing", t.adapter.pre_settle(bill, timeout=t.timeout))
    same("split with a long-term filing", _expected_split(t, bill), split)


@rule("NOT-INSURED", "a person with no medical insurance gets NotInsured from filing, pre-settlement and settlement")
async def not_insured(t: Target) -> None:
    person = t.samples.uninsured
    bill = replace(t.bill(t.samples.employee, _new_id()), credential=t.credential(person))
    filed = FileRemoteCare(
        _new_id(), bill.credential, bill.treatment_area, FilingType.REFERRAL, "2020-01-01", "2099-12-31"
    )
    await refused(NotInsured, "pre_settle for an uninsured person", t.adapter.pre_settle(bill, timeout=t.timeout))
    await refused(NotInsured, "settle for an uninsured person", t.adapter.settle(bill, timeout=t.timeout))
    await refused(
        NotInsured, "file_remote_care for an uninsured person", t.adapter.file_remote_care(filed, timeout=t.timeout)
    )
    same("settlements the region holds", {}, t.sandbox.medical.settlements)


@rule("PRE-SETTLE", "预结算 gives the region's split of the bill exactly and changes nothing")
async def pre_settle(t: Target) -> None:
    person = t.samples.employee
    before = t.money(person)
    bill = t.bill(person, _new_id())
    split = await answer("pre_settle", t.adapter.pre_settle(bill, timeout=t.timeout))
    _balanced(split, bill)
    same("split", _expected_split(t, bill), split)
    same("accumulators and account after pre_settle", before, t.money(person))
    same("settlements the region holds", {}, t.sandbox.medical.settlements)


@rule("SETTLE-SPLIT", "a settlement's split balances, totals the bill's lines and is the one the region booked")
async def settle_split(t: Target) -> None:
    bills = (
        t.bill(t.samples.employee, _new_id()),
        t.bill(
            t.samples.resident, _new_id(), visit_type=VisitType.OUTPATIENT, hospital_level=2, use_personal_account=False
        ),
        t.bill(t.samples.employee, _new_id(), later_admission=True, hospital_level=1),
    )
    for bill, person in zip(bills, (t.samples.employee, t.samples.resident, t.samples.employee), strict=True):
        before = t.money(person, bill.visit_type)
        expected = _expected_split(t, bill)
        settled = await answer("settle", t.adapter.settle(bill, timeout=t.timeout))
        _balanced(settled.split, bill)
        same("split", expected, settled.split)
        same("request_id", bill.request_id, settled.request_id)
        booked = t.sandbox.medical.outcome(bill.request_id).settlement
        same("the settlement the region booked", booked, settled)
        same("accumulators and account moved by the split", _moved(before, expected), t.money(person, bill.visit_type))


@rule("SETTLE-REPLAY", "settling the same bill twice under one message id must replay the first settlement")
async def settle_replay(t: Target) -> None:
    person = t.samples.employee
    bill = t.bill(person, _new_id())
    first = await answer("settle", t.adapter.settle(bill, timeout=t.timeout))
    once = t.money(person)
    again = await answer("settle replayed under the same request_id", t.adapter.settle(bill, timeout=t.timeout))
    same("region_settlement_id", first.region_settlement_id, again.region_settlement_id)
    same("the replay's answer", first, again)
    same("accumulators and account (moved once)", once, t.money(person))
    held = [
        r for r in t.sandbox.medical.settlements.values() if r.social_security_number == person.social_security_number
    ]
    same("settlements the region holds for the person", 1, len(held))
    error = await refused(
        IdempotencyKeyReused,
        "settle of another bill under the same request_id",
        t.adapter.settle(replace(bill, hospital_level=2), timeout=t.timeout),
    )
    same("the error's request_id", bill.request_id, error.metadata.get("request_id"))
    same("accumulators and account (moved once)", once, t.money(person))


@rule("SETTLE-OUTCOME", "the outcome of a request id is NOT_FOUND before it settles and SETTLED with it after")
async def settle_outcome(t: Target) -> None:
    unseen = await answer(
        "settlement_outcome of an unseen id", t.adapter.settlement_outcome(_new_id(), timeout=t.timeout)
    )
    same("outcome of an unseen id", (OutcomeState.NOT_FOUND, None), (unseen.state, unseen.settlement))
    bill = t.bill(t.samples.employee, ODD_REQUEST_ID)
    settled = await answer(f"settle under request_id {ODD_REQUEST_ID!r}", t.adapter.settle(bill, timeout=t.timeout))
    same("request_id", ODD_REQUEST_ID, settled.request_id)
    same("the region's message id", [ODD_REQUEST_ID], list(t.sandbox.medical.settlements))
    seen = await answer(
        "settlement_outcome after settle", t.adapter.settlement_outcome(ODD_REQUEST_ID, timeout=t.timeout)
    )
    same("outcome after settle", (OutcomeState.SETTLED, settled), (seen.state, seen.settlement))


@rule("SETTLE-CORRECTION", "冲正 of a settled id restores the money; of an unseen id it makes a late settle refused")
async def settle_correction(t: Target) -> None:
    person = t.samples.employee
    before = t.money(person)
    bill = t.bill(person, _new_id())
    settled = await answer("settle", t.adapter.settle(bill, timeout=t.timeout))
    await answer("correct_settlement of a settled id", t.adapter.correct_settlement(bill.request_id, timeout=t.timeout))
    same("accumulators and account after the correction", before, t.money(person))
    await answer("correct_settlement repeated", t.adapter.correct_settlement(bill.request_id, timeout=t.timeout))
    same("accumulators and account after a repeated correction", before, t.money(person))
    outcome = await answer("settlement_outcome", t.adapter.settlement_outcome(bill.request_id, timeout=t.timeout))
    same("outcome after the correction", (OutcomeState.CORRECTED, settled), (outcome.state, outcome.settlement))
    late = t.bill(person, _new_id())
    await answer("correct_settlement of an unseen id", t.adapter.correct_settlement(late.request_id, timeout=t.timeout))
    error = await refused(
        SettlementCorrected, "a late settle of the corrected id", t.adapter.settle(late, timeout=t.timeout)
    )
    holds(not error.retryable, "a refusal that is not retryable", f"retryable {describe(error)}")
    same("accumulators and account after the refused late settle", before, t.money(person))


@rule("SETTLE-REVERSAL", "撤销 restores the money exactly, once: a second reversal raises SettlementNotSettled")
async def settle_reversal(t: Target) -> None:
    person = t.samples.employee
    ssn = person.social_security_number
    before = t.money(person)
    bill = t.bill(person, _new_id())
    settled = await answer("settle", t.adapter.settle(bill, timeout=t.timeout))
    reversal = Reversal(_new_id(), bill.request_id, ssn, "wrong patient")
    await answer("reverse_settlement", t.adapter.reverse_settlement(reversal, timeout=t.timeout))
    same("accumulators and account after the reversal", before, t.money(person))
    await answer("reverse_settlement replayed", t.adapter.reverse_settlement(reversal, timeout=t.timeout))
    error = await refused(
        SettlementNotSettled,
        "a second reversal under a new request_id",
        t.adapter.reverse_settlement(replace(reversal, request_id=_new_id()), timeout=t.timeout),
    )
    same("the error's state", "REVERSED", error.metadata.get("state"))
    same("accumulators and account after a second reversal", before, t.money(person))
    outcome = await answer("settlement_outcome", t.adapter.settlement_outcome(bill.request_id, timeout=t.timeout))
    same("outcome after the reversal", (OutcomeState.REVERSED, settled), (outcome.state, outcome.settlement))
    await refused(
        SettlementNotFound,
        "reverse_settlement of an id never settled",
        t.adapter.reverse_settlement(Reversal(_new_id(), _new_id(), ssn, ""), timeout=t.timeout),
    )


RULES: tuple[Rule, ...] = (
    filing,
    not_insured,
    pre_settle,
    settle_split,
    settle_replay,
    settle_outcome,
    settle_correction,
    settle_reversal,
)
