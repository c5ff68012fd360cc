"""The mixed load of a chaos run (``tools/chaos.py``): several concurrent callers, each with its own seeded dice.

Callers verify cards, read card statuses, report and cancel temporary losses (card services), pre-settle, settle,
reverse what they were answered SETTLED for, and ask for resident services (which the hub stands in for while a
card's region is down). A settle or reversal that failed in a way a hospital would retry (UNAVAILABLE,
DEADLINE_EXCEEDED, ABORTED, or cut by a hub kill) is sometimes retried under the same request id.

Every call and its answer goes into the :class:`Journal` that the checks read. The people come from the sandboxes'
seed, as ``yikatong sandbox cards`` prints them: settlements only for NORMAL cards of insured people, kept apart
from the people whose cards the card services change, so each person's money stays computable.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from adapters.domain import CardStatus, ServiceKind
from regions.agreements import AGREEMENTS_FILE, load_agreements
from regions.config import RegionConfig
from regions.seed import VENUES, SeededPerson, people_of
from tools.chaos_checks import Answer, Money, PersonBooks, ReverseAsk, SettleAsk
from tools.chaos_procs import Hubs
from yikatong.v1 import (
    card_affairs_pb2,
    card_affairs_pb2_grpc,
    card_pb2,
    card_pb2_grpc,
    common_pb2,
    resident_pb2,
    resident_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

OPERATIONS = {  # operation → weight
    "verify": 16,
    "card_status": 5,
    "card_service": 8,
    "pre_settle": 10,
    "settle": 32,
    "reverse": 9,
    "resident": 20,
}
RETRYABLE = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "RESOURCE_EXHAUSTED")
# A restarted hub is found again within a second, not after gRPC's default backoff of up to two minutes. Channels
# with the same arguments would share one connection (gRPC's global subchannel pool), so every caller would land on
# the same replica: a pool of its own gives each caller its own connection, which the kernel puts on any replica.
CHANNEL_OPTIONS = [
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]
SETTLE_TIMEOUT, CALL_TIMEOUT = 15.0, 5.0  # a settle may take two region timeouts and retried outcome queries
Response = TypeVar("Response")


@dataclass(frozen=True)
class Person:
    """A seeded person and the region that holds them."""

    region: str
    seeded: SeededPerson

    @property
    def ssn(self) -> str:
        return self.seeded.social_security_number

    def credential(self) -> common_pb2.CardCredential:
        p = self.seeded
        return common_pb2.CardCredential(
            social_security_number=p.social_security_number,
            card_number=p.card_number,
            card_identification_code=p.card_identification_code,
            holder_name=p.name,
        )

    def seed_books(self) -> PersonBooks:
        acc = self.seeded.accumulators
        return PersonBooks(
            {v: (a["deductible_used_fen"], a["fund_paid_fen"]) for v, a in acc.items()}, self.seeded.account_balance_fen
        )


@dataclass(frozen=True)
class Cast:
    """Who the callers act for: settlement people, card-service people, and cards to verify; and where each
    card province may use resident services (the agreements file: venue province and kind)."""

    settle: tuple[Person, ...]
    services: tuple[Person, ...]
    verify: tuple[Person, ...]
    agreed: dict[str, list[tuple[str, ServiceKind]]] = field(default_factory=dict)

    @classmethod
    def choose(cls, regions: list[RegionConfig], rng: random.Random, per_region: int = 10) -> Cast:
        settle: list[Person] = []
        services: list[Person] = []
        verify: list[Person] = []
        for region in regions:
            people = [Person(region.region_id, p) for p in people_of(region)]
            insured = [p for p in people if p.seeded.status is CardStatus.NORMAL and p.seeded.insurance is not None]
            chosen = rng.sample(insured, per_region)
            settle += chosen
            spare = [
                p
                for p in people
                if p not in chosen and p.seeded.status in (CardStatus.NORMAL, CardStatus.TEMPORARILY_LOST)
            ]
            services += rng.sample(spare, 4)
            verify += rng.sample([p for p in people if p.seeded.status is not None], per_region)
        agreed: dict[str, list[tuple[str, ServiceKind]]] = {}
        for card, venue, kind in sorted(load_agreements(AGREEMENTS_FILE, regions).grants, key=str):
            if venue in VENUES:
                agreed.setdefault(card, []).append((venue, kind))
        return cls(tuple(settle), tuple(services), tuple(verify), agreed)


@dataclass
class Journal:
    """Every call the run made and what it got; the settles and reversals with their request ids."""

    calls: list[tuple[str, str, Answer]] = field(default_factory=list)
    settles: dict[str, SettleAsk] = field(default_factory=dict)
    reversals: list[ReverseAsk] = field(default_factory=list)
    settled: list[SettleAsk] = field(default_factory=list)  # answered SETTLED: what may be reversed

    def record(self, method: str, request_id: str, answer: Answer) -> Answer:
        self.calls.append((method, request_id, answer))
        return answer


def error_info(exc: grpc.aio.AioRpcError) -> tuple[str, dict[str, str]]:
    """The ``ErrorInfo`` reason and metadata of a failed call ("" and {} when it has none)."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason), dict(info.metadata)
    return "", {}


