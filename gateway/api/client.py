"""The hub's API as the command line uses it: a channel to a running hub and what it prints of the answers."""

from __future__ import annotations

import sys

import grpc

from gateway.api.selfcheck import yuan
from yikatong.v1 import clearing_pb2, clearing_pb2_grpc, federation_pb2, federation_pb2_grpc


async def list_regions(hub_address: str) -> int:
    async with grpc.aio.insecure_channel(hub_address) as channel:
        stub = federation_pb2_grpc.FederationServiceStub(channel)
        answer = await stub.ListRegions(federation_pb2.ListRegionsRequest(), timeout=5)
    for r in answer.regions:
        state = "healthy" if r.healthy else "unhealthy"
        print(f"{r.id:<26} {','.join(r.provinces):<12} {r.adapter:<26} {state}  {r.name}")
    return 0


async def clearing_report(hub_address: str, period: str) -> int:
    """The period's pair matrix and net positions, as tables."""
    async with grpc.aio.insecure_channel(hub_address) as channel:
        stub = clearing_pb2_grpc.ClearingServiceStub(channel)
        try:
            answer = await stub.GetClearingReport(clearing_pb2.GetClearingReportRequest(period=period), timeout=5)
        except grpc.aio.AioRpcError as exc:
            print(f"clearing report refused: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
    print(format_report(answer.report))
    return 0


def format_report(report: clearing_pb2.ClearingReport) -> str:
    state = clearing_pb2.PeriodState.Name(report.state).removeprefix("PERIOD_STATE_")
    closed = f", closed {report.closed_at}" if report.closed_at else ""
    lines = [f"clearing period {report.period} ({state}{closed})", "", "insured → treatment   count      fund (yuan)"]
    lines += [
        f"{p.insured_province:>7} → {p.treatment_province:<9} {p.count:>7} {yuan(p.fund_pay_fen):>16}"
        for p in report.pairs
    ]
    lines += [f"{'total':<19} {report.count:>7} {yuan(report.fund_pay_fen):>16}", "", "province        net (yuan)"]
    lines += [f"{p.province:<8} {yuan(p.net_fen):>17}" for p in report.provinces]
    lines += ["", "region                      net (yuan)"]
    lines += [f"{r.region:<26} {yuan(r.net_fen):>13}" for r in report.regions]
    return "\n".join(lines)
