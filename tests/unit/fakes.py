"""Fakes for the hub's unit tests: a wall clock, in-memory regions behind the real adapter interface, and a hub's
services assembled over them with a SQLite ledger in memory. Nothing here opens a socket.

A :class:`FakeRegion` holds the sandbox's seeded people of its region and answers every
:class:`~adapters.interface.RegionAdapter` method from memory. ``region.fail(method, error, after=False)``
makes the next call of ``method`` raise ``error`` — before acting (the region never got it) or, with
``after=True``, after acting (the answer was lost on the way back); ``region.hold(method)`` makes its calls wait
until the returned event is set (a slow region, for cancellation).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters import domain
from adapters.errors import (
    ApplicationNotFound,
    CardNotFound,
    HolderMismatch,
    HolderNotFound,
    NotInsured,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from gateway.config import HubConfig, load_hub_config
from gateway.ledger import Ledger, OutboxItem, SqliteLedger
from gateway.ledger.postgres import PostgresLedger
from gateway.metrics import Metrics
from gateway.services import Services, assemble
from gateway.services.call import Call
from regions import ecard
from regions.agreements import load_agreements
from regions.config import load_regions
from regions.provisioning import provision
from regions.seed import SeededPerson, generate

REGIONS = {
    "yangtze-delta": ("31", "32", "33", "34"),
    "sichuan-chongqing": ("50", "51"),
    "beijing-tianjin-hebei": ("11", "12", "13"),
}
NOW = 1_780_000_000.0  # 2026-05-28, Beijing time


class FakeClock:
    """Wall time that moves only when a test moves it."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class _Fault:
    error: BaseException
    after: bool


@dataclass
class RegionBook:
    """A settlement as the fake region booked it."""

    bill: domain.Bill
    settlement: domain.RegionSettlement
    state: domain.OutcomeState = domain.OutcomeState.SETTLED
    reversal_id: str = ""


def split_of(bill: domain.Bill) -> domain.Split:
    """A simple balanced split: everything in scope, the fund pays 70 %, the rest is cash."""
    total = sum(line.amount_fen for line in bill.lines)
    fund = total * 7 // 10
    return domain.Split(total, 0, 0, 0, total, 0, fund, 0, total - fund)


@functools.cache
def _people(region_id: str) -> tuple[SeededPerson, ...]:
    """A region's seeded people, made once per test run (they are frozen, and the same every time)."""
    return tuple(generate(region_id, REGIONS[region_id]))