def money(split: settlement_pb2.Split) -> Money:
    return Money(split.deductible_fen, split.fund_pay_fen, split.account_pay_fen, split.cash_pay_fen)


def settlement_answer(settlement: settlement_pb2.Settlement) -> Answer:
    state = settlement_pb2.SettlementState.Name(settlement.state).removeprefix("SETTLEMENT_STATE_")
    return Answer("OK", state=state, split=money(settlement.split) if settlement.HasField("split") else None)


def bill_lines(rng: random.Random) -> list[settlement_pb2.BillLine]:
    """A few lines of every catalogue class, now and then a large in-scope one (so the fund pays)."""
    classes = [settlement_pb2.CATALOGUE_CLASS_A, settlement_pb2.CATALOGUE_CLASS_B, settlement_pb2.CATALOGUE_CLASS_C]
    lines = []
    for i in range(rng.randint(1, 4)):
        quantity, price = rng.randint(1, 5), rng.randrange(500, 60_000)
        cap = price * quantity - rng.randrange(0, 2_000) if rng.random() < 0.15 else 0
        lines.append((f"ITEM{i:03d}", rng.choice(classes), quantity, price, cap))
    if rng.random() < 0.5:
        lines.append(("SURGERY", settlement_pb2.CATALOGUE_CLASS_A, 1, rng.randrange(100_000, 1_500_000), 0))
    return [
        settlement_pb2.BillLine(
            item_code=code,
            item_name="检查",
            catalogue_class=cls,
            quantity=qty,
            unit_price_fen=price,
            amount_fen=qty * price,
            price_cap_fen=max(cap, 0),
        )
        for code, cls, qty, price, cap in lines
    ]


class Callers:
    """The concurrent callers, each with its own channel to the hub and its own dice (``seed``, its index).

    Args:
        hub: the hub's processes (their address, and their kill epoch, which tells a cut call from an answered one).
        cast: the people.
        journal: where every call goes.
        seed: the run's seed.
    """

    def __init__(self, hub: Hubs, cast: Cast, journal: Journal, seed: int) -> None:
        self.hub, self.cast, self.journal, self.seed = hub, cast, journal, seed

    async def run(self, index: int, stop: asyncio.Event) -> None:
        """Call until ``stop`` is set; the call in flight then finishes."""
        rng = random.Random(f"{self.seed}:caller:{index}")
        names, weights = list(OPERATIONS), list(OPERATIONS.values())
        async with grpc.aio.insecure_channel(self.hub.address, options=CHANNEL_OPTIONS) as channel:
            caller = _Caller(self, rng, channel, f"c{self.seed}-{index}")
            while not stop.is_set():
                await getattr(caller, rng.choices(names, weights)[0])()
                await asyncio.sleep(rng.uniform(0.05, 0.25))


