"""Evidence (DESIGN §11), through a hub in its own process: after a workload over every RPC the audit chain
verifies, an edited, deleted or truncated record is named by `yikatong audit verify`, and no personal number
used is found in the ledger file, its WAL or the hub's log output."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from adapters.domain import CardStatus
from regions.ecard import credential_of, issue_token
from regions.seed import SeededPerson, generate
from tests.bills import settle_request
from tests.conftest import REGION_IDS, YIKATONG, StartSandbox, credential
from yikatong.v1 import (
    card_affairs_pb2,
    card_affairs_pb2_grpc,
    card_pb2,
    card_pb2_grpc,
    clearing_pb2,
    clearing_pb2_grpc,
    common_pb2,
    federation_pb2,
    federation_pb2_grpc,
    resident_pb2,
    resident_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

T = 5


@dataclass
class Worked:
    data_dir: Path
    log: str
    people: list[SeededPerson]


def people_of(region: str, provinces: tuple[str, ...]) -> list[SeededPerson]:
    return [p for p in generate(region, provinces) if p.status is CardStatus.NORMAL and p.insurance]


async def workload(channel: grpc.aio.Channel, people: list[SeededPerson]) -> None:
    """Every RPC of the API once or more, as the dev participant."""
    patient, other, lost = people[0], people[1], people[2]
    cards = card_pb2_grpc.CardServiceStub(channel)
    venue = common_pb2.Venue(area_code="310104")
    await cards.VerifyCard(card_pb2.VerifyCardRequest(card=credential(patient), venue=venue), timeout=T)
    await cards.GetCardStatus(card_pb2.GetCardStatusRequest(card=credential(patient)), timeout=T)
    token = common_pb2.CardCredential(ecard_token=issue_token(credential_of(other)))
    await cards.VerifyCard(card_pb2.VerifyCardRequest(card=token, venue=venue), timeout=T)
    affairs = card_affairs_pb2_grpc.CardAffairsServiceStub(channel)
    ssn, name = lost.social_security_number, lost.name
    await affairs.ReportLoss(card_affairs_pb2.ReportLossRequest(request_id=uid(), card=credential(lost)), timeout=T)
    await affairs.CancelLossReport(
        card_affairs_pb2.CancelLossReportRequest(request_id=uid(), card=credential(lost)), timeout=T
    )
    await affairs.ReplaceCard(
        card_affairs_pb2.ReplaceCardRequest(
            request_id=uid(), card=credential(lost), reason=card_affairs_pb2.REPLACE_REASON_DAMAGED
        ),
        timeout=T,
    )
    await affairs.GetApplicationProgress(
        card_affairs_pb2.GetApplicationProgressRequest(social_security_number=ssn, holder_name=name), timeout=T
    )
    with pytest.raises(grpc.aio.AioRpcError):  # a refusal is kept too (the person holds a card)
        await affairs.ApplyCard(
            card_affairs_pb2.ApplyCardRequest(
                request_id=uid(), social_security_number=patient.social_security_number, holder_name=patient.name,
                insured_area=patient.issuing_area,
            ),
            timeout=T,
        )  # fmt: skip
    with pytest.raises(grpc.aio.AioRpcError):
        await affairs.EnableSocialSecurity(
            card_affairs_pb2.EnableSocialSecurityRequest(request_id=uid(), card=credential(patient)), timeout=T
        )
    settle = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
    await settle.FileRemoteCare(
        settlement_pb2.FileRemoteCareRequest(
            request_id=uid(), card=credential(patient), treatment_area="310000",
            filing_type=settlement_pb2.FILING_TYPE_REFERRAL, valid_from="2026-01-01", valid_until="2026-12-31",
        ),
        timeout=T,
    )  # fmt: skip
    bill = settle_request(patient, "310104")
    fields = {f.name: getattr(bill, f.name) for f in settlement_pb2.PreSettleRequest.DESCRIPTOR.fields}
    await settle.PreSettle(settlement_pb2.PreSettleRequest(**fields), timeout=T)
    settled = (await settle.Settle(bill, timeout=T)).settlement
    await settle.Settle(settle_request(other, "310104"), timeout=T)
    await settle.GetSettlement(settlement_pb2.GetSettlementRequest(settlement_id=settled.settlement_id), timeout=T)
    await settle.ReverseSettlement(
        settlement_pb2.ReverseSettlementRequest(request_id=uid(), settlement_id=settled.settlement_id), timeout=T
    )
    clearing = clearing_pb2_grpc.ClearingServiceStub(channel)
    await clearing.GetClearingReport(clearing_pb2.GetClearingReportRequest(period=settled.period), timeout=T)
    await clearing.CloseClearingPeriod(
        clearing_pb2.CloseClearingPeriodRequest(request_id=uid(), period="2026-01"), timeout=T
    )
    await clearing.Reconcile(
        clearing_pb2.ReconcileRequest(treatment_area="310104", date=settled.settled_at[:10], count=1), timeout=T
    )
    resident = resident_pb2_grpc.ResidentServiceStub(channel)
    await resident.AuthorizeService(
        resident_pb2.AuthorizeServiceRequest(
            card=credential(patient), service_kind=resident_pb2.SERVICE_KIND_PARK,
            venue=common_pb2.Venue(area_code="500103"),
        ),
        timeout=T,
    )  # fmt: skip
    await federation_pb2_grpc.FederationServiceStub(channel).ListRegions(federation_pb2.ListRegionsRequest(), timeout=T)


def uid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def worked(start_region: StartSandbox, tmp_path: Path) -> AsyncIterator[Worked]:
    """A hub process served the workload (its card events included) and stopped; its data dir and log."""
    sandboxes = {r: await start_region(r) for r in REGION_IDS}
    endpoints = [arg for r, s in sandboxes.items() for arg in ("--endpoint", f"{r}={s.address}")]
    log_path = tmp_path / "hub.log"
    with open(log_path, "w") as log:  # noqa: ASYNC230 - the hub process writes to it, not this loop
        hub = await asyncio.create_subprocess_exec(
            YIKATONG, "serve", "--insecure", "--dev", "--data-dir", str(tmp_path), "--port", "0", "--admin-port", "0",
            *endpoints, stdout=asyncio.subprocess.PIPE, stderr=log,
        )  # fmt: skip
        assert hub.stdout is not None
        address = (await asyncio.wait_for(hub.stdout.readline(), 20)).decode().split()[2]
        for sandbox in sandboxes.values():
            sandbox.events.point_at(address)  # the region back-ends publish card events (PublishCardEvent)
        people = people_of("sichuan-chongqing", ("50", "51"))[:3]
        async with grpc.aio.insecure_channel(address) as channel:
            await workload(channel, people)
            await asyncio.sleep(0.5)  # the card events of the loss report reach the hub
        hub.send_signal(signal.SIGTERM)
        assert await hub.wait() == 0
    yield Worked(tmp_path, log_path.read_text(), people)


def verify(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [YIKATONG, "audit", "verify", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60
    )


def tampered(worked: Worked, tmp_path: Path, name: str, sql: str) -> Path:
    """A copy of the data dir whose ledger had ``sql`` run on it, as an intruder with sqlite3 would."""
    copy = tmp_path / name
    shutil.copytree(worked.data_dir, copy, ignore=shutil.ignore_patterns("copy-*"))
    with sqlite3.connect(copy / "ledger.sqlite3") as db:
        db.execute(sql)
    return copy


async def test_the_audit_chain_of_a_workload_verifies_and_names_what_was_tampered(
    worked: Worked, tmp_path: Path
) -> None:
    holds = verify(worked.data_dir)
    assert holds.returncode == 0, holds.stdout + holds.stderr
    count = int(holds.stdout.split("holds: ")[1].split(" records")[0])
    with sqlite3.connect(worked.data_dir / "ledger.sqlite3") as db:
        reasons = {row[0] for row in db.execute("SELECT reason FROM audit")}
        booked = db.execute("SELECT seq FROM audit WHERE reason = 'SETTLED' ORDER BY seq").fetchone()[0]
        last = db.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    assert {"SETTLED", "REVERSAL_REQUESTED", "REVERSED", "CLOSED", "DONE", "CARD_TEMPORARILY_LOST"} <= reasons
    assert count == last >= 10

    edited = tampered(worked, tmp_path, "copy-edited", f"UPDATE audit SET amounts = "
                      f"'{{\"fund_pay_fen\": 1}}' WHERE seq = {booked}")  # fmt: skip
    deleted = tampered(worked, tmp_path, "copy-deleted", "DELETE FROM audit WHERE seq = 3")
    truncated = tampered(worked, tmp_path, "copy-truncated", f"DELETE FROM audit WHERE seq > {last - 2}")

    for copy, seq in ((edited, booked), (deleted, 3), (truncated, last)):
        broken = verify(copy)
        assert broken.returncode == 1, broken.stdout
        assert f"broken at record {seq}:" in broken.stdout, broken.stdout


async def test_no_personal_number_used_is_in_the_ledger_its_wal_or_the_log(worked: Worked) -> None:
    numbers = [
        value for p in worked.people for value in (p.social_security_number, p.card_number, p.card_identification_code)
    ]
    files = [f for f in worked.data_dir.iterdir() if f.name.startswith("ledger.sqlite3")]
    assert {f.name for f in files} >= {"ledger.sqlite3"}
    haystacks = {f.name: f.read_bytes() for f in files} | {"hub log": worked.log.encode()}
    assert '"method": "/yikatong.v1.MedicalSettlementService/Settle"' in worked.log  # the log did see the workload
    for where, content in haystacks.items():
        for number in numbers:
            assert number.encode() not in content, f"{number[:4]}… in {where}"
    for p in worked.people:
        assert p.name.encode() not in haystacks["hub log"]
