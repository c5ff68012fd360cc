"""The self-check `yikatong up` runs: real sandbox cards recognised across regions, two settlements, resident
services — each called as the participant that would make the call (a hospital settles, a venue authorises) —
and, over mutual TLS, one refusal of each kind: a venue trying to settle, a hospital settling outside its scope."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from adapters.domain import CardStatus, InsuranceType
from gateway.api.client import HubEndpoint, yuan
from gateway.api.status import error_reason
from regions.ecard import credential_of, issue_token
from regions.seed import SeededPerson, generate
from yikatong.v1 import (
    card_pb2,
    card_pb2_grpc,
    common_pb2,
    resident_pb2,
    resident_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
)
from yikatong.v1.settlement_pb2 import BillLine


@dataclass(frozen=True)
class Check:
    """One self-check step: a card picked from a region's seed, used at a venue, and the expected answer."""

    title: str
    region: str
    provinces: tuple[str, ...]
    pick: Callable[[SeededPerson], bool]
    venue_area: str
    participant: str
    expect_reason: str = ""  # "" = recognised


def _normal_in(province: str) -> Callable[[SeededPerson], bool]:
    return lambda p: p.status is CardStatus.NORMAL and p.issuing_area.startswith(province)


CHECKS = (
    Check(
        "Sichuan card at a Shanghai hospital",
        "sichuan-chongqing",
        ("50", "51"),
        _normal_in("51"),
        "310104",
        "hospital-shanghai-xuhui",
    ),
    Check(
        "Beijing card at a Chongqing hospital",
        "beijing-tianjin-hebei",
        ("11", "12", "13"),
        _normal_in("11"),
        "500103",
        "hospital-chongqing-yuzhong",
    ),
    Check(
        "card of a holder born in another province, at a Hebei library",
        "yangtze-delta",
        ("31", "32", "33", "34"),
        lambda p: p.status is CardStatus.NORMAL and p.social_security_number[:2] != p.issuing_area[:2],
        "130100",
        "library-shijiazhuang",
    ),
    Check(
        "temporarily lost Jiangsu card at a Beijing museum",
        "yangtze-delta",
        ("31", "32", "33", "34"),
        lambda p: p.status is CardStatus.TEMPORARILY_LOST and p.issuing_area.startswith("32"),
        "110105",
        "museum-beijing",
        expect_reason="CARD_TEMPORARILY_LOST",
    ),
)


def _credential(p: SeededPerson) -> common_pb2.CardCredential:
    return common_pb2.CardCredential(
        social_security_number=p.social_security_number,
        card_number=p.card_number,
        card_identification_code=p.card_identification_code,
        holder_name=p.name,
    )


@dataclass(frozen=True)
class SettlementCheck:
    """A bill of a region's insured person settled at a hospital of another province."""

    title: str
    region: str
    provinces: tuple[str, ...]
    province: str
    insurance_type: InsuranceType
    venue_area: str
    hospital_level: int
    visit_type: settlement_pb2.VisitType.ValueType
    lines: tuple[BillLine, ...]
    participant: str


A, B, C = settlement_pb2.CATALOGUE_CLASS_A, settlement_pb2.CATALOGUE_CLASS_B, settlement_pb2.CATALOGUE_CLASS_C


def _line(
    code: str, name: str, cls: settlement_pb2.CatalogueClass.ValueType, qty: int, price: int, cap: int = 0
) -> BillLine:
    return BillLine(
        item_code=code,
        item_name=name,
        catalogue_class=cls,
        quantity=qty,
        unit_price_fen=price,
        amount_fen=qty * price,
        price_cap_fen=cap,
    )


