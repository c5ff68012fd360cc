"""The region's sandbox as a real server on loopback port 0, and adapters that speak to it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from yikatong_ggh import GuangdongGuangxiHainanAdapter, serve

from adapters.domain import (
    Bill,
    BillLine,
    CardCredential,
    CardStatus,
    CatalogueClass,
    InsuranceType,
    VisitType,
)
from adapters.interface import AdapterSettings
from adapters.tls import ClientTls
from regions.backend import Backend
from regions.cardsystem import CardRow
from regions.config import RegionConfig, load_region
from regions.provisioning import provision
from regions.sandbox import HttpServer, build_backend
from regions.secrets import resolve_region

REGION = "guangdong-guangxi-hainan"
REGION_FILE = Path(__file__).resolve().parents[1] / "config" / f"{REGION}.toml"
T = 5.0  # seconds each adapter call may take

MakeAdapter = Callable[..., Awaitable[GuangdongGuangxiHainanAdapter]]


def installed_entry_point(group: str) -> EntryPoint:
    """The package's entry point in ``group``; fails, saying what to do, when the package is not installed."""
    found = list(entry_points(group=group, name=REGION))
    assert len(found) == 1, f"no {group} entry point {REGION!r}: install the package first (pip install -e .)"
    return found[0]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with what ``yikatong up`` would generate for the region: its sandbox's certificate, the
    hub's client certificate and the channel key, which the region file references."""
    folder = tmp_path_factory.mktemp("var")
    provision(folder, [load_region(REGION_FILE)])
    return folder


@pytest.fixture(scope="session")
def config(data_dir: Path) -> RegionConfig:
    """The region file, its references resolved: the sandbox serves HTTPS and the adapter has the keys."""
    return resolve_region(load_region(REGION_FILE), data_dir)


@pytest.fixture(scope="session")
def https(config: RegionConfig) -> ClientTls:
    """TLS as the hub speaks it to the region: the CA it trusts and its client certificate."""
    return ClientTls.from_options(config.options, REGION)


@pytest.fixture
def backend(config: RegionConfig) -> Backend:
    return build_backend(config)


@pytest.fixture
async def server(backend: Backend, config: RegionConfig) -> AsyncIterator[HttpServer]:
    running = await serve(backend, config, "127.0.0.1", 0)
    yield running
    await running.stop()


@pytest.fixture
async def make_adapter(server: HttpServer, config: RegionConfig) -> AsyncIterator[MakeAdapter]:
    """Build and start adapters (by default with the region file's settings); all are closed after the test."""
    made: list[GuangdongGuangxiHainanAdapter] = []

    async def make(endpoint: str = "", api_key: str = "") -> GuangdongGuangxiHainanAdapter:
        options = {**config.options, **({"api_key": api_key} if api_key else {})}
        made.append(GuangdongGuangxiHainanAdapter(AdapterSettings(REGION, endpoint or server.address, options)))
        await made[-1].start()
        return made[-1]

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
async def adapter(make_adapter: MakeAdapter) -> GuangdongGuangxiHainanAdapter:
    return await make_adapter()


def card_row(
    backend: Backend, status: CardStatus, *, insurance: InsuranceType | None = None, province: str = ""
) -> CardRow:
    """A seeded card of that status (its holder insured as asked, issued in the province when one is given)."""
    return next(
        row
        for row in backend.cards.cards.values()
        if row.card.status is status
        and row.card.issuing_area.startswith(province)
        and (insurance is None or _insurance_type(backend, row) is insurance)
    )


def _insurance_type(backend: Backend, row: CardRow) -> InsuranceType | None:
    insurance = backend.cards.people[row.ssn].insurance
    return insurance.insurance_type if insurance else None


def credential(backend: Backend, row: CardRow) -> CardCredential:
    name = backend.cards.people[row.ssn].holder.name
    card = row.card
    return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)


LINES = (
    BillLine("250101001", "住院诊查费", CatalogueClass.A, 2, 45_000, 90_000),
    BillLine("XB01BAC", "乙类药品", CatalogueClass.B, 3, 12_345, 37_035),
    BillLine("ZF0001", "自费材料", CatalogueClass.C, 1, 8_800, 8_800),
    BillLine("330100001", "限价手术", CatalogueClass.A, 1, 300_000, 300_000, price_cap_fen=250_000),
)


def bill(
    cred: CardCredential,
    insured_area: str,
    *,
    treatment_area: str = "310104",
    request_id: str = "",
    visit: VisitType = VisitType.INPATIENT,
    lines: tuple[BillLine, ...] = LINES,
) -> Bill:
    """A level-3 hospital's bill at ``treatment_area`` (a Shanghai district by default), paid from the account."""
    return Bill(
        request_id=request_id or str(uuid.uuid4()),
        credential=cred,
        insured_area=insured_area,
        treatment_area=treatment_area,
        institution_id=f"H{treatment_area}01",
        hospital_level=3,
        visit_type=visit,
        later_admission=False,
        lines=lines,
        use_personal_account=True,
    )
