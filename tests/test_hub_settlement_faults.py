"""Settlement when things fail, against real sandboxes: late answers, unknown outcomes, broken splits, a killed hub.

Afterwards the hub's ledger and the insured region's accumulators must agree: a settlement is either booked and
applied at the region, or voided at the region by a correction and never booked. Every branch of the logic is
unit-tested with fake regions (tests/unit/test_settlement.py); here each fault is played once on the real wire —
the late answer on all three wires, the others on one region each.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from adapters.domain import CardStatus, InsuranceType, OutcomeState, VisitType
from gateway.api.status import error_reason
from regions.sandbox import RunningSandbox
from regions.seed import generate
from tests.bills import after, insured, ledger_rows, money, settle_request
from tests.conftest import REGION_IDS, YIKATONG, Federation, StartSandbox
from yikatong.v1 import settlement_pb2 as pb
from yikatong.v1 import settlement_pb2_grpc

T = 5


def fast_hub(federation: Federation, call_timeout: float = 0.4) -> None:
    """Shorten the hub's per-call timeout and the outbox's retry delays, so faults play out in seconds."""
    for region in federation.hub.federation.regions:
        federation.tune(region, call_timeout_seconds=call_timeout)
    federation.hub.services.outbox.base_delay_seconds = 0.05
    federation.hub.services.outbox.max_delay_seconds = 0.2
    federation.hub.services.outbox.poll_seconds = 0.05


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Wait until ``check`` passes, polling; fail after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def state_of(stub: settlement_pb2_grpc.MedicalSettlementServiceStub, settlement_id: str) -> int:
    answer = await stub.GetSettlement(pb.GetSettlementRequest(settlement_id=settlement_id), timeout=T)
    return answer.settlement.state


@pytest.mark.parametrize("region", REGION_IDS)
async def test_a_settlement_answered_after_the_deadline_is_resolved_by_its_outcome(
    federation: Federation, region: str
) -> None:
    fast_hub(federation)
    sandbox = federation.sandboxes[region]
    person = insured(federation, region, kind=InsuranceType.EMPLOYEE, skip=2)
    before = money(sandbox, person, VisitType.INPATIENT)
    # The settle call is answered late (after it was applied); the outcome query answers on time.
    sandbox.faults.update({"answer_delay_ms": 1200, "answer_delay_calls": 1, "answer_delay_scope": "settlement"})

    settled = (await federation.settlement.Settle(settle_request(person, "310104"), timeout=T)).settlement

    assert settled.state == pb.SETTLEMENT_STATE_SETTLED
    assert money(sandbox, person, VisitType.INPATIENT) == after(before, settled.split)
    outcome = sandbox.medical.outcome(settled.request_id)
    assert outcome.state is OutcomeState.SETTLED and outcome.settlement is not None
    assert outcome.settlement.split.fund_pay_fen == settled.split.fund_pay_fen
    assert ledger_rows(
        federation.hub.config.ledger_path,
        "SELECT fund_pay_fen FROM bookings WHERE settlement_id = ?",
        settled.settlement_id,
    ) == [(settled.split.fund_pay_fen,)]


@pytest.mark.parametrize("region", ["beijing-tianjin-hebei"])
async def test_an_unknown_outcome_is_corrected_until_the_region_acknowledges(
    federation: Federation, region: str
) -> None:
    fast_hub(federation)
    sandbox = federation.sandboxes[region]
    person = insured(federation, region, skip=4)
    before = money(sandbox, person, VisitType.INPATIENT)
    # Every settlement call answered late: settle, outcome query and corrections all time out at the hub.
    sandbox.faults.update({"answer_delay_ms": 1000, "answer_delay_scope": "settlement"})
    request = settle_request(person, "510100")

    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await federation.settlement.Settle(request, timeout=T)
    assert (unknown.value.code(), error_reason(unknown.value)) == (
        grpc.StatusCode.UNAVAILABLE,
        "SETTLEMENT_OUTCOME_UNKNOWN",
    )
    [(settlement_id, state)] = ledger_rows(
        federation.hub.config.ledger_path, "SELECT settlement_id, state FROM settlements"
    )
    assert state == "CORRECTION_PENDING"
    assert sandbox.medical.settlements[request.request_id].settlement is not None  # the region did settle it

    sandbox.faults.update({"clear": True})
    await eventually(lambda: _corrected(federation, settlement_id))

    assert money(sandbox, person, VisitType.INPATIENT) == before
    assert sandbox.medical.outcome(request.request_id).state is OutcomeState.CORRECTED
    labels = {"insured_region": region, "treatment_region": "sichuan-chongqing", "outcome": "outcome_unknown"}
    assert federation.metric("yikatong_settlements_total", labels) == 1
    delivered = {"kind": "CORRECTION", "region": region, "result": "delivered"}
    assert federation.metric("yikatong_outbox_deliveries_total", delivered) == 1
    assert federation.metric("yikatong_outbox_depth") == 0
    assert ledger_rows(federation.hub.config.ledger_path, "SELECT COUNT(*) FROM bookings") == [(0,)]
    with pytest.raises(grpc.aio.AioRpcError) as replayed:
        await federation.settlement.Settle(request, timeout=T)
    assert error_reason(replayed.value) == "SETTLEMENT_OUTCOME_UNKNOWN"


async def _corrected(federation: Federation, settlement_id: str) -> bool:
    return await state_of(federation.settlement, settlement_id) == pb.SETTLEMENT_STATE_CORRECTED


@pytest.mark.parametrize("region", ["sichuan-chongqing"])
async def test_a_reversal_the_region_does_not_confirm_is_pending_then_delivered(
    federation: Federation, region: str
) -> None:
    fast_hub(federation)
    sandbox = federation.sandboxes[region]
    person = insured(federation, region, skip=6)
    before = money(sandbox, person, VisitType.INPATIENT)
    settled = (await federation.settlement.Settle(settle_request(person, "310104"), timeout=T)).settlement
    sandbox.faults.update({"answer_delay_ms": 1000, "answer_delay_scope": "settlement"})  # answered too late

    pending = await federation.settlement.ReverseSettlement(
        pb.ReverseSettlementRequest(request_id="rev-late", settlement_id=settled.settlement_id), timeout=T
    )
    assert pending.settlement.state == pb.SETTLEMENT_STATE_REVERSAL_PENDING
    sandbox.faults.update({"clear": True})
    await eventually(lambda: _in_state(federation, settled.settlement_id, pb.SETTLEMENT_STATE_REVERSED))

    assert money(sandbox, person, VisitType.INPATIENT) == before  # reversed exactly once at the region
    booked = ledger_rows(
        federation.hub.config.ledger_path,
        "SELECT kind, fund_pay_fen FROM bookings WHERE settlement_id = ? ORDER BY kind",
        settled.settlement_id,
    )
    assert booked == [("REVERSE", -settled.split.fund_pay_fen), ("SETTLE", settled.split.fund_pay_fen)]


async def _in_state(federation: Federation, settlement_id: str, state: int) -> bool:
    return await state_of(federation.settlement, settlement_id) == state


@pytest.mark.parametrize("region", ["yangtze-delta"])
async def test_an_unbalanced_split_is_refused_corrected_and_never_booked(federation: Federation, region: str) -> None:
    fast_hub(federation)
    sandbox = federation.sandboxes[region]
    person = insured(federation, region, kind=InsuranceType.EMPLOYEE, skip=5)
    before = money(sandbox, person, VisitType.INPATIENT)
    sandbox.faults.update({"unbalanced_splits": True})
    request = settle_request(person, "330100")

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.settlement.Settle(request, timeout=T)

    assert (refused.value.code(), error_reason(refused.value)) == (grpc.StatusCode.UNAVAILABLE, "REGION_SPLIT_INVALID")
    [(settlement_id,)] = ledger_rows(federation.hub.config.ledger_path, "SELECT settlement_id FROM settlements")
    await eventually(lambda: _corrected(federation, settlement_id))
    assert money(sandbox, person, VisitType.INPATIENT) == before
    assert ledger_rows(federation.hub.config.ledger_path, "SELECT COUNT(*) FROM bookings") == [(0,)]
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await federation.settlement.Settle(request, timeout=T)
    assert (again.value.code(), error_reason(again.value)) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SETTLEMENT_CORRECTED",
    )


# --- a hub killed with corrections pending ----------------------------------------------------------------


async def start_hub(data_dir: Path, endpoints: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """``yikatong serve`` as its own process on free ports; returns it and its gRPC address."""
    args = ["serve", "--data-dir", str(data_dir), "--port", "0", "--admin-port", "0", "--insecure", "--dev"]
    for region, address in endpoints.items():
        args += ["--endpoint", f"{region}={address}"]
    process = await asyncio.create_subprocess_exec(YIKATONG, *args, stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
    assert line.startswith("hub gRPC "), line
    return process, line.split()[2]


@pytest.mark.slow
async def test_after_a_kill_the_restarted_hub_corrects_what_is_owed_and_books_what_the_region_settled(
    start_region: StartSandbox, tmp_path: Path
) -> None:
    sandbox = await start_region("sichuan-chongqing")
    config = sandbox.config
    people = [p for p in generate(config.region_id, config.provinces) if p.insurance and p.status is CardStatus.NORMAL]
    people = people[:2]
    before = [money(sandbox, p, VisitType.INPATIENT) for p in people]
    endpoints = {"sichuan-chongqing": sandbox.address}
    # Settlement calls answered later than the hub's 3 s cap: nothing is confirmed.
    sandbox.faults.update({"answer_delay_ms": 4000, "answer_delay_scope": "settlement"})

    hub, address = await start_hub(tmp_path, endpoints)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await stub.Settle(settle_request(people[0], "310104", request_id="before-kill"), timeout=10)
            assert error_reason(unknown.value) == "SETTLEMENT_OUTCOME_UNKNOWN"
            in_flight = asyncio.ensure_future(
                stub.Settle(settle_request(people[1], "310104", request_id="in-flight"), timeout=10)
            )
            await eventually(lambda: _seen(sandbox, "in-flight"))
            hub.send_signal(signal.SIGKILL)
            await hub.wait()
            with pytest.raises(grpc.aio.AioRpcError):
                await in_flight
    finally:
        if hub.returncode is None:
            hub.kill()
            await hub.wait()
    rows = ledger_rows(tmp_path / "ledger.sqlite3", "SELECT request_id, state FROM settlements ORDER BY request_id")
    assert rows == [("before-kill", "CORRECTION_PENDING"), ("in-flight", "PENDING")]
    # The in-flight bill was applied at the region and never answered; nothing has voided it yet.
    assert money(sandbox, people[1], VisitType.INPATIENT) != before[1]

    sandbox.faults.update({"clear": True})
    hub, address = await start_hub(tmp_path, endpoints)
    try:
        await eventually(lambda: _resolved(tmp_path), seconds=15)
    finally:
        hub.send_signal(signal.SIGTERM)
        assert await hub.wait() == 0
    # The correction owed before the kill is delivered; the bill the region settled while the hub died is booked
    # as the region has it (the sweeper asked), so hub and region agree on both.
    assert money(sandbox, people[0], VisitType.INPATIENT) == before[0]
    assert sandbox.medical.outcome("before-kill").state is OutcomeState.CORRECTED
    assert sandbox.medical.outcome("in-flight").state is OutcomeState.SETTLED
    [(split,)] = ledger_rows(tmp_path / "ledger.sqlite3", "SELECT split FROM settlements WHERE state = 'SETTLED'")
    assert money(sandbox, people[1], VisitType.INPATIENT) == after(before[1], pb.Split(**json.loads(split)))


async def _seen(sandbox: RunningSandbox, request_id: str) -> bool:
    return sandbox.medical.outcome(request_id).state is OutcomeState.SETTLED


async def _resolved(data_dir: Path) -> bool:
    rows = ledger_rows(data_dir / "ledger.sqlite3", "SELECT request_id, state FROM settlements ORDER BY request_id")
    return rows == [("before-kill", "CORRECTED"), ("in-flight", "SETTLED")]
