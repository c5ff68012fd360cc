"""The hub's API as its own clients use it (the command line, the self-check): channels to a running hub as one
of its participants, and what the command line prints of the answers.

``endpoints.json`` (written by ``yikatong up``) names the hub and, when it serves mutual TLS, a ``"tls"`` object:
the CA and, per participant, its certificate, key, roles, areas and institutions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from yikatong.v1 import clearing_pb2, clearing_pb2_grpc, federation_pb2, federation_pb2_grpc


class EndpointsError(Exception):
    """endpoints.json is missing, or names no participant for what is asked."""


@dataclass(frozen=True)
class HubEndpoint:
    """Where a hub listens, and the certificates of its participants when it serves mutual TLS."""

    address: str
    tls: Mapping[str, Any] | None = None
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, data_dir: Path, address: str | None = None) -> HubEndpoint:
        """The hub of ``<data_dir>/endpoints.json`` (``address`` overrides its address)."""
        path = data_dir / "endpoints.json"
        try:
            found: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            raise EndpointsError(f"{path} not found: is `yikatong up --data-dir {data_dir}` running?") from None
        return cls(address or found["hub"], found.get("tls"))

    def participant_with(self, role: str) -> str:
        """The first participant holding ``role`` ("" on a plaintext hub, where every caller is dev)."""
        if self.tls is None:
            return ""
        for participant_id, entry in self.tls["participants"].items():
            if role in entry["roles"]:
                return str(participant_id)
        raise EndpointsError(f"endpoints.json names no participant with the role {role}")

    def channel(self, participant: str = "") -> grpc.aio.Channel:
        """A channel to the hub as ``participant`` (one per participant, kept open until :meth:`close`)."""
        if participant not in self._channels:
            self._channels[participant] = self._open(participant)
        return self._channels[participant]

    def _open(self, participant: str) -> grpc.aio.Channel:
        if self.tls is None:
            return grpc.aio.insecure_channel(self.address)
        entry = self.tls["participants"].get(participant)
        if entry is None:
            raise EndpointsError(f"endpoints.json has no certificate of participant {participant!r}")
        credentials = grpc.ssl_channel_credentials(
            Path(self.tls["ca"]).read_bytes(), Path(entry["key"]).read_bytes(), Path(entry["cert"]).read_bytes()
        )
        return grpc.aio.secure_channel(self.address, credentials)

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close(None)
        self._channels.clear()


async def list_regions(hub: HubEndpoint, participant: str | None = None) -> int:
    """The federated regions as the hub reports them (as an operator by default)."""
    channel = hub.channel(participant if participant is not None else hub.participant_with("operator"))
    try:
        stub = federation_pb2_grpc.FederationServiceStub(channel)
        answer = await stub.ListRegions(federation_pb2.ListRegionsRequest(), timeout=5)
    except grpc.aio.AioRpcError as exc:
        print(f"regions refused: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    finally:
        await hub.close()
    for r in answer.regions:
        state = "healthy" if r.healthy else "unhealthy"
        print(f"{r.id:<26} {','.join(r.provinces):<12} {r.adapter:<26} {state}  {r.name}")
    return 0


async def clearing_report(hub: HubEndpoint, period: str, participant: str | None = None) -> int:
    """The period's pair matrix and net positions, as tables (as the clearing centre by default)."""
    stub = clearing_pb2_grpc.ClearingServiceStub(
        hub.channel(participant if participant is not None else hub.participant_with("clearing"))
    )
    try:
        answer = await stub.GetClearingReport(clearing_pb2.GetClearingReportRequest(period=period), timeout=5)
    except grpc.aio.AioRpcError as exc:
        print(f"clearing report refused: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    finally:
        await hub.close()
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


def yuan(fen: int) -> str:
    """Fen as yuan with two decimals and thousands separators, e.g. ``-1,234.05``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"
