"""The calls a benchmark makes, each the same operation three ways where it can be:

* **direct** — the region's adapter, in the load generator, calling the sandbox (no hub at all);
* **pass-through** — the Beijing–Tianjin–Hebei card centre's native ``QueryCard`` through ``tools/passthrough.py``
  over mutual TLS (a hub that does nothing but forward);
* **hub** — the hub's public API over mutual TLS, as the participant that would make the call: a venue of the
  card's own region verifies and authorises (``museum-beijing``, ``transit-hangzhou``, ``park-chengdu``), a
  Shanghai hospital (``hospital-shanghai-xuhui``, 310104, H3101040001) settles.

Hub calls go over one channel per participant, or, where the load must reach several processes behind one port
(replicas), over ``connections`` channels of their own: gRPC channels with the same target and arguments share one
TCP connection, and the kernel spreads *connections* over the replicas, not calls.

Call ``i`` uses the ``i``-th sandbox person (cyclically) with a NORMAL card, and for settlement an insured one from
outside Shanghai, so every settlement crosses provinces. An answer that is not the success the call expects raises:
the load generator counts it as an error rather than timing a refusal.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import grpc

from adapters.domain import Bill, BillLine, CardStatus, CatalogueClass, VisitType
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from jingjinji.v1 import card_center_pb2 as jpb
from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceStub
from regions.config import RegionConfig, load_regions
from regions.ecard import credential_of
from regions.secrets import resolve_region
from regions.seed import SeededPerson, people_of
from yikatong.v1 import (
    card_pb2,
    card_pb2_grpc,
    common_pb2,
    resident_pb2,
    resident_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

from .load import Call
from .processes import Fleet

JJJ = "beijing-tianjin-hebei"
TIMEOUT = 5.0


@dataclass(frozen=True)
class Venue:
    """Where a region's cards are verified and used in the benchmark, and by whom."""

    participant: str
    area: str
    service_kind: resident_pb2.ServiceKind.ValueType


VENUES = {
    JJJ: Venue("museum-beijing", "110105", resident_pb2.SERVICE_KIND_MUSEUM),
    "yangtze-delta": Venue("transit-hangzhou", "330100", resident_pb2.SERVICE_KIND_TRANSIT),
    "sichuan-chongqing": Venue("park-chengdu", "510100", resident_pb2.SERVICE_KIND_PARK),
}
HOSPITAL, HOSPITAL_AREA, HOSPITAL_ID = "hospital-shanghai-xuhui", "310104", "H3101040001"
LINES = (
    BillLine("110900001", "床位费", CatalogueClass.A, 2, 9000, 18000),
    BillLine("XC01AAT0", "头孢曲松", CatalogueClass.B, 3, 2000, 6000),
    BillLine("250101001", "血常规", CatalogueClass.A, 1, 2000, 2000),
)
_CLASSES = {c: settlement_pb2.CatalogueClass.Value(f"CATALOGUE_CLASS_{c.value}") for c in CatalogueClass}
PB_LINES = tuple(
    settlement_pb2.BillLine(
        item_code=line.item_code,
        item_name=line.item_name,
        catalogue_class=_CLASSES[line.catalogue_class],
        quantity=line.quantity,
        unit_price_fen=line.unit_price_fen,
        amount_fen=line.amount_fen,
    )
    for line in LINES
)


class CallFailed(Exception):
    """An answer that is not the success the benchmark asked for."""


def card(person: SeededPerson) -> common_pb2.CardCredential:
    return common_pb2.CardCredential(
        social_security_number=person.social_security_number,
        card_number=person.card_number,
        card_identification_code=person.card_identification_code,
        holder_name=person.name,
    )


def bill(person: SeededPerson) -> Bill:
    """An inpatient bill at the Shanghai hospital, as the hub would hand it to the insured region's adapter."""
    assert person.insurance is not None
    return Bill(
        request_id=str(uuid.uuid4()),
        credential=credential_of(person),
        insured_area=person.insurance.insured_area,
        treatment_area=HOSPITAL_AREA,
        institution_id=HOSPITAL_ID,
        hospital_level=3,
        visit_type=VisitType.INPATIENT,
        later_admission=False,
        lines=LINES,
        use_personal_account=True,
    )


