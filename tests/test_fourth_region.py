"""A fourth region added exactly as a partner adds one (issue 6).

The example package ``examples/guangdong-guangxi-hainan`` is installed beside the project (not into it), its region
folder is listed in ``YIKATONG_REGIONS_DIR``, and ``yikatong up`` federates it with the three built-in regions
through one hub, with no change to ``gateway/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.domain import BillLine, CardStatus, CatalogueClass, InsuranceType, VisitType
from regions.config import RegionConfig, load_region, load_regions
from regions.policy import POLICY_FILE, Accumulator, FilingCover, compute_split, load_policies
from regions.seed import SeededPerson, people_of
from tests.conftest import YIKATONG
from yikatong.v1 import (
    card_pb2,
    card_pb2_grpc,
    clearing_pb2,
    clearing_pb2_grpc,
    common_pb2,
    federation_pb2,
    federation_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "guangdong-guangxi-hainan"
REGION = "guangdong-guangxi-hainan"
SHANGHAI, CHENGDU, BEIJING, GUANGZHOU = "310104", "510100", "110105", "440106"  # venues: 徐汇, 成都, 朝阳, 天河
T = 10.0  # seconds each call to the hub may take

LINES = (
    BillLine("250101001", "住院诊查费", CatalogueClass.A, 2, 45_000, 90_000),
    BillLine("XB01BAC", "乙类药品", CatalogueClass.B, 3, 12_345, 37_035),
    BillLine("ZF0001", "自费材料", CatalogueClass.C, 1, 8_800, 8_800),
    BillLine("330100001", "限价手术", CatalogueClass.A, 1, 300_000, 300_000, price_cap_fen=250_000),
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed, with its entry points, into a folder of its own (``.venv`` is untouched).

    It is built from a copy, so that the build leaves nothing in the source tree.
    """
    work = tmp_path_factory.mktemp("ggh")
    source, target = work / "src", work / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run([*command, "--quiet", "--target", str(target), str(source)], check=True, timeout=120, env=env)
    return target


def partner_env(site: Path) -> dict[str, str]:
    """The environment of a hub operator who installed the package and listed its region folder."""
    regions_dir = os.pathsep.join([str(ROOT / "regions" / "config"), str(EXAMPLE / "config")])
    return {**os.environ, "PYTHONPATH": str(site), "YIKATONG_REGIONS_DIR": regions_dir, "PYTHONUNBUFFERED": "1"}


@dataclass
class Hub:
    """``yikatong up`` running as a subprocess with the four regions, and stubs to call its hub."""

    endpoints: dict[str, Any]
    cards: card_pb2_grpc.CardServiceStub
    settlement: settlement_pb2_grpc.MedicalSettlementServiceStub
    clearing: clearing_pb2_grpc.ClearingServiceStub
    federation: federation_pb2_grpc.FederationServiceStub


@pytest.fixture
def hub(site: Path, tmp_path: Path) -> Iterator[Hub]:
    """The federation started the way an operator starts it; stopped with SIGINT, which must exit 0."""
    data_dir = tmp_path / "var"
    command = [
        YIKATONG,
        "up",
        "--hub-port",
        "0",
        "--admin-port",
        "0",
        "--data-dir",
        str(data_dir),
        "--no-self-check",
        "--insecure",
    ]
    with (
        open(tmp_path / "stderr.log", "w") as stderr,
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=partner_env(site)) as up,
    ):
        try:
            wait_for_serving(up, tmp_path / "stderr.log")
            endpoints = json.loads((data_dir / "endpoints.json").read_text())
            with grpc.insecure_channel(endpoints["hub"]) as channel:
                yield Hub(
                    endpoints,
                    card_pb2_grpc.CardServiceStub(channel),
                    settlement_pb2_grpc.MedicalSettlementServiceStub(channel),
                    clearing_pb2_grpc.ClearingServiceStub(channel),
                    federation_pb2_grpc.FederationServiceStub(channel),
                )
        finally:
            up.send_signal(signal.SIGINT)
            assert up.wait(timeout=30) == 0, (tmp_path / "stderr.log").read_text()


def wait_for_serving(process: subprocess.Popen[str], stderr: Path, seconds: float = 30) -> None:
    assert process.stdout is not None
    deadline, lines = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("serving"):
            return
    raise AssertionError(f"yikatong up did not serve; stdout: {lines}; stderr: {stderr.read_text()}")