SETTLEMENT_CHECKS = (
    SettlementCheck(
        "Sichuan employee, inpatient, Shanghai level-3 hospital",
        "sichuan-chongqing",
        ("50", "51"),
        "51",
        InsuranceType.EMPLOYEE,
        "310104",
        3,
        settlement_pb2.VISIT_TYPE_INPATIENT,
        (
            _line("110900001", "床位费", A, 6, 9000),
            _line("XC01AAT0", "头孢曲松", B, 12, 4850),
            _line("331602003", "腹腔镜胆囊切除术", A, 1, 1_280_000, cap=1_150_000),
            _line("ZC000123", "进口止血材料", C, 1, 86_000),
        ),
        "hospital-shanghai-xuhui",
    ),
    SettlementCheck(
        "Hebei resident, outpatient, Chongqing level-2 hospital",
        "beijing-tianjin-hebei",
        ("11", "12", "13"),
        "13",
        InsuranceType.RESIDENT,
        "500103",
        2,
        settlement_pb2.VISIT_TYPE_OUTPATIENT,
        (
            _line("110200001", "普通门诊诊查费", A, 1, 2500),
            _line("XA02BCA0", "奥美拉唑肠溶胶囊", B, 3, 2780),
            _line("250101001", "血常规", A, 1, 2000),
        ),
        "hospital-chongqing-yuzhong",
    ),
)


def _split_line(split: settlement_pb2.Split) -> str:
    return (
        f"total {yuan(split.total_fen)} yuan = fund {yuan(split.fund_pay_fen)}"
        f" + account {yuan(split.account_pay_fen)} + cash {yuan(split.cash_pay_fen)}"
        f"; self-pay {yuan(split.full_self_pay_fen)}, over cap {yuan(split.over_cap_fen)}"
        f", B-class share {yuan(split.b_class_self_pay_fen)}, in scope {yuan(split.in_scope_fen)}"
        f", deductible {yuan(split.deductible_fen)}"
    )


def _bill(check: SettlementCheck) -> settlement_pb2.SettleRequest:
    visit = settlement_pb2.VisitType.Name(check.visit_type).removeprefix("VISIT_TYPE_")
    person = next(
        p
        for p in generate(check.region, check.provinces)
        if p.status is CardStatus.NORMAL
        and p.issuing_area.startswith(check.province)
        and p.insurance is not None
        and p.insurance.insurance_type is check.insurance_type
        and p.accumulators[visit]["fund_paid_fen"] < 20_000  # room under the annual cap, for a telling split
    )
    return settlement_pb2.SettleRequest(
        request_id=str(uuid.uuid4()),
        card=_credential(person),
        venue=common_pb2.Venue(area_code=check.venue_area, institution_id="H" + check.venue_area + "0001"),
        hospital_level=check.hospital_level,
        visit_type=check.visit_type,
        lines=check.lines,
        use_personal_account=True,
    )