class _Caller:
    """One caller's operations."""

    def __init__(self, callers: Callers, rng: random.Random, channel: grpc.aio.Channel, prefix: str) -> None:
        self.hub, self.cast, self.journal, self.rng = callers.hub, callers.cast, callers.journal, rng
        self.prefix, self.serial = prefix, 0
        self.cards = card_pb2_grpc.CardServiceStub(channel)
        self.affairs = card_affairs_pb2_grpc.CardAffairsServiceStub(channel)
        self.settlement = settlement_pb2_grpc.MedicalSettlementServiceStub(channel)
        self.venues = resident_pb2_grpc.ResidentServiceStub(channel)

    def next_id(self, kind: str) -> str:
        self.serial += 1
        return f"{self.prefix}-{self.serial:05d}-{kind}"

    async def send(
        self, method: str, request_id: str, rpc: Callable[..., Awaitable[Response]], request: Any, timeout: float
    ) -> tuple[Response | None, Answer, dict[str, str]]:
        """Make one call; an error's answer is recorded here, a success's by the operation (it knows the state)."""
        epoch, up = self.hub.epoch, self.hub.up
        try:
            return await rpc(request, timeout=timeout), Answer("OK"), {}
        except grpc.aio.AioRpcError as exc:
            reason, metadata = error_info(exc)
            cut = not reason and (not up or not self.hub.up or self.hub.epoch != epoch)
            answer = Answer(exc.code().name, reason, cut=cut, message=exc.details() or "")
            return None, self.journal.record(method, request_id, answer), metadata

    def ok(self, method: str, request_id: str = "", answer: Answer | None = None) -> Answer:
        return self.journal.record(method, request_id, answer or Answer("OK"))

    def retry(self, answer: Answer) -> bool:
        return (answer.cut or answer.code in RETRYABLE) and self.rng.random() < 0.6

    # --- reads -----------------------------------------------------------------------------------------

    async def verify(self) -> None:
        person = self.rng.choice(self.cast.verify)
        venue = common_pb2.Venue(area_code=self.rng.choice(list(VENUES.values())))
        request = card_pb2.VerifyCardRequest(card=person.credential(), venue=venue)
        if (await self.send("VerifyCard", "", self.cards.VerifyCard, request, CALL_TIMEOUT))[0] is not None:
            self.ok("VerifyCard")

    async def card_status(self) -> None:
        person = self.rng.choice(self.cast.services + self.cast.verify)
        request = card_pb2.GetCardStatusRequest(card=person.credential())
        if (await self.send("GetCardStatus", "", self.cards.GetCardStatus, request, CALL_TIMEOUT))[0] is not None:
            self.ok("GetCardStatus")

    async def pre_settle(self) -> None:
        person = self.rng.choice(self.cast.settle)
        request = settlement_pb2.PreSettleRequest(**self.bill(person))
        if (await self.send("PreSettle", "", self.settlement.PreSettle, request, CALL_TIMEOUT))[0] is not None:
            self.ok("PreSettle")

    async def resident(self) -> None:
        person = self.rng.choice(self.cast.settle + self.cast.services)
        province = person.seeded.issuing_area[:2]
        venue, kind = self.rng.choice(self.cast.agreed.get(province, [(province, ServiceKind.PARK)]))
        request = resident_pb2.AuthorizeServiceRequest(
            card=person.credential(),
            service_kind=resident_pb2.ServiceKind.Value(f"SERVICE_KIND_{kind.value}"),
            venue=common_pb2.Venue(area_code=VENUES[venue]),
        )
        response, _, _ = await self.send("AuthorizeService", "", self.venues.AuthorizeService, request, CALL_TIMEOUT)
        if response is not None:
            self.ok("AuthorizeService", "", Answer("OK", state="STAND_IN" if response.via_stand_in else ""))

    # --- writes ----------------------------------------------------------------------------------------

    async def card_service(self) -> None:
        """Report a temporary loss or cancel one (each refused when the card is not in the state it needs)."""
        person = self.rng.choice(self.cast.services)
        rid = self.next_id("card")
        request: Any
        rpc: Callable[..., Awaitable[Any]]
        if self.rng.random() < 0.5:
            method, rpc = "ReportLoss", self.affairs.ReportLoss
            request = card_affairs_pb2.ReportLossRequest(request_id=rid, card=person.credential())
        else:
            method, rpc = "CancelLossReport", self.affairs.CancelLossReport
            request = card_affairs_pb2.CancelLossReportRequest(request_id=rid, card=person.credential())
        if (await self.send(method, rid, rpc, request, CALL_TIMEOUT))[0] is not None:
            self.ok(method, rid)

    def bill(self, person: Person) -> dict[str, Any]:
        venue = self.rng.choice(list(VENUES.values()))
        visit = self.rng.choice([settlement_pb2.VISIT_TYPE_OUTPATIENT, settlement_pb2.VISIT_TYPE_INPATIENT])
        return {
            "card": person.credential(),
            "venue": common_pb2.Venue(area_code=venue, institution_id=f"H{venue}01"),
            "hospital_level": self.rng.randint(1, 3),
            "visit_type": visit,
            "later_admission": visit == settlement_pb2.VISIT_TYPE_INPATIENT and self.rng.random() < 0.3,
            "lines": bill_lines(self.rng),
            "use_personal_account": self.rng.random() < 0.7,
        }

    async def settle(self) -> None:
        person = self.rng.choice(self.cast.settle)
        rid = self.next_id("settle")
        bill = self.bill(person)
        request = settlement_pb2.SettleRequest(request_id=rid, **bill)
        assert person.seeded.insurance is not None
        ask = SettleAsk(
            rid,
            person.region,
            person.ssn,
            settlement_pb2.VisitType.Name(bill["visit_type"]).removeprefix("VISIT_TYPE_"),
            person.seeded.insurance.insured_area[:2],
            bill["venue"].area_code[:2],
        )
        self.journal.settles[rid] = ask
        for _ in range(3):
            response, answer, metadata = await self.send("Settle", rid, self.settlement.Settle, request, SETTLE_TIMEOUT)
            if response is not None:
                answer = self.ok("Settle", rid, settlement_answer(response.settlement))
                ask.settlement_id = response.settlement.settlement_id
            ask.settlement_id = ask.settlement_id or metadata.get("settlement_id", "")
            ask.answers.append(answer)
            if not self.retry(answer):
                break
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        if ask.answered_settled() and ask.settlement_id:
            self.journal.settled.append(ask)

    async def reverse(self) -> None:
        if not self.journal.settled:
            return await self.settle()
        target = self.rng.choice(self.journal.settled)
        rid = self.next_id("reverse")
        reversal = ReverseAsk(rid, target.settlement_id, target.request_id)
        self.journal.reversals.append(reversal)
        request = settlement_pb2.ReverseSettlementRequest(
            request_id=rid, settlement_id=target.settlement_id, reason="chaos: bill entered twice"
        )
        for _ in range(2):
            rpc = self.settlement.ReverseSettlement
            response, answer, _ = await self.send("ReverseSettlement", rid, rpc, request, SETTLE_TIMEOUT)
            if response is not None:
                answer = self.ok("ReverseSettlement", rid, settlement_answer(response.settlement))
            reversal.answers.append(answer)
            if not self.retry(answer):
                break
            await asyncio.sleep(self.rng.uniform(0.3, 1.5))
        return None


def dump(journal: Journal) -> str:
    """The journal's settles and reversals as JSON lines, each answer with its error's message (kept in the data
    folder for a post-mortem)."""
    lines = [
        json.dumps({"settle": ask.request_id, "answers": [a.detail() for a in ask.answers]}, ensure_ascii=False)
        for ask in journal.settles.values()
    ]
    lines += [
        json.dumps(
            {"reverse": r.request_id, "of": r.settle_request_id, "answers": [a.detail() for a in r.answers]},
            ensure_ascii=False,
        )
        for r in journal.reversals
    ]
    return "\n".join(lines) + "\n"
