"""Shared fixtures: real sandboxes (and, in later modules, a real hub) on loopback port 0."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp
import grpc
import pytest

from adapters.tls import ClientTls
from gateway import pki
from gateway.config import TlsFiles, load_hub_config
from gateway.hub import Hub
from gateway.participants import PARTICIPANTS_FILE, load_participants
from gateway.pki import Pki
from gateway.services.resilience import RetryBudget
from regions import ecard
from regions.config import RegionConfig, load_regions
from regions.provisioning import Links, provision
from regions.sandbox import RunningSandbox, start_sandbox
from regions.secrets import resolve_region
from regions.seed import SeededPerson, generate
from yikatong.v1 import (
    card_affairs_pb2_grpc,
    card_pb2_grpc,
    clearing_pb2_grpc,
    common_pb2,
    federation_pb2_grpc,
    resident_pb2_grpc,
    settlement_pb2_grpc,
)

REGION_IDS = ("yangtze-delta", "sichuan-chongqing", "beijing-tianjin-hebei")
YIKATONG = str(Path(sys.executable).parent / "yikatong")  # the command line, as a user runs it

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The test's data directory with what `yikatong up` generates (region-link certificates, sandbox secrets), the
    e-card platform key being the well-known sandbox one that ``regions.ecard.issue_token`` signs with by default:
    a hub built on it must run in development mode (``dev=True``), which the hub fixtures say explicitly."""
    provision(tmp_path, load_regions(), ecard_key=ecard.SANDBOX_KEY)
    return tmp_path


@dataclass(frozen=True)
class HubLink:
    """What the hub presents and trusts on its links to the test's sandboxes, for tests that speak to them raw."""

    tls: ClientTls

    def http(self) -> aiohttp.ClientSession:
        """An HTTP client trusting the sandboxes' CA and presenting the hub's client certificate."""
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.tls.ssl_context()))

    def channel(self, address: str) -> grpc.aio.Channel:
        """A gRPC channel to a sandbox, with the same credentials."""
        tls = self.tls
        credentials = grpc.ssl_channel_credentials(tls.ca.encode(), tls.key.encode(), tls.cert.encode())
        return grpc.aio.secure_channel(address, credentials)


@pytest.fixture
def hub_link(data_dir: Path) -> HubLink:
    links = Links(data_dir)
    files = (links.ca, links.hub_client.cert, links.hub_client.key)
    return HubLink(ClientTls(*(path.read_text() for path in files)))


@pytest.fixture
def region_configs(data_dir: Path) -> dict[str, RegionConfig]:
    """The configured regions, their references resolved from :func:`data_dir` (TLS sandboxes, shared secrets)."""
    return {c.region_id: resolve_region(c, data_dir) for c in load_regions()}


@pytest.fixture
async def start_region(region_configs: dict[str, RegionConfig]) -> AsyncIterator[StartSandbox]:
    """Start a region's sandbox on free ports; every sandbox started is stopped after the test."""
    started: list[RunningSandbox] = []

    async def start(region_id: str) -> RunningSandbox:
        sandbox = await start_sandbox(region_configs[region_id], port=0, admin_port=0)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        await sandbox.stop()


@dataclass
class Federation:
    """A running hub with the three sandboxes, and stubs to call it."""

    hub: Hub
    sandboxes: dict[str, RunningSandbox]
    channel: grpc.aio.Channel
    cards: card_pb2_grpc.CardServiceStub
    affairs: card_affairs_pb2_grpc.CardAffairsServiceStub
    federation: federation_pb2_grpc.FederationServiceStub
    settlement: settlement_pb2_grpc.MedicalSettlementServiceStub
    clearing: clearing_pb2_grpc.ClearingServiceStub
    resident: resident_pb2_grpc.ResidentServiceStub

    def people(self, region_id: str) -> list[SeededPerson]:
        config = self.sandboxes[region_id].config
        return generate(config.region_id, config.provinces)

    def pick(self, region_id: str, predicate: Callable[[SeededPerson], bool]) -> SeededPerson:
        return next(p for p in self.people(region_id) if predicate(p))

    def tune(self, region_id: str, **settings: float) -> None:
        """Change a region's resilience settings in the running hub (its guard and breaker read them per call)."""
        guard = self.hub.federation.regions[region_id].guard
        guard.settings = replace(guard.settings, **settings)
        guard.breaker.settings = guard.settings
        guard.budget = RetryBudget(guard.settings.retry_budget_ratio, guard.settings.retry_budget_tokens)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.hub.metrics.registry.get_sample_value(name, labels or {}) or 0.0


