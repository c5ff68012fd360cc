"""The self-check `yikatong up` runs: real sandbox cards recognised across regions through the hub."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc

from adapters.domain import CardStatus
from gateway.status import error_reason
from regions.seed import SeededPerson, generate
from yikatong.v1 import card_pb2, card_pb2_grpc, common_pb2


@dataclass(frozen=True)
class Check:
    """One self-check step: a card picked from a region's seed, used at a venue, and the expected answer."""

    title: str
    region: str
    provinces: tuple[str, ...]
    pick: Callable[[SeededPerson], bool]
    venue_area: str
    expect_reason: str = ""  # "" = recognised


def _normal_in(province: str) -> Callable[[SeededPerson], bool]:
    return lambda p: p.status is CardStatus.NORMAL and p.issuing_area.startswith(province)


CHECKS = (
    Check("Sichuan card at a Shanghai venue", "sichuan-chongqing", ("50", "51"), _normal_in("51"), "310104"),
    Check("Beijing card at a Chongqing venue", "beijing-tianjin-hebei", ("11", "12", "13"), _normal_in("11"), "500103"),
    Check(
        "card of a holder born in another province, at a Hebei venue",
        "yangtze-delta",
        ("31", "32", "33", "34"),
        lambda p: p.status is CardStatus.NORMAL and p.social_security_number[:2] != p.issuing_area[:2],
        "130100",
    ),
    Check(
        "temporarily lost Jiangsu card at a Beijing venue",
        "yangtze-delta",
        ("31", "32", "33", "34"),
        lambda p: p.status is CardStatus.TEMPORARILY_LOST and p.issuing_area.startswith("32"),
        "110105",
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


async def run_self_check(hub_address: str, out: Callable[[str], None] = print) -> bool:
    """Run every check against the hub; print one line each; True when all passed."""
    passed = True
    async with grpc.aio.insecure_channel(hub_address) as channel:
        stub = card_pb2_grpc.CardServiceStub(channel)
        for check in CHECKS:
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
    return passed