class FakeRegion(RegionAdapter):
    """One region's back-end in memory (module docstring)."""

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        self.people = list(_people(settings.region_id))
        self.cards = {p.card_number: p for p in self.people if p.status is not None}
        self.statuses = {number: p.status for number, p in self.cards.items()}
        self.books: dict[str, RegionBook] = {}
        self.corrected: set[str] = set()
        self.advices: list[domain.StandInAdvice] = []
        self.applications: dict[str, domain.Application] = {}
        self.calls: list[str] = []
        self.broken_split = False
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._holds: dict[str, asyncio.Event] = {}
        self._arrivals: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    # --- scripting ---------------------------------------------------------------------------------------------

    def fail(self, method: str, error: BaseException, *, after: bool = False, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error``, before acting or (``after``) after acting."""
        self._faults[method].extend(_Fault(error, after) for _ in range(times))

    def clear_faults(self) -> None:
        """Forget every scripted failure."""
        self._faults.clear()

    def hold(self, method: str) -> asyncio.Event:
        """Calls of ``method`` wait, before acting, until the returned event is set."""
        return self._holds.setdefault(method, asyncio.Event())

    async def reached(self, method: str) -> None:
        """Return once a call of ``method`` has reached the region."""
        await self._arrivals[method].wait()

    def person(self, **wanted: Any) -> SeededPerson:
        """The first seeded person whose attributes equal ``wanted`` (``insured=True`` for one with insurance)."""
        insured = wanted.pop("insured", None)
        for p in self.people:
            if insured is not None and (p.insurance is not None) != insured:
                continue
            if all(getattr(p, k) == v for k, v in wanted.items()):
                return p
        raise LookupError(f"no person with {wanted} in {self.region_id}")

    async def _act(self, method: str, act: Any) -> Any:
        self.calls.append(method)
        self._arrivals[method].set()
        if method in self._holds:
            await self._holds[method].wait()
        fault = self._faults[method].popleft() if self._faults[method] else None
        if fault is not None and not fault.after:
            raise fault.error
        result = act()
        if fault is not None:
            raise fault.error
        return result

    def _record(self, p: SeededPerson) -> domain.CardRecord:
        status = self.statuses[p.card_number]
        assert status is not None
        card = domain.Card(
            p.card_number, p.card_identification_code, p.issuing_area, status, p.generation, p.valid_until
        )
        holder = domain.Holder(p.social_security_number, p.name, p.gender, p.birth_date)
        return domain.CardRecord(holder, card, (p.insurance,) if p.insurance else ())

    def _holder(self, credential: domain.CardCredential) -> SeededPerson:
        p = self.cards.get(credential.card_number)
        if p is None:
            raise CardNotFound(f"no card {credential.card_number}")
        if p.social_security_number != credential.social_security_number:
            raise HolderMismatch("the card belongs to someone else")
        return p

    # --- the interface -----------------------------------------------------------------------------------------

    async def get_card(self, credential: domain.CardCredential, *, timeout: float) -> domain.CardRecord:
        return await self._act("get_card", lambda: self._record(self._holder(credential)))

    async def knows_holder(self, social_security_number: str, *, timeout: float) -> bool:
        return await self._act(
            "knows_holder", lambda: any(p.social_security_number == social_security_number for p in self.people)
        )

    async def apply_card(self, request: domain.ApplyCard, *, timeout: float) -> domain.Application:
        def apply() -> domain.Application:
            if not any(p.social_security_number == request.social_security_number for p in self.people):
                raise HolderNotFound("no such person")
            app = domain.Application(
                f"app-{request.request_id}",
                domain.Stage.SUBMITTED,
                (domain.StageEvent(domain.Stage.SUBMITTED, "2026-05-28T10:00:00+08:00"),),
            )
            return self.applications.setdefault(request.social_security_number, app)

        return await self._act("apply_card", apply)

    async def change_card(self, request: domain.ChangeCard, *, timeout: float) -> domain.Card:
        to = {
            domain.CardAction.ENABLE: domain.CardStatus.NORMAL,
            domain.CardAction.REPORT_LOSS: domain.CardStatus.TEMPORARILY_LOST,
            domain.CardAction.CANCEL_LOSS: domain.CardStatus.NORMAL,
        }[request.action]

        def change() -> domain.Card:
            p = self._holder(request.credential)
            self.statuses[p.card_number] = to
            return self._record(p).card

        return await self._act("change_card", change)

    async def replace_card(self, request: domain.ReplaceCard, *, timeout: float) -> domain.Application:
        def replace_() -> domain.Application:
            p = self._holder(request.credential)
            self.statuses[p.card_number] = domain.CardStatus.CANCELLED
            app = domain.Application(f"app-{request.request_id}", domain.Stage.SUBMITTED, ())
            return self.applications.setdefault(p.social_security_number, app)

        return await self._act("replace_card", replace_)

    async def get_application(
        self, social_security_number: str, holder_name: str, *, timeout: float
    ) -> domain.Application:
        def find() -> domain.Application:
            app = self.applications.get(social_security_number)
            if app is None:
                raise ApplicationNotFound("no application")
            return app

        return await self._act("get_application", find)

    async def file_remote_care(self, request: domain.FileRemoteCare, *, timeout: float) -> domain.Filing:
        def file() -> domain.Filing:
            p = self._holder(request.credential)
            if p.insurance is None:
                raise NotInsured("not insured")
            return domain.Filing(
                f"fil-{request.request_id}",
                request.treatment_area,
                request.filing_type,
                request.valid_from,
                request.valid_until,
            )

        return await self._act("file_remote_care", file)

    async def pre_settle(self, bill: domain.Bill, *, timeout: float) -> domain.Split:
        return await self._act("pre_settle", lambda: split_of(bill))

    async def settle(self, bill: domain.Bill, *, timeout: float) -> domain.RegionSettlement:
        def settle() -> domain.RegionSettlement:
            if bill.request_id in self.corrected:
                raise SettlementCorrected("corrected before")
            booked = self.books.get(bill.request_id)
            if booked is None:
                split = split_of(bill)
                if self.broken_split:
                    split = replace(split, cash_pay_fen=split.cash_pay_fen + 1)
                answer = domain.RegionSettlement(bill.request_id, f"rs-{len(self.books) + 1}", split)
                booked = self.books[bill.request_id] = RegionBook(bill, answer)
            return booked.settlement

        return await self._act("settle", settle)

    async def settlement_outcome(self, request_id: str, *, timeout: float) -> domain.SettlementOutcome:
        def outcome() -> domain.SettlementOutcome:
            booked = self.books.get(request_id)
            if booked is None:
                state = domain.OutcomeState.CORRECTED if request_id in self.corrected else domain.OutcomeState.NOT_FOUND
                return domain.SettlementOutcome(state)
            return domain.SettlementOutcome(booked.state, booked.settlement)

        return await self._act("settlement_outcome", outcome)

    async def correct_settlement(self, request_id: str, *, timeout: float) -> None:
        def correct() -> None:
            self.corrected.add(request_id)
            booked = self.books.get(request_id)
            if booked is not None and booked.state is domain.OutcomeState.SETTLED:
                booked.state = domain.OutcomeState.CORRECTED

        await self._act("correct_settlement", correct)

    async def reverse_settlement(self, request: domain.Reversal, *, timeout: float) -> None:
        def reverse() -> None:
            booked = self.books.get(request.settlement_request_id)
            if booked is None:
                raise SettlementNotFound("no such settlement")
            if booked.reversal_id == request.request_id:
                return  # the same reversal again
            if booked.state is not domain.OutcomeState.SETTLED:
                raise SettlementNotSettled(request.settlement_request_id, booked.state.value)
            booked.state, booked.reversal_id = domain.OutcomeState.REVERSED, request.request_id

        await self._act("reverse_settlement", reverse)

    async def send_stand_in_advice(self, advice: domain.StandInAdvice, *, timeout: float) -> None:
        await self._act("send_stand_in_advice", lambda: self.advices.append(advice))

    async def check_health(self, *, timeout: float) -> None:
        await self._act("check_health", lambda: None)

    def settled_fund(self) -> int:
        """The fund payments the region holds as settled."""
        return sum(
            b.settlement.split.fund_pay_fen for b in self.books.values() if b.state is domain.OutcomeState.SETTLED
        )


@dataclass
class Harness:
    """A hub's services over fake regions, a SQLite ledger in memory and a fake clock."""

    services: Services
    regions: dict[str, FakeRegion]
    ledger: Ledger
    clock: FakeClock
    metrics: Metrics
    config: HubConfig
    calls: list[Call] = field(default_factory=list)

    def call(self, seconds: float = 5.0) -> Call:
        """A call with ``seconds`` to go, as the API layer makes one."""
        made = Call.within(seconds, method="/test")
        self.calls.append(made)
        return made

    def tune(self, region_id: str, **settings: float) -> None:
        """Change a region's resilience settings (its guard and breaker read them per call)."""
        guard = self.services.federation.regions[region_id].guard
        guard.settings = dataclasses.replace(guard.settings, **settings)
        guard.breaker.settings = guard.settings

    async def owed(self) -> list[OutboxItem]:
        """The outbox items not yet delivered (read only: nothing is claimed)."""
        rows = await self.ledger.worker.run(
            lambda db: db.execute(
                "SELECT kind, item_key, region, payload, created_at, attempts FROM outbox "
                "WHERE delivered_at IS NULL ORDER BY created_at"
            ).fetchall(),
            write=False,
        )
        return [OutboxItem(*row) for row in rows]

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.metrics.registry.get_sample_value(name, labels or {}) or 0.0

    def region_of(self, p: SeededPerson) -> FakeRegion:
        return next(r for r in self.regions.values() if p.card_number in r.cards)

    async def close(self) -> None:
        await self.ledger.close()


def fake_registry(regions: dict[str, FakeRegion]) -> AdapterRegistry:
    """A registry whose adapter classes hand out the given fake regions (one per region id)."""
    registry = AdapterRegistry()
    for region_id in REGIONS:

        class Adapter(FakeRegion):
            def __new__(cls, settings: AdapterSettings) -> Any:  # the test's instance, not a new one
                return regions[settings.region_id]

            def __init__(self, settings: AdapterSettings) -> None:  # already built
                pass

        registry.register(region_id, Adapter)
    return registry


async def harness(tmp_path: Path, postgres: str = "", **config_changes: Any) -> Harness:
    """Every service of a hub over fake regions, with the ledger open and nothing started in the background: a
    SQLite ledger in memory, or the PostgreSQL store at ``postgres``."""
    provision(tmp_path, load_regions(), ecard_key=ecard.SANDBOX_KEY)  # what the configuration's references name
    config = load_hub_config(data_dir=tmp_path)
    config = dataclasses.replace(config, **config_changes)
    regions = {r.region_id: FakeRegion(AdapterSettings(r.region_id, "fake://", {})) for r in config.regions}
    clock, metrics = FakeClock(), Metrics()
    ledger: Ledger = PostgresLedger(postgres, clock=clock) if postgres else SqliteLedger(Path(":memory:"), clock=clock)
    await ledger.open()
    agreements = load_agreements(config.agreements_file, config.regions)
    services = assemble(config, ledger, fake_registry(regions), metrics, lambda: agreements, clock)
    return Harness(services, regions, ledger, clock, metrics, config)


def credential(p: SeededPerson) -> domain.CardCredential:
    return domain.CardCredential(
        p.social_security_number, p.card_number, p.card_identification_code, p.issuing_area, p.name
    )


def bill(p: SeededPerson, request_id: str, treatment_area: str = "310104", amount: int = 100_000) -> domain.Bill:
    line = domain.BillLine("110900001", "床位费", domain.CatalogueClass.A, 1, amount, amount)
    return domain.Bill(
        request_id=request_id,
        credential=credential(p),
        insured_area="",
        treatment_area=treatment_area,
        institution_id="H310104001",
        hospital_level=3,
        visit_type=domain.VisitType.INPATIENT,
        later_admission=False,
        lines=(line,),
        use_personal_account=False,
    )