async def _settle(channel: grpc.aio.Channel, check: SettlementCheck) -> tuple[bool, str]:
    try:
        answer = await settlement_pb2_grpc.MedicalSettlementServiceStub(channel).Settle(_bill(check), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return False, f"refused: {exc.code().name} / {error_reason(exc)}"
    settled = answer.settlement
    return True, f"{settled.settlement_id} in {settled.period}: {_split_line(settled.split)}"


async def run_self_check(hub: HubEndpoint, out: Callable[[str], None] = print) -> bool:
    """Run every check against the hub; print one line each; True when all passed."""
    passed = True

    def channel(participant: str) -> grpc.aio.Channel:
        return hub.channel(participant if hub.tls is not None else "")

    try:
        for settlement in SETTLEMENT_CHECKS:
            ok, got = await _settle(channel(settlement.participant), settlement)
            passed &= ok
            out(f"  [{'ok' if ok else 'FAILED'}] {settlement.title}: {got}")
        for check in CHECKS:
            stub = card_pb2_grpc.CardServiceStub(channel(check.participant))
            person = next(p for p in generate(check.region, check.provinces) if check.pick(p))
            request = card_pb2.VerifyCardRequest(
                card=_credential(person), venue=common_pb2.Venue(area_code=check.venue_area)
            )
            try:
                answer = await stub.VerifyCard(request, timeout=5)
                born = person.social_security_number[:6]
                got = f"recognised: issued by {answer.issuing_region} ({answer.card.issuing_area}), holder from {born}"
                ok = not check.expect_reason
            except grpc.aio.AioRpcError as exc:
                reason = error_reason(exc)
                got = f"refused: {exc.code().name} / {reason}"
                ok = reason == check.expect_reason != ""
            passed &= ok
            out(f"  [{'ok' if ok else 'FAILED'}] {check.title}: {got}")
        results = await _resident_checks(channel)
        if hub.tls is not None:
            results += await _refusal_checks(channel)
        for title, ok, got in results:
            passed &= ok
            out(f"  [{'ok' if ok else 'FAILED'}] {title}: {got}")
    finally:
        await hub.close()
    return passed


async def _refusal_checks(channel: Callable[[str], grpc.aio.Channel]) -> list[tuple[str, bool, str]]:
    """One refusal of each kind (DESIGN §10): a role that may not settle, a hospital outside its scope."""
    shanghai_bill, chongqing_bill = _bill(SETTLEMENT_CHECKS[0]), _bill(SETTLEMENT_CHECKS[1])
    asks = (
        ("Hangzhou transit operator trying to settle", "transit-hangzhou", shanghai_bill, "CALLER_NOT_AUTHORIZED"),
        (
            "Shanghai hospital settling at a Chongqing hospital",
            "hospital-shanghai-xuhui",
            chongqing_bill,
            "CALLER_OUT_OF_SCOPE",
        ),
    )
    results = []
    for title, participant, request, expected in asks:
        try:
            await settlement_pb2_grpc.MedicalSettlementServiceStub(channel(participant)).Settle(request, timeout=5)
            results.append((title, False, "settled, but should have been refused"))
        except grpc.aio.AioRpcError as exc:
            got = f"refused: {exc.code().name} / {error_reason(exc)}"
            results.append(
                (title, exc.code() is grpc.StatusCode.PERMISSION_DENIED and error_reason(exc) == expected, got)
            )
    return results


async def _resident_checks(channel: Callable[[str], grpc.aio.Channel]) -> list[tuple[str, bool, str]]:
    """Resident services: alliance agreements, an e-card token, and no agreement across alliances by default."""
    shanghai = next(p for p in generate("yangtze-delta", ("31", "32", "33", "34")) if _normal_in("31")(p))
    chongqing = next(p for p in generate("sichuan-chongqing", ("50", "51")) if _normal_in("50")(p))
    token = common_pb2.CardCredential(ecard_token=issue_token(credential_of(chongqing), ttl_seconds=30))
    transit, park, museum = (
        resident_pb2.SERVICE_KIND_TRANSIT,
        resident_pb2.SERVICE_KIND_PARK,
        resident_pb2.SERVICE_KIND_MUSEUM,
    )
    asks = (
        ("Shanghai card on Hangzhou transit", _credential(shanghai), transit, "330100", "transit-hangzhou", True),
        ("Chongqing e-card token at a Chengdu park", token, park, "510100", "park-chengdu", True),
        ("Shanghai card at a Beijing museum", _credential(shanghai), museum, "110105", "museum-beijing", False),
    )
    results = []
    for title, card, kind, venue, participant, expected in asks:
        stub = resident_pb2_grpc.ResidentServiceStub(channel(participant))
        request = resident_pb2.AuthorizeServiceRequest(
            card=card, service_kind=kind, venue=common_pb2.Venue(area_code=venue)
        )
        try:
            answer = await stub.AuthorizeService(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            results.append((title, False, f"error: {exc.code().name} / {error_reason(exc)}"))
            continue
        got = f"authorized ({answer.issuing_region})" if answer.authorized else f"refused: {answer.reason}"
        results.append((title, answer.authorized == expected, got))
    return results
