"""Medical settlement through the hub against the three real sandboxes: routing, splits, idempotency, reversal."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import grpc
import pytest

from adapters.domain import CardStatus, InsuranceType, VisitType
from gateway.api.status import error_reason
from gateway.periods import BEIJING, period_of
from regions.policy import load_policies, rnd
from tests.bills import (
    OUTPATIENT,
    VENUES,
    A,
    after,
    insured,
    ledger_rows,
    line,
    money,
    settle_request,
)
from tests.conftest import REGION_IDS, Federation, credential
from yikatong.v1 import settlement_pb2 as pb

T = 5


def balanced(split: pb.Split) -> bool:
    classes = split.full_self_pay_fen + split.over_cap_fen + split.b_class_self_pay_fen + split.in_scope_fen
    paid = split.fund_pay_fen + split.account_pay_fen + split.cash_pay_fen
    return split.total_fen == classes == paid and split.deductible_fen <= split.in_scope_fen


def pre_settle(request: pb.SettleRequest) -> pb.PreSettleRequest:
    fields = {f.name: getattr(request, f.name) for f in pb.PreSettleRequest.DESCRIPTOR.fields}
    return pb.PreSettleRequest(**fields)


@pytest.mark.parametrize("region", REGION_IDS)
async def test_a_bill_settles_under_the_insured_places_policy_in_every_province(
    federation: Federation, region: str
) -> None:
    sandbox = federation.sandboxes[region]
    for i, (province, venue) in enumerate(VENUES.items()):
        person = insured(federation, region, skip=i)
        request = settle_request(person, venue)
        before = money(sandbox, person, VisitType.INPATIENT)
        preview = await federation.settlement.PreSettle(pre_settle(request), timeout=T)
        assert money(sandbox, person, VisitType.INPATIENT) == before  # a pre-settlement changes nothing

        settled = (await federation.settlement.Settle(request, timeout=T)).settlement

        assert settled.state == pb.SETTLEMENT_STATE_SETTLED
        assert (settled.insured_region, settled.treatment_area) == (region, venue)
        assert person.insurance and settled.insured_area == person.insurance.insured_area
        assert settled.period == period_of(time.time())
        assert settled.split == preview.split and balanced(settled.split)
        assert settled.split.total_fen == sum(x.amount_fen for x in request.lines)
        assert money(sandbox, person, VisitType.INPATIENT) == after(before, settled.split), province
        stored = await federation.settlement.GetSettlement(
            pb.GetSettlementRequest(settlement_id=settled.settlement_id), timeout=T
        )
        assert stored.settlement == settled
    booked = ledger_rows(federation.hub.config.ledger_path, "SELECT treatment_province FROM bookings")
    assert sorted(row[0] for row in booked) == sorted(VENUES)


async def test_a_long_term_filing_lifts_the_unfiled_penalty(federation: Federation) -> None:
    person = insured(federation, "sichuan-chongqing", province="51", kind=InsuranceType.EMPLOYEE, skip=3)
    policy = load_policies()[("51", InsuranceType.EMPLOYEE, VisitType.INPATIENT)]
    request = settle_request(person, "310104", lines=(line(A, 1, 900_000),), use_account=False)
    unfiled = (await federation.settlement.PreSettle(pre_settle(request), timeout=T)).split

    today = dt.datetime.now(BEIJING).date()
    filing = await federation.settlement.FileRemoteCare(
        pb.FileRemoteCareRequest(
            request_id="file-1",
            card=credential(person),
            treatment_area="310000",
            filing_type=pb.FILING_TYPE_LONG_TERM_RESIDENT,
            valid_from=today.isoformat(),
            valid_until=(today + dt.timedelta(days=365)).isoformat(),
        ),
        timeout=T,
    )
    filed = (await federation.settlement.PreSettle(pre_settle(request), timeout=T)).split

    assert (filing.insured_region, filing.treatment_area) == ("sichuan-chongqing", "310000")
    base = 900_000 - unfiled.deductible_fen
    assert unfiled.fund_pay_fen == rnd(base, policy.ratio_bp[3] - policy.unfiled_penalty_bp)
    assert filed.fund_pay_fen == rnd(base, policy.ratio_bp[3])


@pytest.mark.parametrize(
    ("case", "code", "reason"),
    [
        ("uninsured", grpc.StatusCode.FAILED_PRECONDITION, "NOT_INSURED"),
        ("lost card", grpc.StatusCode.FAILED_PRECONDITION, "CARD_LOST"),
        ("venue in an unfederated province", grpc.StatusCode.FAILED_PRECONDITION, "REGION_NOT_FEDERATED"),
    ],
)
async def test_a_settlement_that_cannot_be_made_is_refused_and_not_booked(
    federation: Federation, case: str, code: grpc.StatusCode, reason: str
) -> None:
    people = federation.people("yangtze-delta")
    if case == "uninsured":
        person = next(p for p in people if p.status is CardStatus.NORMAL and p.insurance is None)
    elif case == "lost card":
        person = next(p for p in people if p.status is CardStatus.LOST and p.insurance)
    else:
        person = insured(federation, "yangtze-delta")
    request = settle_request(person, "440100" if "unfederated" in case else "510100")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.settlement.Settle(request, timeout=T)
    assert (refused.value.code(), error_reason(refused.value)) == (code, reason)
    assert ledger_rows(federation.hub.config.ledger_path, "SELECT COUNT(*) FROM settlements") == [(0,)]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("lines[1].amount_fen", lambda r: setattr(r.lines[1], "amount_fen", r.lines[1].amount_fen + 1)),
        ("lines[0].catalogue_class", lambda r: setattr(r.lines[0], "catalogue_class", 0)),
        ("lines[2].quantity", lambda r: setattr(r.lines[2], "quantity", 0)),
        ("lines[3].price_cap_fen", lambda r: setattr(r.lines[3], "price_cap_fen", -1)),
        ("lines", lambda r: r.ClearField("lines")),
        ("hospital_level", lambda r: setattr(r, "hospital_level", 4)),
        ("visit_type", lambda r: setattr(r, "visit_type", 9)),
        ("venue.area_code", lambda r: setattr(r.venue, "area_code", "31010")),
        ("venue.institution_id", lambda r: setattr(r.venue, "institution_id", "")),
        ("card.holder_name", lambda r: setattr(r.card, "holder_name", "")),
        ("request_id", lambda r: setattr(r, "request_id", "")),
    ],
)
async def test_a_bad_bill_is_refused_naming_the_field(federation: Federation, field: str, change: object) -> None:
    request = settle_request(insured(federation, "beijing-tianjin-hebei"), "310104")
    change(request)  # type: ignore[operator]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.settlement.Settle(request, timeout=T)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith(field + ":")


@pytest.mark.parametrize("region", REGION_IDS)
async def test_fifty_concurrent_settles_with_one_request_id_settle_once(federation: Federation, region: str) -> None:
    sandbox = federation.sandboxes[region]
    person = insured(federation, region, kind=InsuranceType.EMPLOYEE)
    request = settle_request(person, "500103", visit=OUTPATIENT, level=2, request_id=f"burst-{region}")
    before = money(sandbox, person, VisitType.OUTPATIENT)

    calls = [federation.settlement.Settle(request, timeout=T) for _ in range(50)]
    answers = await asyncio.gather(*calls, return_exceptions=True)

    settled = [a.settlement for a in answers if isinstance(a, pb.SettleResponse)]
    busy = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert settled and len(settled) + len(busy) == 50
    assert all(s == settled[0] for s in settled)
    assert {(e.code(), error_reason(e)) for e in busy} <= {(grpc.StatusCode.ABORTED, "REQUEST_IN_PROGRESS")}
    assert money(sandbox, person, VisitType.OUTPATIENT) == after(before, settled[0].split)
    assert ledger_rows(
        federation.hub.config.ledger_path, "SELECT state FROM settlements WHERE request_id = ?", request.request_id
    ) == [("SETTLED",)]
    replay = await federation.settlement.Settle(request, timeout=T)
    assert replay.settlement == settled[0]
    labels = {"insured_region": region, "treatment_region": "sichuan-chongqing"}
    assert federation.metric("yikatong_settlements_total", {**labels, "outcome": "settled"}) == 1
    assert federation.metric("yikatong_settlement_fund_pay_fen_total", labels) == settled[0].split.fund_pay_fen

    other = settle_request(person, "500103", visit=OUTPATIENT, level=1, request_id=request.request_id)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await federation.settlement.Settle(other, timeout=T)
    assert (reused.value.code(), error_reason(reused.value)) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "IDEMPOTENCY_KEY_REUSED",
    )
    assert money(sandbox, person, VisitType.OUTPATIENT) == after(before, settled[0].split)


@pytest.mark.parametrize("region", REGION_IDS)
async def test_a_reversal_restores_the_region_once(federation: Federation, region: str) -> None:
    sandbox = federation.sandboxes[region]
    person = insured(federation, region, kind=InsuranceType.EMPLOYEE, skip=1)
    before = money(sandbox, person, VisitType.INPATIENT)
    settled = (await federation.settlement.Settle(settle_request(person, "120103"), timeout=T)).settlement
    reverse = pb.ReverseSettlementRequest(request_id="rev-1", settlement_id=settled.settlement_id, reason="退费")

    reversed_ = (await federation.settlement.ReverseSettlement(reverse, timeout=T)).settlement
    replayed = (await federation.settlement.ReverseSettlement(reverse, timeout=T)).settlement
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await federation.settlement.ReverseSettlement(
            pb.ReverseSettlementRequest(request_id="rev-2", settlement_id=settled.settlement_id), timeout=T
        )

    assert reversed_.state == pb.SETTLEMENT_STATE_REVERSED and replayed == reversed_
    assert reversed_.reversal_period == settled.period and reversed_.split == settled.split
    assert money(sandbox, person, VisitType.INPATIENT) == before
    assert (twice.value.code(), error_reason(twice.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SETTLEMENT_NOT_SETTLED",
    )
    bookings = ledger_rows(
        federation.hub.config.ledger_path,
        "SELECT kind, count, fund_pay_fen FROM bookings WHERE settlement_id = ? ORDER BY kind DESC",
        settled.settlement_id,
    )
    assert bookings == [("SETTLE", 1, settled.split.fund_pay_fen), ("REVERSE", -1, -settled.split.fund_pay_fen)]


async def test_an_unknown_settlement_is_not_found(federation: Federation) -> None:
    for call in (
        federation.settlement.GetSettlement(pb.GetSettlementRequest(settlement_id="stl-nope"), timeout=T),
        federation.settlement.ReverseSettlement(
            pb.ReverseSettlementRequest(request_id="r-x", settlement_id="stl-nope"), timeout=T
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call
        assert (missing.value.code(), error_reason(missing.value)) == (
            grpc.StatusCode.NOT_FOUND,
            "SETTLEMENT_NOT_FOUND",
        )
