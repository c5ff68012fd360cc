"""Several hub replicas on one PostgreSQL ledger (DESIGN §8): one settlement per request whichever replica is
asked, a token used once across them all, a card change heard by every replica, and a replica killed under load
leaving nothing the others do not finish."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import psycopg
import pytest

from adapters.domain import CardStatus
from gateway.api.status import error_reason
from gateway.config import DEFAULT_FILE, load_hub_config, with_ledger
from gateway.hub import Hub
from gateway.ledger.schema import MIGRATIONS
from gateway.participants import PARTICIPANTS_FILE
from gateway.periods import period_end
from regions.agreements import AGREEMENTS_FILE
from regions.ecard import credential_of, issue_token
from regions.sandbox import RunningSandbox
from regions.seed import SeededPerson, generate
from tests import postgres
from tests.bills import VENUES, settle_request
from tests.conftest import REGION_IDS, YIKATONG, StartSandbox, credential
from yikatong.v1 import (
    card_affairs_pb2,
    card_affairs_pb2_grpc,
    card_pb2,
    card_pb2_grpc,
    clearing_pb2,
    clearing_pb2_grpc,
    common_pb2,
    resident_pb2,
    resident_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

SHANGHAI = VENUES["31"]


@dataclass
class Replicas:
    """Three hubs in this process on their own ports, sharing one PostgreSQL schema and one data folder."""

    hubs: list[Hub]
    sandboxes: dict[str, RunningSandbox]
    url: str
    channels: list[grpc.aio.Channel]

    def people(self, region_id: str) -> list[SeededPerson]:
        config = self.sandboxes[region_id].config
        return [p for p in generate(config.region_id, config.provinces) if p.status is CardStatus.NORMAL]

    def settlement(self, n: int) -> settlement_pb2_grpc.MedicalSettlementServiceStub:
        return settlement_pb2_grpc.MedicalSettlementServiceStub(self.channels[n % len(self.channels)])

    def cards(self, n: int) -> card_pb2_grpc.CardServiceStub:
        return card_pb2_grpc.CardServiceStub(self.channels[n])

    def resident(self, n: int) -> resident_pb2_grpc.ResidentServiceStub:
        return resident_pb2_grpc.ResidentServiceStub(self.channels[n])

    def affairs(self, n: int) -> card_affairs_pb2_grpc.CardAffairsServiceStub:
        return card_affairs_pb2_grpc.CardAffairsServiceStub(self.channels[n])

    def ledger(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, parameters).fetchall()


@pytest.fixture
async def replicas(start_region: StartSandbox, data_dir: Path) -> AsyncIterator[Replicas]:
    with postgres.fresh_schema() as url:
        sandboxes = {r: await start_region(r) for r in REGION_IDS}
        config = load_hub_config(data_dir=data_dir)
        endpoints = {r: s.address for r, s in sandboxes.items()}
        agreements = data_dir / "agreements.toml"
        agreements.write_text(AGREEMENTS_FILE.read_text())
        config = replace(
            config.with_endpoints(endpoints),
            port=0, admin_port=0, probe_interval_seconds=3600, insecure=True, dev=True, agreements_file=agreements,
        )  # fmt: skip
        hubs = [Hub(with_ledger(config, url)) for _ in range(3)]
        for hub in hubs:
            await hub.start()
        for sandbox in sandboxes.values():
            sandbox.events.point_at(hubs[0].address)
        channels = [grpc.aio.insecure_channel(hub.address) for hub in hubs]
        yield Replicas(hubs, sandboxes, url, channels)
        for channel in channels:
            await channel.close()
        for hub in hubs:
            await hub.stop(grace=1, drain=0)


async def region_settlements(sandbox_admin: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(f"{sandbox_admin}/admin/settlements") as reply:
        assert reply.status == 200
        return [json.loads(line) for line in (await reply.text()).splitlines() if line]


async def test_fifty_concurrent_settles_of_one_bill_through_three_replicas_settle_it_once(replicas: Replicas) -> None:
    person = next(p for p in replicas.people("sichuan-chongqing") if p.insurance is not None)
    request = settle_request(person, SHANGHAI, request_id="bill-concurrent-1")

    answers = await asyncio.gather(
        *(replicas.settlement(n).Settle(request, timeout=10) for n in range(50)), return_exceptions=True
    )

    settled = [a for a in answers if isinstance(a, settlement_pb2.SettleResponse)]
    refused = [a for a in answers if not isinstance(a, settlement_pb2.SettleResponse)]
    assert settled, refused[:1]
    assert {a.settlement.settlement_id for a in settled} == {settled[0].settlement.settlement_id}
    assert all(isinstance(e, grpc.aio.AioRpcError) and error_reason(e) == "REQUEST_IN_PROGRESS" for e in refused)
    for n in range(3):  # asked again, every replica answers the one settlement
        again = await replicas.settlement(n).Settle(request, timeout=10)
        assert again.settlement == settled[0].settlement
    rows = replicas.ledger("SELECT settlement_id, state FROM settlements")
    assert rows == [(settled[0].settlement.settlement_id, "SETTLED")]
    at_region = await region_settlements(replicas.sandboxes["sichuan-chongqing"].admin_url)
    assert [(r["state"], r["fund_pay_fen"]) for r in at_region] == [
        ("SETTLED", settled[0].settlement.split.fund_pay_fen)
    ]


async def test_an_ecard_token_is_accepted_once_across_the_replicas(replicas: Replicas) -> None:
    person = replicas.people("yangtze-delta")[3]
    token = issue_token(credential_of(person))
    request = card_pb2.VerifyCardRequest(
        card=common_pb2.CardCredential(ecard_token=token), venue=common_pb2.Venue(area_code=SHANGHAI)
    )

    answers = await asyncio.gather(
        *(replicas.cards(n % 3).VerifyCard(request, timeout=5) for n in range(9)), return_exceptions=True
    )

    accepted = [a for a in answers if isinstance(a, card_pb2.VerifyCardResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert [a.card.card_number for a in accepted] == [person.card_number]
    assert [error_reason(e) for e in refused] == ["ECARD_TOKEN_USED"] * 8


async def test_a_loss_reported_through_one_replica_is_refused_by_the_others_within_a_second(
    replicas: Replicas,
) -> None:
    person = replicas.people("yangtze-delta")[5]
    use = resident_pb2.AuthorizeServiceRequest(
        card=credential(person, with_name=False),
        service_kind=resident_pb2.SERVICE_KIND_LIBRARY,
        venue=common_pb2.Venue(area_code=SHANGHAI),
    )
    for n in (1, 2):  # the card's NORMAL status is now cached by replicas B and C
        assert (await replicas.resident(n).AuthorizeService(use, timeout=5)).authorized

    report = card_affairs_pb2.ReportLossRequest(request_id="loss-through-a", card=credential(person))
    reported = await replicas.affairs(0).ReportLoss(report, timeout=5)
    assert reported.card.status == common_pb2.CARD_STATUS_TEMPORARILY_LOST

    started = time.monotonic()
    for n in (1, 2):
        while (answer := await replicas.resident(n).AuthorizeService(use, timeout=5)).authorized:
            assert time.monotonic() - started < 1.0, f"replica {n} still answers from its cache after 1 s"
            await asyncio.sleep(0.02)
        assert answer.reason == "CARD_TEMPORARILY_LOST"


async def test_a_person_learnt_by_one_replica_is_known_to_the_others(replicas: Replicas) -> None:
    person = replicas.people("beijing-tianjin-hebei")[2]
    progress = card_affairs_pb2.GetApplicationProgressRequest(
        social_security_number=person.social_security_number, holder_name=person.name
    )
    with contextlib.suppress(grpc.aio.AioRpcError):  # whatever the answer, replica A asked around for the person
        await replicas.affairs(0).GetApplicationProgress(progress, timeout=5)
    assert replicas.hubs[0].services.directory.cached(person.social_security_number) == "beijing-tianjin-hebei"

    for hub in replicas.hubs[1:]:
        deadline = time.monotonic() + 1.0
        while hub.services.directory.cached(person.social_security_number) != "beijing-tianjin-hebei":
            assert time.monotonic() < deadline, "the person's region did not reach the other replica"
            await asyncio.sleep(0.02)


async def test_every_replica_picks_up_a_changed_agreements_file_without_a_signal(replicas: Replicas) -> None:
    shanghai = next(p for p in replicas.people("yangtze-delta") if p.issuing_area.startswith("31"))
    use = resident_pb2.AuthorizeServiceRequest(
        card=credential(shanghai, with_name=False),
        service_kind=resident_pb2.SERVICE_KIND_MUSEUM,
        venue=common_pb2.Venue(area_code=VENUES["51"]),
    )
    assert [(await replicas.resident(n).AuthorizeService(use, timeout=5)).reason for n in range(3)] == [
        "SERVICE_NOT_AGREED"
    ] * 3

    agreements = replicas.hubs[0].agreements_file
    agreements.write_text(agreements.read_text() + '\n[[cross]]\ncards = ["31"]\nvenues = ["51"]\nkinds = ["MUSEUM"]\n')

    deadline = time.monotonic() + 6  # each replica looks every 2 s
    for n in range(3):
        while not (await replicas.resident(n).AuthorizeService(use, timeout=5)).authorized:
            assert time.monotonic() < deadline, f"replica {n} did not pick the agreement up"
            await asyncio.sleep(0.1)


def replica_hub_file(tmp_path: Path) -> Path:
    """The shipped hub file with short leases, so that the survivors finish a dead replica's work in seconds."""
    text = (
        DEFAULT_FILE.read_text()
        .replace('agreements_file = "../regions/agreements.toml"', f'agreements_file = "{AGREEMENTS_FILE}"')
        .replace('file = "participants.toml"', f'file = "{PARTICIPANTS_FILE}"')
        .replace("idempotency_lease_seconds = 60", "idempotency_lease_seconds = 3")
        .replace("sweep_lease_seconds = 60", "sweep_lease_seconds = 2")
        .replace("sweep_seconds = 5", "sweep_seconds = 0.5")
    )
    assert "sweep_lease_seconds = 2" in text and "idempotency_lease_seconds = 3" in text
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