def credential(p: SeededPerson, *, with_name: bool = True) -> common_pb2.CardCredential:
    return common_pb2.CardCredential(
        social_security_number=p.social_security_number,
        card_number=p.card_number,
        card_identification_code=p.card_identification_code,
        holder_name=p.name if with_name else "",
    )


# Participants the tests add to the shipped file: one with every role over the nine provinces (the fuzzer's), and one
# with a tiny rate limit.
TEST_PARTICIPANTS = """
[[participant]]
id = "test-everything"
name = "every role, nine provinces (tests)"
roles = ["hospital", "card-service", "venue", "region", "clearing", "operator"]
areas = ["11", "12", "13", "31", "32", "33", "34", "50", "51"]
institutions = ["H3101040001"]

[[participant]]
id = "test-throttled"
name = "a venue allowed two calls and one a second (tests)"
roles = ["venue"]
areas = ["31"]
rate_limit = { per_second = 1, burst = 2 }
"""


@dataclass
class SecureFederation:
    """A hub serving mutual TLS with the three sandboxes, its development PKI, and channels per participant."""

    hub: Hub
    sandboxes: dict[str, RunningSandbox]
    pki: Pki
    _channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)

    def credentials(self, participant: str, pki: Pki | None = None) -> grpc.ChannelCredentials:
        made = pki or self.pki
        files = made.participant(participant)
        return grpc.ssl_channel_credentials(self.pki.ca.read_bytes(), files.key.read_bytes(), files.cert.read_bytes())

    def channel(self, participant: str) -> grpc.aio.Channel:
        """A channel to the hub with the participant's certificate (kept until the test ends)."""
        if participant not in self._channels:
            self._channels[participant] = grpc.aio.secure_channel(self.hub.address, self.credentials(participant))
        return self._channels[participant]

    def settlement(self, participant: str) -> settlement_pb2_grpc.MedicalSettlementServiceStub:
        return settlement_pb2_grpc.MedicalSettlementServiceStub(self.channel(participant))

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


@pytest.fixture
async def secure_federation(
    start_region: StartSandbox, tmp_path: Path, data_dir: Path
) -> AsyncIterator[SecureFederation]:
    """The hub on port 0 serving mutual TLS, with the shipped participants and :data:`TEST_PARTICIPANTS`."""
    sandboxes = {r: await start_region(r) for r in REGION_IDS}
    participants_file = tmp_path / "participants.toml"
    participants_file.write_text(PARTICIPANTS_FILE.read_text() + TEST_PARTICIPANTS)
    made = pki.init(tmp_path / "pki", [p.id for p in load_participants(participants_file)])
    config = load_hub_config(data_dir=data_dir)
    config = replace(
        config.with_endpoints({r: s.address for r, s in sandboxes.items()}),
        dev=True,
        port=0,
        admin_port=0,
        probe_interval_seconds=3600,
        participants_file=participants_file,
        tls=TlsFiles(made.ca, made.hub.cert, made.hub.key),
    )
    hub = Hub(config)
    await hub.start()
    secure = SecureFederation(hub, sandboxes, made)
    for region_id, sandbox in sandboxes.items():
        sandbox.events.point_at(hub.address, secure.credentials(f"region-{region_id}"))
    yield secure
    await secure.close()
    await hub.stop(grace=1, drain=0)


@pytest.fixture
async def federation(start_region: StartSandbox, data_dir: Path) -> AsyncIterator[Federation]:
    """The hub on port 0, in development mode, with all three sandboxes as real servers on port 0."""
    sandboxes = {r: await start_region(r) for r in REGION_IDS}
    config = replace(load_hub_config(data_dir=data_dir), dev=True)
    # Probed once at start; no background probe during a test, so breaker counts and fault draws are the test's own.
    endpoints = {r: s.address for r, s in sandboxes.items()}
    config = replace(config.with_endpoints(endpoints), port=0, admin_port=0, probe_interval_seconds=3600, insecure=True)
    hub = Hub(config)
    await hub.start()
    for sandbox in sandboxes.values():
        sandbox.events.point_at(hub.address)
    channel = grpc.aio.insecure_channel(hub.address)
    yield Federation(
        hub,
        sandboxes,
        channel,
        card_pb2_grpc.CardServiceStub(channel),
        card_affairs_pb2_grpc.CardAffairsServiceStub(channel),
        federation_pb2_grpc.FederationServiceStub(channel),
        settlement_pb2_grpc.MedicalSettlementServiceStub(channel),
        clearing_pb2_grpc.ClearingServiceStub(channel),
        resident_pb2_grpc.ResidentServiceStub(channel),
    )
    await channel.close()
    await hub.stop(grace=1, drain=0)
