"""Resident services through the hub against real sandboxes: agreements, card events, the status cache, stand-in."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from pathlib import Path

import aiohttp
import grpc
import pytest

from adapters.domain import CardStatus, ServiceKind
from gateway.api.status import error_reason
from gateway.config import DEFAULT_FILE
from gateway.participants import PARTICIPANTS_FILE
from regions.agreements import AGREEMENTS_FILE
from regions.seed import SeededPerson, generate
from tests.bills import VENUES
from tests.conftest import YIKATONG, Federation, StartSandbox, credential
from yikatong.v1 import common_pb2, resident_pb2, resident_pb2_grpc

ALL = set(ServiceKind)
# The default agreements of the issue, written out here rather than read from the file under test.
ALLIANCES = (
    ({"31", "32", "33", "34"}, ALL),
    ({"50", "51"}, ALL),
    ({"11", "12", "13"}, {ServiceKind.LIBRARY, ServiceKind.MUSEUM, ServiceKind.SCENIC_SPOT, ServiceKind.PARK}),
)
REGION_OF = {"31": "yangtze-delta", "32": "yangtze-delta", "33": "yangtze-delta", "34": "yangtze-delta",
             "50": "sichuan-chongqing", "51": "sichuan-chongqing",
             "11": "beijing-tianjin-hebei", "12": "beijing-tianjin-hebei", "13": "beijing-tianjin-hebei"}  # fmt: skip


def agreed_by_default(card: str, venue: str, kind: ServiceKind) -> bool:
    return card == venue or any(card in members and venue in members and kind in kinds for members, kinds in ALLIANCES)


def card_of(federation: Federation, province: str, skip: int = 0) -> SeededPerson:
    people = [
        p
        for p in federation.people(REGION_OF[province])
        if p.status is CardStatus.NORMAL and p.issuing_area.startswith(province)
    ]
    return people[skip]


def authorize_request(person: SeededPerson, kind: ServiceKind, venue: str) -> resident_pb2.AuthorizeServiceRequest:
    return resident_pb2.AuthorizeServiceRequest(
        card=credential(person, with_name=False),
        service_kind=resident_pb2.ServiceKind.Value(f"SERVICE_KIND_{kind.value}"),
        venue=common_pb2.Venue(area_code=venue),
    )


async def authorize(
    federation: Federation, person: SeededPerson, kind: ServiceKind, venue: str
) -> resident_pb2.AuthorizeServiceResponse:
    return await federation.resident.AuthorizeService(authorize_request(person, kind, venue), timeout=5)


async def set_status_at_region(federation: Federation, person: SeededPerson, status: str) -> None:
    """Change the card at its region's own counter (the sandbox's admin endpoint), not through the hub."""
    sandbox = federation.sandboxes[REGION_OF[person.issuing_area[:2]]]
    url = f"{sandbox.admin_url}/admin/cards/{person.card_number}/status"
    async with aiohttp.ClientSession() as session, session.post(url, json={"status": status}) as reply:
        assert reply.status == 200


async def test_every_province_pair_and_kind_gets_what_the_agreements_say(federation: Federation) -> None:
    answers = {}
    for card_province in VENUES:
        person = card_of(federation, card_province)
        for venue_province, venue in VENUES.items():
            for kind in ServiceKind:
                answer = await authorize(federation, person, kind, venue)
                answers[(card_province, venue_province, kind)] = answer
    assert len(answers) == 9 * 9 * 5
    for (card, venue, kind), answer in answers.items():
        agreed = agreed_by_default(card, venue, kind)
        assert (answer.authorized, answer.reason) == ((True, "") if agreed else (False, "SERVICE_NOT_AGREED"))
        assert answer.local == (card == venue) and not answer.via_stand_in
        assert answer.issuing_region == REGION_OF[card]


async def test_a_cross_alliance_agreement_is_added_by_configuration_and_reload(
    federation: Federation, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shanghai, chengdu = card_of(federation, "31"), card_of(federation, "51")
    agreements = tmp_path / "agreements.toml"
    shutil.copy(AGREEMENTS_FILE, agreements)
    federation.hub.agreements_file = agreements
    assert not (await authorize(federation, shanghai, ServiceKind.MUSEUM, "510100")).authorized

    agreements.write_text(
        AGREEMENTS_FILE.read_text()
        + '\n[[cross]]\ncards = ["31"]\nvenues = ["sichuan-chongqing"]\nkinds = ["MUSEUM"]\n'
    )
    assert federation.hub.reload()

    assert (await authorize(federation, shanghai, ServiceKind.MUSEUM, "510100")).authorized
    assert (await authorize(federation, shanghai, ServiceKind.MUSEUM, "500103")).authorized
    assert not (await authorize(federation, shanghai, ServiceKind.PARK, "510100")).authorized
    assert not (await authorize(federation, chengdu, ServiceKind.MUSEUM, "310104")).authorized  # not mutual

    agreements.write_text('[[cross]]\ncards = ["31"]\nvenues = ["44"]\nkinds = ["MUSEUM"]\n')  # 44 is not federated
    assert not federation.hub.reload()
    assert "cross[0].venues" in caplog.text and "keeping the agreements in force" in caplog.text
    assert (await authorize(federation, shanghai, ServiceKind.MUSEUM, "510100")).authorized


async def test_a_loss_reported_at_the_region_is_refused_within_a_second_through_its_event(
    federation: Federation,
) -> None:
    person = card_of(federation, "32", skip=3)
    assert (await authorize(federation, person, ServiceKind.TRANSIT, "310104")).authorized  # now cached

    await set_status_at_region(federation, person, "TEMPORARILY_LOST")
    started = time.monotonic()
    while (answer := await authorize(federation, person, ServiceKind.TRANSIT, "310104")).authorized:
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.02)

    assert answer.reason == "CARD_TEMPORARILY_LOST"
    assert federation.metric("yikatong_card_events_total", {"region": "yangtze-delta", "status": "TEMPORARILY_LOST"})


async def test_without_the_event_the_loss_is_refused_once_the_cached_status_expires(federation: Federation) -> None:
    federation.hub.services.resident.cache_seconds = 1.0
    person = card_of(federation, "11", skip=2)
    federation.sandboxes["beijing-tianjin-hebei"].faults.update({"drop_events": True})
    assert (await authorize(federation, person, ServiceKind.LIBRARY, "120103")).authorized
    cached_at = time.monotonic()

    await set_status_at_region(federation, person, "LOST")
    still = await authorize(federation, person, ServiceKind.LIBRARY, "120103")  # answered from the cache
    while (answer := await authorize(federation, person, ServiceKind.LIBRARY, "120103")).authorized:
        assert time.monotonic() - cached_at < 3.0
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - cached_at

    assert still.authorized
    assert answer.reason == "CARD_LOST"
    assert 0.9 < elapsed < 1.0 + 0.5


async def test_stand_in_grants_a_recently_seen_card_and_the_region_gets_every_advice(federation: Federation) -> None:
    region = "sichuan-chongqing"
    federation.tune(region, breaker_cooldown_seconds=0.2)
    federation.hub.services.outbox.base_delay_seconds, federation.hub.services.outbox.poll_seconds = 0.05, 0.05
    seen, unseen, stale = card_of(federation, "51", 1), card_of(federation, "51", 2), card_of(federation, "50", 0)
    resident = federation.hub.services.resident
    resident.cache_seconds = 0.0  # every call asks the region, so stand-in is what answers when it is down
    assert (await authorize(federation, stale, ServiceKind.PARK, "510100")).authorized
    federation.hub.clock.advance(resident.stand_in_seconds + 60)  # that confirmation is now too old
    assert (await authorize(federation, seen, ServiceKind.PARK, "500103")).authorized
    federation.sandboxes[region].faults.update({"down": True})

    granted = [await authorize(federation, seen, kind, "500103") for kind in (ServiceKind.PARK, ServiceKind.MUSEUM)]
    with pytest.raises(grpc.aio.AioRpcError) as never_seen:
        await authorize(federation, unseen, ServiceKind.PARK, "500103")
    with pytest.raises(grpc.aio.AioRpcError) as too_old:
        await authorize(federation, stale, ServiceKind.PARK, "510100")

    assert [(g.authorized, g.via_stand_in) for g in granted] == [(True, True), (True, True)]
    for refused in (never_seen.value, too_old.value):
        assert refused.code() is grpc.StatusCode.UNAVAILABLE
        assert error_reason(refused) in {"REGION_UNAVAILABLE", "REGION_CIRCUIT_OPEN"}
    assert federation.metric("yikatong_stand_in_grants_total", {"region": region, "service_kind": "PARK"}) == 1

    federation.sandboxes[region].faults.update({"clear": True})
    advices = federation.sandboxes[region].system.advices
    deadline = time.monotonic() + 10
    while len(advices) < 2:
        assert time.monotonic() < deadline, "advices not delivered"
        await asyncio.sleep(0.05)
    assert sorted((a.card_number, a.service_kind.value, a.venue_area) for a in advices.values()) == [
        (seen.card_number, "MUSEUM", "500103"),
        (seen.card_number, "PARK", "500103"),
    ]


@pytest.mark.slow
async def test_sighup_reloads_the_agreements_file_of_a_running_hub(start_region: StartSandbox, tmp_path: Path) -> None:
    sandbox = await start_region("yangtze-delta")
    config = sandbox.config
    shanghai = next(
        p
        for p in generate(config.region_id, config.provinces)
        if p.status is CardStatus.NORMAL and p.issuing_area.startswith("31")
    )
    agreements = tmp_path / "agreements.toml"
    shutil.copy(AGREEMENTS_FILE, agreements)
    hub_file = tmp_path / "hub.toml"
    hub_file.write_text(
        DEFAULT_FILE.read_text()
        .replace('agreements_file = "../regions/agreements.toml"', f'agreements_file = "{agreements}"')
        .replace('file = "participants.toml"', f'file = "{PARTICIPANTS_FILE}"')
    )
    process = await asyncio.create_subprocess_exec(
        YIKATONG, "serve", "--config", str(hub_file), "--data-dir", str(tmp_path), "--port", "0", "--admin-port",
        "0", "--endpoint", f"yangtze-delta={sandbox.address}", "--insecure", "--dev", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    address = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().split()[2]
    request = authorize_request(shanghai, ServiceKind.MUSEUM, "510100")
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = resident_pb2_grpc.ResidentServiceStub(channel)
            before = await stub.AuthorizeService(request, timeout=5)
            agreements.write_text(
                AGREEMENTS_FILE.read_text() + '\n[[cross]]\ncards = ["31"]\nvenues = ["51"]\nkinds = ["MUSEUM"]\n'
            )
            process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 5
            while not (after := await stub.AuthorizeService(request, timeout=5)).authorized:
                assert time.monotonic() < deadline, "the agreement was not picked up"
                await asyncio.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await process.wait() == 0
    assert (before.authorized, before.reason) == (False, "SERVICE_NOT_AGREED")
    assert (after.authorized, after.reason) == (True, "")