# --- the seeded people the test picks from ------------------------------------------------------------------------


def regions() -> dict[str, RegionConfig]:
    configs = {c.region_id: c for c in load_regions(ROOT / "regions" / "config")}
    return {**configs, REGION: load_region(EXAMPLE / "config" / f"{REGION}.toml")}


def holder(region: RegionConfig, province: str, kind: InsuranceType | None = None) -> SeededPerson:
    """A NORMAL card issued in the province whose holder is insured (with that insurance type, when given)."""
    return next(
        p
        for p in people_of(region)
        if p.status is CardStatus.NORMAL
        and p.issuing_area.startswith(province)
        and p.insurance is not None
        and (kind is None or p.insurance.insurance_type is kind)
    )


def credential(p: SeededPerson) -> common_pb2.CardCredential:
    return common_pb2.CardCredential(
        social_security_number=p.social_security_number,
        card_number=p.card_number,
        card_identification_code=p.card_identification_code,
        holder_name=p.name,
    )


# --- the test -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_partner_region_verifies_settles_and_clears_with_the_other_three_through_one_hub(hub: Hub) -> None:
    configs = regions()
    assert set(hub.endpoints["regions"]) == set(configs)
    check_four_regions_listed(hub)

    partners = {province: holder(configs[REGION], province) for province in ("44", "45", "46")}
    for person in partners.values():
        for venue in (SHANGHAI, CHENGDU, BEIJING):
            check_verified(hub, person, venue, REGION)
    for region, province in (("yangtze-delta", "31"), ("sichuan-chongqing", "51"), ("beijing-tianjin-hebei", "11")):
        check_verified(hub, holder(configs[region], province), GUANGZHOU, region)

    cantonese = holder(configs[REGION], "44", InsuranceType.EMPLOYEE)
    sichuanese = holder(configs["sichuan-chongqing"], "51", InsuranceType.EMPLOYEE)
    at_shanghai = check_settled(hub, cantonese, SHANGHAI, REGION, policy_file=configs[REGION].sandbox.policies_file)
    at_guangzhou = check_settled(hub, sichuanese, GUANGZHOU, "sichuan-chongqing", policy_file=str(POLICY_FILE))

    assert at_shanghai.period == at_guangzhou.period
    check_cleared(hub, at_shanghai, at_guangzhou)


def check_four_regions_listed(hub: Hub) -> None:
    deadline = time.monotonic() + 10
    while True:  # the hub probes every region as it starts; a region is healthy once it answered
        listed = hub.federation.ListRegions(federation_pb2.ListRegionsRequest(), timeout=T).regions
        if all(r.healthy for r in listed) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {r.id: r.healthy for r in listed} == dict.fromkeys(regions(), True)
    (partner,) = (r for r in listed if r.id == REGION)
    assert (list(partner.provinces), partner.adapter, partner.name) == (
        ["44", "45", "46"],
        REGION,
        "粤桂琼 Guangdong–Guangxi–Hainan",
    )


def check_verified(hub: Hub, person: SeededPerson, venue: str, issuing_region: str) -> None:
    request = card_pb2.VerifyCardRequest(
        card=credential(person), venue=common_pb2.Venue(area_code=venue, institution_id=f"V{venue}")
    )
    answer = hub.cards.VerifyCard(request, timeout=T)

    assert answer.issuing_region == issuing_region
    assert not answer.via_stand_in
    assert (answer.holder.social_security_number, answer.holder.name) == (person.social_security_number, person.name)
    assert (answer.card.card_number, answer.card.issuing_area) == (person.card_number, person.issuing_area)
    assert answer.card.status == common_pb2.CARD_STATUS_NORMAL
    assert person.insurance is not None
    assert [i.insured_area for i in answer.insurances] == [person.insurance.insured_area]