async def metric(session: aiohttp.ClientSession, admin: str, sample: str) -> float:
    async with session.get(f"{admin}/metrics") as reply:
        for line in (await reply.text()).splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[1])
    return 0.0


async def settle_until_answered(address: str, request: settlement_pb2.SettleRequest) -> settlement_pb2.Settlement:
    """Call again with the same request id, as a hospital does, until a replica answers."""
    deadline = time.monotonic() + 30
    while True:
        async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            try:
                stub = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
                return (await stub.Settle(request, timeout=10)).settlement
            except grpc.aio.AioRpcError as exc:
                assert exc.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE), exc
                assert time.monotonic() < deadline, f"{request.request_id} still unanswered: {exc.details()}"
        await asyncio.sleep(0.3)


async def test_a_replica_killed_under_load_leaves_nothing_unfinished(tmp_path: Path) -> None:
    with postgres.fresh_schema() as url:
        process = await asyncio.create_subprocess_exec(
            YIKATONG, "up", "--replicas", "3", "--ledger", url, "--config", str(replica_hub_file(tmp_path)),
            "--data-dir", str(tmp_path), "--hub-port", "0", "--admin-port", "0", "--insecure", "--no-self-check",
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert process.stdout is not None
            async with asyncio.timeout(60):
                while b"serving;" not in await process.stdout.readline():
                    assert process.returncode is None
            asyncio.create_task(process.stdout.read())  # keep the pipe flowing  # noqa: RUF006
            await _kill_one_under_load(tmp_path, url)
        finally:
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0


async def _kill_one_under_load(data_dir: Path, url: str) -> None:
    endpoints = json.loads((data_dir / "endpoints.json").read_text())
    hub, region_admin = endpoints["hub"], endpoints["regions"]["sichuan-chongqing"]["admin"]
    replicas = {r["pid"]: r["admin"] for r in endpoints["replicas"]}
    assert len(replicas) == 3
    config = load_hub_config(data_dir=data_dir)
    people = [p for p in generate("sichuan-chongqing", ("50", "51")) if p.status is CardStatus.NORMAL and p.insurance][
        :30
    ]
    requests = [settle_request(p, SHANGHAI, request_id=f"bill-{n}") for n, p in enumerate(people)]
    async with aiohttp.ClientSession() as session:
        # The region acts on each settlement at once but answers only after 1.5 s: calls are in flight.
        delay = {"answer_delay_ms": 1500, "answer_delay_scope": "settlement"}
        async with session.post(f"{region_admin}/admin/faults", json=delay) as reply:
            assert reply.status == 200
        channels = [
            grpc.aio.insecure_channel(hub, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(12)
        ]  # one connection each, which the kernel spreads over the replicas
        calls = [
            asyncio.ensure_future(
                settlement_pb2_grpc.MedicalSettlementServiceStub(channels[n % 12]).Settle(r, timeout=10)
            )
            for n, r in enumerate(requests)
        ]
        await asyncio.sleep(0.8)
        in_flight = 'yikatong_region_in_flight{region="sichuan-chongqing"}'
        busy = [pid for pid, admin in replicas.items() if await metric(session, admin, in_flight) > 0]
        assert busy, "no replica had a settlement in flight"
        victim = busy[0]
        os.kill(victim, signal.SIGKILL)
        answers = await asyncio.gather(*calls, return_exceptions=True)
        for channel in channels:
            await channel.close()
        cut = [r for r, a in zip(requests, answers, strict=True) if isinstance(a, Exception)]
        assert cut, "the killed replica had no call of the load"
        async with session.post(f"{region_admin}/admin/faults", json={"answer_delay_ms": 0}) as reply:
            assert reply.status == 200

        finished = {
            r.request_id: a.settlement for r, a in zip(requests, answers, strict=True) if not isinstance(a, Exception)
        }
        for request in cut:  # each hospital asks again; a surviving replica answers
            finished[request.request_id] = await settle_until_answered(hub, request)

        deadline = time.monotonic() + 20
        while unfinished := postgres_rows(url, "SELECT settlement_id FROM settlements WHERE state <> 'SETTLED'"):
            assert time.monotonic() < deadline, f"left unfinished: {unfinished}"
            await asyncio.sleep(0.3)
        at_region = await region_settlements(region_admin)

    ledger = postgres_rows(url, "SELECT request_id, settlement_id, region_request_id, fund_pay_fen FROM settlements")
    assert sorted((r, s) for r, s, _, _ in ledger) == sorted((r, s.settlement_id) for r, s in finished.items())
    assert sorted((m, f) for _, _, m, f in ledger) == sorted(
        (r["request_id"], r["fund_pay_fen"]) for r in at_region if r["state"] == "SETTLED"
    )
    verify = await asyncio.create_subprocess_exec(
        YIKATONG, "audit", "verify", "--ledger", url, "--data-dir", str(data_dir), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await verify.communicate()
    assert verify.returncode == 0 and out.startswith(b"audit chain holds"), out
    assert config.ledger_url == ""  # the data folder's own file is untouched: every replica used PostgreSQL
    assert not config.ledger_path.exists()


def postgres_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


async def test_up_refuses_replicas_without_a_shared_ledger(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        YIKATONG, "up", "--replicas", "2", "--data-dir", str(tmp_path),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"--replicas needs --ledger postgresql://" in err


async def test_a_hub_on_its_own_ledger_does_not_share_its_port(data_dir: Path) -> None:
    config = replace(load_hub_config(data_dir=data_dir), port=0, admin_port=0, insecure=True, dev=True)
    first = Hub(config)
    await first.start()
    try:
        second = Hub(replace(config, ledger_path=data_dir / "second.sqlite3", port=first.port))
        with pytest.raises(OSError, match="could not bind"):
            await second.start()
        await second.stop(grace=0, drain=0)
    finally:
        await first.stop(grace=0, drain=0)


async def test_ledger_copy_moves_an_embedded_ledger_whole(start_region: StartSandbox, data_dir: Path) -> None:
    sandboxes = {r: await start_region(r) for r in REGION_IDS}
    config = replace(
        load_hub_config(data_dir=data_dir).with_endpoints({r: s.address for r, s in sandboxes.items()}),
        port=0, admin_port=0, probe_interval_seconds=3600, insecure=True, dev=True,
    )  # fmt: skip

    async def report_of(hub: Hub, period: str) -> clearing_pb2.ClearingReport:
        async with grpc.aio.insecure_channel(hub.address) as channel:
            stub = clearing_pb2_grpc.ClearingServiceStub(channel)
            return (
                await stub.GetClearingReport(clearing_pb2.GetClearingReportRequest(period=period), timeout=5)
            ).report

    embedded = Hub(config)
    await embedded.start()
    try:
        async with grpc.aio.insecure_channel(embedded.address) as channel:
            stub = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
            settled = []
            for n, region in enumerate(REGION_IDS):
                people = generate(region, sandboxes[region].config.provinces)
                person = [p for p in people if p.insurance and p.status is CardStatus.NORMAL][n]
                settled.append((await stub.Settle(settle_request(person, SHANGHAI), timeout=5)).settlement)
            reverse = settlement_pb2.ReverseSettlementRequest(request_id="undo", settlement_id=settled[0].settlement_id)
            await stub.ReverseSettlement(reverse, timeout=5)
            period = settled[0].period
            embedded.clock.advance(period_end(period) - embedded.clock.now() + 3600)  # into the next month
            close = clearing_pb2.CloseClearingPeriodRequest(request_id="close", period=period)
            closed = await clearing_pb2_grpc.ClearingServiceStub(channel).CloseClearingPeriod(close, timeout=5)
        before = await report_of(embedded, period)
        assert before == closed.report and before.state == clearing_pb2.PERIOD_STATE_CLOSED
    finally:
        await embedded.stop(grace=1, drain=0)

    with postgres.fresh_schema() as url:
        copy = await asyncio.create_subprocess_exec(
            YIKATONG, "ledger", "copy", "--from", f"sqlite:///{config.ledger_path}", "--to", url,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await copy.communicate()
        assert copy.returncode == 0 and b"copied and verified: " in out and b"settlements 3" in out, out
        again = await asyncio.create_subprocess_exec(
            YIKATONG, "ledger", "copy", "--from", f"sqlite:///{config.ledger_path}", "--to", url,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await again.communicate()
        assert again.returncode == 1 and b"not empty" in err

        moved = Hub(with_ledger(config, url))
        await moved.start()
        try:
            assert await report_of(moved, period) == before
        finally:
            await moved.stop(grace=1, drain=0)
        verify = await asyncio.create_subprocess_exec(
            YIKATONG, "audit", "verify", "--ledger", url, "--data-dir", str(data_dir), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await verify.communicate()
        assert verify.returncode == 0 and out.startswith(b"audit chain holds"), out


async def test_ledger_migrate_brings_either_store_to_the_current_schema(tmp_path: Path) -> None:
    with postgres.fresh_schema() as url:
        for ledger in (f"sqlite:///{tmp_path / 'new.sqlite3'}", url):
            migrate = await asyncio.create_subprocess_exec(
                YIKATONG, "ledger", "migrate", "--ledger", ledger, stdout=asyncio.subprocess.PIPE
            )
            out, _ = await migrate.communicate()
            assert (migrate.returncode, out.decode().strip()) == (0, f"ledger at schema version {len(MIGRATIONS)}")


async def test_a_replica_that_loses_the_others_news_forgets_its_cache_and_hears_again(replicas: Replicas) -> None:
    first, second = replicas.people("yangtze-delta")[7:9]
    b = replicas.hubs[1]

    def use(person: SeededPerson) -> resident_pb2.AuthorizeServiceRequest:
        return resident_pb2.AuthorizeServiceRequest(
            card=credential(person, with_name=False),
            service_kind=resident_pb2.SERVICE_KIND_LIBRARY,
            venue=common_pb2.Venue(area_code=SHANGHAI),
        )

    def hits() -> float:
        return b.metrics.registry.get_sample_value("yikatong_status_cache_lookups_total", {"result": "hit"}) or 0.0

    for _ in range(2):  # the second answered from B's cache
        assert (await replicas.resident(1).AuthorizeService(use(first), timeout=5)).authorized
    assert hits() == 1
    listening = b.broadcast._listen.info.backend_pid  # type: ignore[attr-defined]
    replicas.ledger("SELECT pg_terminate_backend(%s)", listening)  # B's news connection drops

    deadline = time.monotonic() + 5
    while b.broadcast._listen is None or b.broadcast._listen.info.backend_pid == listening:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "replica B did not reconnect"
        await asyncio.sleep(0.05)
    assert (await replicas.resident(1).AuthorizeService(use(first), timeout=5)).authorized
    assert hits() == 1  # whatever it missed, it kept nothing: the region was asked again

    assert (await replicas.resident(1).AuthorizeService(use(second), timeout=5)).authorized
    report = card_affairs_pb2.ReportLossRequest(request_id="loss-after-reconnect", card=credential(second))
    await replicas.affairs(0).ReportLoss(report, timeout=5)
    deadline = time.monotonic() + 1
    while (await replicas.resident(1).AuthorizeService(use(second), timeout=5)).authorized:
        assert time.monotonic() < deadline, "replica B did not hear the loss after reconnecting"
        await asyncio.sleep(0.02)
