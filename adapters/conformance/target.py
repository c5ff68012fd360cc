"""What a conformance rule runs against: one adapter, started against its region's sandbox, and sample people.

Every rule gets a fresh :class:`Target` (:func:`open_target`): a data directory of its own with what
``yikatong up`` would generate for the region (:func:`regions.provisioning.provision`: the sandbox's TLS
certificate, the hub's client certificate, the secrets the region file references), a sandbox started from the
region's configuration resolved against it on free loopback ports (TLS when the region file says so, as the
shipped ones do), the adapter under test built for it and started, and
:class:`Samples` — people picked from the region's seeded population (:func:`regions.seed.people_of`),
which is exactly what the sandbox holds when it starts. Checks call the adapter, then read the sandbox's
own systems (``sandbox.system``, ``sandbox.medical``) to see what the region really did.
"""

from __future__ import annotations

import contextlib
import re
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from adapters.conformance.rule import Unmet, describe
from adapters.domain import (
    Bill,
    BillLine,
    Card,
    CardCredential,
    CardStatus,
    CatalogueClass,
    InsuranceType,
    VisitType,
)
from adapters.identifiers import card_number_check, ssn_check
from adapters.interface import AdapterSettings, RegionAdapter
from regions.config import RegionConfig, load_region, load_regions
from regions.policy import Accumulator
from regions.provisioning import Links, provision
from regions.sandbox import RunningSandbox, start_sandbox
from regions.secrets import resolve_region as resolve_references
from regions.seed import SeededPerson, people_of

TIMEOUT = 5.0  # seconds an adapter call may take when nothing is wrong on purpose

# A bill with a line of every kind the split treats differently: class A, B (self-paid share), C, and an
# A line above its price cap. Total 4,358.35 yuan.
LINES = (
    BillLine("A0001", "血常规", CatalogueClass.A, 2, 45_000, 90_000),
    BillLine("B0001", "头孢类抗菌药", CatalogueClass.B, 3, 12_345, 37_035),
    BillLine("C0001", "单人病房差价", CatalogueClass.C, 1, 8_800, 8_800),
    BillLine("A0002", "磁共振", CatalogueClass.A, 1, 300_000, 300_000, price_cap_fen=250_000),
    BillLine("X0001", "目录外耗材", CatalogueClass.OUT_OF_CATALOGUE, 1, 1_500, 1_500),
)
# Treatment places, one of which lies outside any region under test (a cross-province visit).
TREATMENT_AREAS = ("310104", "510100", "110105", "440100")


@dataclass(frozen=True)
class Samples:
    """People of the region's seed, picked for the rules; the sandbox holds them as seeded at its start.

    Attributes:
        by_status: a card holder of each of the six card statuses.
        employee: a NORMAL card, employee insurance, money in the personal account.
        resident: a NORMAL card, resident insurance.
        uninsured: a NORMAL card, no medical insurance.
        moved: a NORMAL card whose holder's SSN area differs from the card's issuing area.
        cardless: a person with no card yet, whose application will not fail in production.
        unknown_ssn: a well-formed SSN of the region's provinces that the region does not know.
        unknown_card_number: a well-formed card number the region did not issue.
        treatment_area: a treatment place in a province the region does not serve.
    """

    by_status: Mapping[CardStatus, SeededPerson]
    employee: SeededPerson
    resident: SeededPerson
    uninsured: SeededPerson
    moved: SeededPerson
    cardless: SeededPerson
    unknown_ssn: str
    unknown_card_number: str
    treatment_area: str


def _first(people: Iterable[SeededPerson], what: str, wanted: Callable[[SeededPerson], bool]) -> SeededPerson:
    for person in people:
        if wanted(person):
            return person
    raise Unmet(f"the region's seeded people to include {what}", "none")


def _has_status(status: CardStatus) -> Callable[[SeededPerson], bool]:
    return lambda person: person.status is status


def pick_samples(config: RegionConfig) -> Samples:
    """The rules' sample people from the region's seed (raises :class:`Unmet` when one kind is missing)."""
    people = people_of(config)
    normal = [p for p in people if p.status is CardStatus.NORMAL]
    known_ssns = {p.social_security_number for p in people}
    known_cards = {p.card_number for p in people}

    def insured(kind: InsuranceType) -> SeededPerson:
        return _first(
            normal,
            f"a NORMAL card with {kind.name} insurance",
            lambda p: (
                p.insurance is not None
                and p.insurance.insurance_type is kind
                and (p.account_balance_fen > 0 or kind is InsuranceType.RESIDENT)
            ),
        )

    return Samples(
        by_status={s: _first(people, f"a {s.name} card", _has_status(s)) for s in CardStatus},
        employee=insured(InsuranceType.EMPLOYEE),
        resident=insured(InsuranceType.RESIDENT),
        uninsured=_first(normal, "a NORMAL card with no insurance", lambda p: p.insurance is None),
        moved=_first(
            normal,
            "a NORMAL card of a holder born elsewhere",
            lambda p: p.social_security_number[:6] != p.issuing_area,
        ),
        cardless=_first(people, "a person with no card", lambda p: p.status is None and not p.fails_production),
        unknown_ssn=_unknown_ssn(config.provinces[0], known_ssns),
        unknown_card_number=_unknown_card_number(known_cards),
        treatment_area=next(a for a in TREATMENT_AREAS if a[:2] not in config.provinces),
    )


def _unknown_ssn(province: str, known: set[str]) -> str:
    for sequence in range(1000):
        first17 = f"{province}0101" + f"19900101{sequence:03d}"
        ssn = first17 + ssn_check(first17)
        if ssn not in known:
            return ssn
    raise Unmet("a social security number the region does not know", "every candidate known")