def settle_request(person: SeededPerson) -> settlement_pb2.SettleRequest:
    """The same bill as the hub's API takes it."""
    return settlement_pb2.SettleRequest(
        request_id=str(uuid.uuid4()),
        card=card(person),
        venue=common_pb2.Venue(area_code=HOSPITAL_AREA, institution_id=HOSPITAL_ID),
        hospital_level=3,
        visit_type=settlement_pb2.VISIT_TYPE_INPATIENT,
        lines=PB_LINES,
        use_personal_account=True,
    )


class Workload:
    """Adapters, channels and people for the calls; :meth:`open` before use, :meth:`close` after.

    Args:
        fleet: the running processes to call.
    """

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        configs = {c.region_id: c for c in load_regions() if c.region_id in fleet.regions}
        self.configs: dict[str, RegionConfig] = configs
        self.people = {r: [p for p in people_of(c) if p.status is CardStatus.NORMAL] for r, c in configs.items()}
        insured = [
            (r, p)
            for r, people in self.people.items()
            for p in people
            if p.insurance is not None and not p.insurance.insured_area.startswith(HOSPITAL_AREA[:2])
        ]
        # Interleaved across regions, so any run of settlements spreads over all three.
        self.insured = _interleave(insured)
        self.adapters: dict[str, RegionAdapter] = {}
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def open(self) -> None:
        registry = AdapterRegistry.from_entry_points()
        for region, config in self.configs.items():
            cls = registry.get(config.adapter)
            options = resolve_region(config, self.fleet.data_dir).options  # TLS files, secrets: as the hub reads them
            adapter = cls(AdapterSettings(region, self.fleet.regions[region], dict(options)))
            await adapter.start()
            self.adapters[region] = adapter

    async def close(self) -> None:
        for adapter in self.adapters.values():
            await adapter.close()
        for channel in self._channels.values():
            await channel.close(None)

    async def forget(self, address: str) -> None:
        """Close the channels to ``address`` (processes that were stopped), so none keeps reconnecting."""
        for key in [k for k in self._channels if k.startswith(f"{address}|")]:
            await self._channels.pop(key).close(None)

    def _channel(self, address: str, participant: str, connection: int | None = None) -> grpc.aio.Channel:
        """A mutual-TLS channel to ``address`` with the participant's certificate, kept open: the one of the pair,
        or with ``connection`` the pair's ``connection``-th channel with a TCP connection of its own (a local
        subchannel pool, so it shares no connection with the pair's other channels)."""
        key = f"{address}|{participant}|{connection}"
        if key not in self._channels:
            pki = self.fleet.pki
            credentials = grpc.ssl_channel_credentials(
                (pki / "ca.pem").read_bytes(),
                (pki / "participants" / f"{participant}.key").read_bytes(),
                (pki / "participants" / f"{participant}.pem").read_bytes(),
            )
            options = [] if connection is None else [("grpc.use_local_subchannel_pool", 1)]
            self._channels[key] = grpc.aio.secure_channel(address, credentials, options)
        return self._channels[key]

    def _hub_channels(self, address: str, participant: str, connections: int) -> list[grpc.aio.Channel]:
        """The channels hub calls go over: the pair's one (``connections`` 0), or that many of their own."""
        address = address or self.fleet.hub_address
        if not connections:
            return [self._channel(address, participant)]
        return [self._channel(address, participant, n) for n in range(connections)]

    def _person(self, region: str, i: int) -> SeededPerson:
        people = self.people[region]
        return people[i % len(people)]

    # --- VerifyCard and its references -------------------------------------------------------------------------

    def direct_verify(self, region: str) -> Call:
        """The region's adapter looking the card up at its sandbox."""
        adapter = self.adapters[region]

        async def call(i: int) -> object:
            return await adapter.get_card(credential_of(self._person(region, i)), timeout=TIMEOUT)

        return call

    def passthrough_verify(self) -> Call:
        """The card centre's native ``QueryCard`` for the same card, through the pass-through proxy."""
        stub = CardCenterServiceStub(self._channel(self.fleet.proxy_address, VENUES[JJJ].participant))

        async def call(i: int) -> object:
            p = self._person(JJJ, i)
            request = jpb.QueryCardRequest(
                sfzh=p.social_security_number, kh=p.card_number, sbm=p.card_identification_code, xm=p.name
            )
            answer = await stub.QueryCard(request, timeout=TIMEOUT)
            if answer.result.code != 0:
                raise CallFailed(f"QueryCard answered {answer.result.code}: {answer.result.message}")
            return answer

        return call

    def hub_verify(self, region: str, address: str = "", connections: int = 0) -> Call:
        """``CardService.VerifyCard`` at the region's venue, as that venue, at the fleet's hub or ``address``; call
        ``i`` over channel ``i`` mod ``connections`` when there are several (``_hub_channels``)."""
        venue = VENUES[region]
        stubs = [card_pb2_grpc.CardServiceStub(c) for c in self._hub_channels(address, venue.participant, connections)]
        where = common_pb2.Venue(area_code=venue.area)

        async def call(i: int) -> object:
            request = card_pb2.VerifyCardRequest(card=card(self._person(region, i)), venue=where)
            return await stubs[i % len(stubs)].VerifyCard(request, timeout=TIMEOUT)

        return call

    # --- AuthorizeService ------------------------------------------------------------------------------------------

    def hub_authorize(self) -> Call:
        """``ResidentService.AuthorizeService`` at each region's venue in turn, for a card of that region."""
        regions = list(self.people)
        stubs = {
            r: resident_pb2_grpc.ResidentServiceStub(self._channel(self.fleet.hub_address, VENUES[r].participant))
            for r in regions
        }

        async def call(i: int) -> object:
            region = regions[i % len(regions)]
            venue = VENUES[region]
            request = resident_pb2.AuthorizeServiceRequest(
                card=card(self._person(region, i // len(regions))),
                service_kind=venue.service_kind,
                venue=common_pb2.Venue(area_code=venue.area),
            )
            answer = await stubs[region].AuthorizeService(request, timeout=TIMEOUT)
            if not answer.authorized:
                raise CallFailed(f"AuthorizeService refused: {answer.reason}")
            return answer

        return call

    # --- Settle ------------------------------------------------------------------------------------------------------

    def direct_settle(self) -> Call:
        """The insured region's adapter settling the bill at its sandbox (the region's own books)."""

        async def call(i: int) -> object:
            region, person = self.insured[i % len(self.insured)]
            return await self.adapters[region].settle(bill(person), timeout=TIMEOUT)

        return call

    def hub_settle(self, address: str = "", connections: int = 0) -> Call:
        """``MedicalSettlementService.Settle`` of the same bill, as the Shanghai hospital (``address`` and
        ``connections`` as for :meth:`hub_verify`)."""
        channels = self._hub_channels(address, HOSPITAL, connections)
        stubs = [settlement_pb2_grpc.MedicalSettlementServiceStub(c) for c in channels]

        async def call(i: int) -> object:
            _, person = self.insured[i % len(self.insured)]
            answer = await stubs[i % len(stubs)].Settle(settle_request(person), timeout=TIMEOUT)
            if answer.settlement.state != settlement_pb2.SETTLEMENT_STATE_SETTLED:
                state = settlement_pb2.SettlementState.Name(answer.settlement.state)
                raise CallFailed(f"Settle answered {state}")
            return answer

        return call

    # --- mixed load, for the soak --------------------------------------------------------------------------------

    def hub_mixed(self) -> Call:
        """Of every ten calls: six VerifyCard (two per region), two AuthorizeService, two Settle."""
        verify = [self.hub_verify(r) for r in self.people]
        authorize, settle = self.hub_authorize(), self.hub_settle()
        plan = [*verify, authorize, *verify, settle, authorize, settle]

        async def call(i: int) -> object:
            return await plan[i % len(plan)](i // len(plan))

        return call


def _interleave(pairs: list[tuple[str, SeededPerson]]) -> list[tuple[str, SeededPerson]]:
    """``[(a, 1), (a, 2), (b, 1)]`` → ``[(a, 1), (b, 1), (a, 2)]``: round robin over the regions."""
    by_region: dict[str, list[tuple[str, SeededPerson]]] = {}
    for pair in pairs:
        by_region.setdefault(pair[0], []).append(pair)
    columns = list(by_region.values())
    return [column[k] for k in range(max(map(len, columns), default=0)) for column in columns if k < len(column)]
