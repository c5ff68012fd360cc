"""The regions' own books on each sandbox's admin API (regions/books.py): what operators and the chaos run read to
reconcile the hub against a region. Settlements reach the sandbox over its own wire, through its adapter."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from adapters.domain import Bill, BillLine, CatalogueClass, InsuranceType, Reversal, VisitType
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import AdapterRegistry
from gateway.masking import mask_text
from regions.ecard import credential_of
from regions.sandbox import RunningSandbox
from regions.seed import SeededPerson, people_of
from tests.conftest import REGION_IDS, StartSandbox

T = 5.0
LINES = (
    BillLine("110900001", "床位费", CatalogueClass.A, 4, 9_000, 36_000),
    BillLine("XC01AAT0", "头孢曲松", CatalogueClass.B, 10, 4_850, 48_500),
    BillLine("331602003", "腹腔镜胆囊切除术", CatalogueClass.A, 1, 600_000, 600_000),
    BillLine("ZC000123", "进口止血材料", CatalogueClass.C, 1, 86_000, 86_000),
)


@pytest.fixture
async def sandbox(start_region: StartSandbox) -> RunningSandbox:
    return await start_region("sichuan-chongqing")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=T)) as session:
        yield session


async def adapter_for(sandbox: RunningSandbox) -> RegionAdapter:
    config = sandbox.config
    adapter = AdapterRegistry.from_entry_points().get(config.adapter)(
        AdapterSettings(config.region_id, sandbox.address, dict(config.options))
    )
    await adapter.start()
    return adapter


def employee(sandbox: RunningSandbox, skip: int = 0) -> SeededPerson:
    """An employee-insured holder of a usable card, with room under the inpatient cap and money in the account."""
    return [
        p
        for p in people_of(sandbox.config)
        if p.status is not None
        and p.status.name == "NORMAL"
        and p.insurance is not None
        and p.insurance.insurance_type is InsuranceType.EMPLOYEE
        and p.account_balance_fen > 50_000
        and p.accumulators["INPATIENT"]["fund_paid_fen"] < 100_000
    ][skip]


def bill(person: SeededPerson, request_id: str) -> Bill:
    assert person.insurance is not None
    return Bill(
        request_id,
        credential_of(person),
        person.insurance.insured_area,
        "310104",
        "H31010401",
        3,
        VisitType.INPATIENT,
        False,
        LINES,
        True,
    )


async def settlements(http: aiohttp.ClientSession, sandbox: RunningSandbox) -> tuple[str, list[dict[str, Any]]]:
    async with http.get(f"{sandbox.admin_url}/admin/settlements") as response:
        assert response.status == 200
        assert response.content_type == "application/x-ndjson"
        body = await response.text()
    return body, [json.loads(line) for line in body.splitlines()]


async def books(http: aiohttp.ClientSession, sandbox: RunningSandbox, ssn: str) -> tuple[int, dict[str, Any]]:
    async with http.get(f"{sandbox.admin_url}/admin/accumulators", params={"social_security_number": ssn}) as r:
        found: dict[str, Any] = await r.json()
        return r.status, found


@pytest.mark.parametrize("region", REGION_IDS)
async def test_settled_reversed_and_corrected_bills_are_listed_as_the_region_holds_them(
    start_region: StartSandbox, http: aiohttp.ClientSession, region: str
) -> None:
    sandbox = await start_region(region)
    settled_person, reversed_person = employee(sandbox), employee(sandbox, skip=1)
    adapter = await adapter_for(sandbox)
    try:
        kept = await adapter.settle(bill(settled_person, "keep-1"), timeout=T)
        await adapter.settle(bill(reversed_person, "undo-1"), timeout=T)
        await adapter.reverse_settlement(
            Reversal("rev-1", "undo-1", reversed_person.social_security_number, "wrong bill"), timeout=T
        )
        await adapter.correct_settlement("never-sent", timeout=T)
    finally:
        await adapter.close()

    body, rows = await settlements(http, sandbox)

    by_id = {row["request_id"]: row for row in rows}
    assert set(by_id) == {"keep-1", "undo-1", "never-sent"}
    assert by_id["keep-1"] == {
        "region_settlement_id": kept.region_settlement_id,
        "request_id": "keep-1",
        "state": "SETTLED",
        "fund_pay_fen": kept.split.fund_pay_fen,
        "account_pay_fen": kept.split.account_pay_fen,
        "cash_pay_fen": kept.split.cash_pay_fen,
        "deductible_fen": kept.split.deductible_fen,
        "visit_type": "INPATIENT",
        "year": sandbox.medical.today().year,
        "insured_area": settled_person.insurance.insured_area if settled_person.insurance else "",
        "social_security_number": mask_text(settled_person.social_security_number),
    }
    assert kept.split.fund_pay_fen > 0 and kept.split.account_pay_fen > 0
    assert by_id["undo-1"]["state"] == "REVERSED"
    assert by_id["never-sent"] | {"year": 0} == {
        "region_settlement_id": "",
        "request_id": "never-sent",
        "state": "CORRECTED",
        "fund_pay_fen": 0,
        "account_pay_fen": 0,
        "cash_pay_fen": 0,
        "deductible_fen": 0,
        "visit_type": "",
        "year": 0,
        "insured_area": "",
        "social_security_number": "",
    }
    for person in (settled_person, reversed_person):
        assert person.social_security_number not in body


async def test_accumulators_start_at_the_seed_move_with_a_settlement_and_return_on_its_reversal(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    person = employee(sandbox, skip=2)
    ssn = person.social_security_number
    seed = {"accumulators": person.accumulators, "account_balance_fen": person.account_balance_fen}
    adapter = await adapter_for(sandbox)
    try:
        assert await books(http, sandbox, ssn) == (200, seed)  # the shape `yikatong sandbox cards` prints

        split = (await adapter.settle(bill(person, "acc-1"), timeout=T)).split
        moved = await books(http, sandbox, ssn.lower())  # a lower-case x is read as X, as the hub reads it
        await adapter.reverse_settlement(Reversal("acc-rev", "acc-1", ssn, "test"), timeout=T)
        restored = await books(http, sandbox, ssn)
    finally:
        await adapter.close()

    inpatient = person.accumulators["INPATIENT"]
    assert moved == (
        200,
        {
            "accumulators": {
                "OUTPATIENT": person.accumulators["OUTPATIENT"],
                "INPATIENT": {
                    "deductible_used_fen": inpatient["deductible_used_fen"] + split.deductible_fen,
                    "fund_paid_fen": inpatient["fund_paid_fen"] + split.fund_pay_fen,
                },
            },
            "account_balance_fen": person.account_balance_fen - split.account_pay_fen,
        },
    )
    assert restored == (200, seed)


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ({}, 400, "social_security_number is required"),
        ({"social_security_number": "51010119900101123"}, 400, "social_security_number must be 17 digits"),
        ({"social_security_number": "510101199001011230"}, 400, "social_security_number check character"),
        ({"social_security_number": "110101199001011237"}, 404, "social_security_number 1101**********1237 is not"),
    ],
)
async def test_a_bad_or_unknown_number_is_refused_naming_the_parameter(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, query: dict[str, str], status: int, words: str
) -> None:
    async with http.get(f"{sandbox.admin_url}/admin/accumulators", params=query) as response:
        assert response.status == status
        answer = await response.json()
    assert answer["parameter"] == "social_security_number"
    assert answer["error"].startswith(words)