def _unknown_card_number(known: set[str]) -> str:
    for serial in range(1, 1000):
        first8 = f"X{serial:07d}"
        number = first8 + card_number_check(first8)
        if number not in known:
            return number
    raise Unmet("a card number the region did not issue", "every candidate issued")


@dataclass
class Target:
    """An adapter under test, started against a running sandbox of its region.

    Attributes:
        adapter_class: the adapter class under test.
        config: the region's configuration.
        sandbox: the region's sandbox, serving on free loopback ports.
        adapter: an instance of ``adapter_class``, started, pointed at the sandbox.
        samples: people to test with.
        data_dir: the rule's data directory, which ``config``'s references were resolved against.
        timeout: seconds an adapter call may take when nothing is wrong on purpose.
    """

    adapter_class: type[RegionAdapter]
    config: RegionConfig
    sandbox: RunningSandbox
    adapter: RegionAdapter
    samples: Samples
    data_dir: Path
    timeout: float = TIMEOUT

    @property
    def links(self) -> Links:
        """The TLS files of the link to the sandbox: its CA, the hub's client certificate."""
        return Links(self.data_dir)

    @property
    def region_id(self) -> str:
        """The id of the region under test."""
        return self.config.region_id

    def settings(self, endpoint: str) -> AdapterSettings:
        """The settings the hub would give the adapter for ``endpoint``."""
        return AdapterSettings(self.config.region_id, endpoint, dict(self.config.options))

    def closed_endpoint(self) -> str:
        """The sandbox's endpoint with its port changed to one nobody listens on."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return re.sub(r":\d+(?=/|$)", f":{port}", self.sandbox.address, count=1)

    def credential(self, person: SeededPerson) -> CardCredential:
        """The full credential of the person's seeded card."""
        return CardCredential(
            person.social_security_number,
            person.card_number,
            person.card_identification_code,
            person.issuing_area,
            person.name,
        )

    def bill(self, person: SeededPerson, request_id: str, **changes: object) -> Bill:
        """An inpatient bill of :data:`LINES` for an insured person, treated outside the region."""
        assert person.insurance is not None, "bills are for insured people"
        bill = Bill(
            request_id=request_id,
            credential=self.credential(person),
            insured_area=person.insurance.insured_area,
            treatment_area=self.samples.treatment_area,
            institution_id=f"H{self.samples.treatment_area}01",
            hospital_level=3,
            visit_type=VisitType.INPATIENT,
            later_admission=False,
            lines=LINES,
            use_personal_account=True,
        )
        return replace(bill, **changes)  # type: ignore[arg-type]

    def money(self, person: SeededPerson, visit_type: VisitType = VisitType.INPATIENT) -> tuple[Accumulator, int]:
        """The person's accumulator this year and account balance, as the region's system holds them."""
        medical = self.sandbox.medical
        ssn = person.social_security_number
        return medical.accumulator(ssn, visit_type), medical.insured[ssn].account_balance_fen

    def status_changes(self) -> list[Card]:
        """A list that collects every card status change the region makes from now on."""
        changes: list[Card] = []
        self.sandbox.system.listeners.append(lambda card, _ssn: changes.append(card))
        return changes


def resolve_region(region: str | Path | RegionConfig) -> RegionConfig:
    """A region's configuration from its id (configured regions, ``$YIKATONG_REGIONS_DIR``), file or object."""
    if isinstance(region, RegionConfig):
        return region
    if isinstance(region, Path) or region.endswith(".toml"):
        return load_region(Path(region))
    configs = {c.region_id: c for c in load_regions()}
    if region not in configs:
        raise LookupError(f"no configured region {region!r} (configured: {', '.join(sorted(configs)) or 'none'})")
    return configs[region]


@contextlib.asynccontextmanager
async def open_target(adapter_class: type[RegionAdapter], config: RegionConfig) -> AsyncIterator[Target]:
    """A fresh data directory, sandbox of the region and started adapter for it; all removed on exit.

    Raises:
        Unmet: the samples, the sandbox or the adapter could not be set up (reported as the rule failing).
    """
    samples = pick_samples(config)
    with tempfile.TemporaryDirectory(prefix="yikatong-conformance-") as folder:
        data_dir = Path(folder)
        try:
            provision(data_dir, [config])
            config = resolve_references(config, data_dir)
        except Exception as exc:
            raise Unmet(f"the {config.region_id} region file's references to resolve", describe(exc)) from exc
        async with _started(adapter_class, config, samples, data_dir) as target:
            yield target


@contextlib.asynccontextmanager
async def _started(
    adapter_class: type[RegionAdapter], config: RegionConfig, samples: Samples, data_dir: Path
) -> AsyncIterator[Target]:
    try:
        sandbox = await start_sandbox(config, port=0, admin_port=0)
    except Exception as exc:
        raise Unmet(f"the {config.region_id} sandbox to start", describe(exc)) from exc
    try:
        try:
            adapter = adapter_class(AdapterSettings(config.region_id, sandbox.address, dict(config.options)))
            await adapter.start()
        except Exception as exc:
            raise Unmet(f"{adapter_class.__name__} to start", describe(exc)) from exc
        try:
            yield Target(adapter_class, config, sandbox, adapter, samples, data_dir)
        finally:
            with contextlib.suppress(Exception):  # a failing close must not hide what the rule found
                await adapter.close()
    finally:
        sandbox.faults.update({"clear": True})
        await sandbox.stop()