def check_settled(
    hub: Hub, person: SeededPerson, hospital_area: str, insured_region: str, *, policy_file: str
) -> settlement_pb2.Settlement:
    """An unfiled level-3 inpatient bill, settled at the insured place by its own policy table."""
    request = settlement_pb2.SettleRequest(
        request_id=str(uuid.uuid4()),
        card=credential(person),
        venue=common_pb2.Venue(area_code=hospital_area, institution_id=f"H{hospital_area}01"),
        hospital_level=3,
        visit_type=settlement_pb2.VISIT_TYPE_INPATIENT,
        lines=[line_pb(line) for line in LINES],
        use_personal_account=True,
    )
    settled = hub.settlement.Settle(request, timeout=T).settlement

    assert person.insurance is not None
    assert settled.state == settlement_pb2.SETTLEMENT_STATE_SETTLED
    assert (settled.insured_area, settled.treatment_area) == (person.insurance.insured_area, hospital_area)
    assert settled.insured_region == insured_region
    assert settled.region_settlement_id.startswith(f"{insured_region}-S")
    split = settled.split
    classes = split.full_self_pay_fen + split.over_cap_fen + split.b_class_self_pay_fen + split.in_scope_fen
    assert split.total_fen == classes == split.fund_pay_fen + split.account_pay_fen + split.cash_pay_fen
    assert split == expected_split(person, policy_file)
    assert split.fund_pay_fen > 0
    return settled


def line_pb(line: BillLine) -> settlement_pb2.BillLine:
    return settlement_pb2.BillLine(
        item_code=line.item_code,
        item_name=line.item_name,
        catalogue_class=settlement_pb2.CatalogueClass.Value(f"CATALOGUE_CLASS_{line.catalogue_class.value}"),
        quantity=line.quantity,
        unit_price_fen=line.unit_price_fen,
        amount_fen=line.amount_fen,
        price_cap_fen=line.price_cap_fen,
    )


def expected_split(person: SeededPerson, policy_file: str) -> settlement_pb2.Split:
    """The DESIGN §4.5 split of ``LINES`` under the insured province's row of the insured region's policy table."""
    assert person.insurance is not None
    policies = load_policies(Path(policy_file))
    policy = policies[(person.insurance.insured_area[:2], person.insurance.insurance_type, VisitType.INPATIENT)]
    seeded = person.accumulators["INPATIENT"]
    split = compute_split(
        policy,
        LINES,
        hospital_level=3,
        later_admission=False,
        filing=FilingCover.NONE,
        accumulator=Accumulator(seeded["deductible_used_fen"], seeded["fund_paid_fen"]),
        account_balance_fen=person.account_balance_fen,
        use_personal_account=True,
    )
    return settlement_pb2.Split(**vars(split))


def check_cleared(hub: Hub, at_shanghai: settlement_pb2.Settlement, at_guangzhou: settlement_pb2.Settlement) -> None:
    request = clearing_pb2.GetClearingReportRequest(period=at_shanghai.period)
    report = hub.clearing.GetClearingReport(request, timeout=T).report
    owed_by_44, owed_to_44 = at_shanghai.split.fund_pay_fen, at_guangzhou.split.fund_pay_fen

    pairs = {(p.insured_province, p.treatment_province): (p.count, p.fund_pay_fen) for p in report.pairs}
    assert pairs == {("44", "31"): (1, owed_by_44), ("51", "44"): (1, owed_to_44)}
    provinces = {p.province: p.net_fen for p in report.provinces}
    assert provinces == {"31": owed_by_44, "44": owed_to_44 - owed_by_44, "51": -owed_to_44}
    nets = {r.region: r.net_fen for r in report.regions}
    assert nets == {"yangtze-delta": owed_by_44, REGION: owed_to_44 - owed_by_44, "sichuan-chongqing": -owed_to_44}
    assert sum(provinces.values()) == sum(nets.values()) == 0


@pytest.mark.slow
def test_the_sandbox_cards_command_lists_the_partner_region_from_its_own_seed(site: Path) -> None:
    out = subprocess.run(
        [YIKATONG, "sandbox", "cards", "--region", REGION, "--status", "NORMAL", "--limit", "5"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env=partner_env(site),
    ).stdout.splitlines()

    seeded = [p for p in people_of(regions()[REGION]) if p.status is CardStatus.NORMAL][:5]
    assert [json.loads(line)["card_number"] for line in out] == [p.card_number for p in seeded]
    assert {json.loads(line)["region"] for line in out} == {REGION}


@pytest.mark.slow
def test_the_example_package_passes_its_own_tests_when_installed(site: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=EXAMPLE,
        env={**os.environ, "PYTHONPATH": str(site)},
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
