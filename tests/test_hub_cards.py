"""The hub with all three sandboxes as real servers: recognition, routing, status refusals, directory."""

from __future__ import annotations

import grpc
import pytest

from adapters.domain import CardStatus
from gateway.api.status import error_reason
from tests.conftest import REGION_IDS, Federation, credential
from yikatong.v1 import card_affairs_pb2, card_pb2, common_pb2, federation_pb2

VENUES = ("110105", "120103", "130100", "310104", "320500", "330100", "340100", "500103", "510100")
PROVINCES = {
    "yangtze-delta": ("31", "32", "33", "34"),
    "sichuan-chongqing": ("50", "51"),
    "beijing-tianjin-hebei": ("11", "12", "13"),
}


def verify(card: common_pb2.CardCredential, area: str) -> card_pb2.VerifyCardRequest:
    return card_pb2.VerifyCardRequest(card=card, venue=common_pb2.Venue(area_code=area))


@pytest.mark.parametrize("region", REGION_IDS)
async def test_a_card_of_each_province_is_recognised_at_venues_in_all_nine_provinces(
    federation: Federation, region: str
) -> None:
    for province in PROVINCES[region]:
        person = federation.pick(
            region, lambda p, pr=province: p.status is CardStatus.NORMAL and p.issuing_area[:2] == pr
        )
        for area in VENUES:
            answer = await federation.cards.VerifyCard(verify(credential(person), area), timeout=5)
            assert answer.issuing_region == region
            assert answer.holder.social_security_number == person.social_security_number
            assert answer.holder.name == person.name
            assert answer.card.status == common_pb2.CARD_STATUS_NORMAL
            assert answer.card.issuing_area == person.issuing_area


@pytest.mark.parametrize("region", REGION_IDS)
async def test_holders_born_elsewhere_route_by_the_cards_issuing_area(federation: Federation, region: str) -> None:
    movers = [
        p
        for p in federation.people(region)
        if p.status is CardStatus.NORMAL and p.social_security_number[:2] not in PROVINCES[region]
    ]
    assert len(movers) >= 5
    for person in movers[:5]:
        answer = await federation.cards.VerifyCard(verify(credential(person), "310104"), timeout=5)
        assert answer.issuing_region == region
        assert answer.holder.social_security_number[:2] != answer.card.issuing_area[:2]


@pytest.mark.parametrize("region", REGION_IDS)
@pytest.mark.parametrize(
    "status", [CardStatus.SEALED, CardStatus.LOST, CardStatus.LOCKED, CardStatus.TEMPORARILY_LOST, CardStatus.CANCELLED]
)
async def test_a_card_that_is_not_normal_is_refused_with_its_status_and_reported_by_get_card_status(
    federation: Federation, region: str, status: CardStatus
) -> None:
    person = federation.pick(region, lambda p: p.status is status)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.cards.VerifyCard(verify(credential(person), "510100"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == f"CARD_{status.name}"
    reported = await federation.cards.GetCardStatus(card_pb2.GetCardStatusRequest(card=credential(person)), timeout=5)
    assert reported.card.status == common_pb2.CardStatus.Value(f"CARD_STATUS_{status.name}")
    assert reported.issuing_region == region


async def test_a_province_without_a_region_is_refused_as_not_federated(federation: Federation) -> None:
    person = federation.pick("yangtze-delta", lambda p: p.status is CardStatus.NORMAL)
    card = credential(person)
    card.card_identification_code = "440100" + card.card_identification_code[6:]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.cards.VerifyCard(verify(card, "310104"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(refused.value) == "REGION_NOT_FEDERATED"


async def test_a_wrong_holder_is_refused_without_revealing_the_card(federation: Federation) -> None:
    person, other = federation.people("sichuan-chongqing")[:2]
    card = credential(person)
    card.social_security_number = other.social_security_number
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.cards.VerifyCard(verify(card, "310104"), timeout=5)
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_reason(refused.value) == "HOLDER_MISMATCH"


async def test_an_ssn_only_request_resolves_by_fan_out_once_then_from_the_directory(federation: Federation) -> None:
    person = federation.pick("beijing-tianjin-hebei", lambda p: p.status is None)
    apply = card_affairs_pb2.ApplyCardRequest(
        request_id="dir-1",
        social_security_number=person.social_security_number,
        holder_name=person.name,
        insured_area=person.issuing_area,
    )
    first = await federation.affairs.ApplyCard(apply, timeout=5)
    assert first.application.issuing_region == "beijing-tianjin-hebei"
    assert federation.metric("yikatong_directory_lookups_total", {"result": "miss"}) == 1
    fanned_out = sum(federation.metric("yikatong_directory_fanout_calls_total", {"region": r}) for r in REGION_IDS)
    assert fanned_out >= 1
    progress = await federation.affairs.GetApplicationProgress(
        card_affairs_pb2.GetApplicationProgressRequest(
            social_security_number=person.social_security_number, holder_name=person.name
        ),
        timeout=5,
    )
    assert progress.application.application_id == first.application.application_id
    assert federation.metric("yikatong_directory_lookups_total", {"result": "hit"}) == 1
    assert federation.metric("yikatong_directory_lookups_total", {"result": "miss"}) == 1
    assert (
        sum(federation.metric("yikatong_directory_fanout_calls_total", {"region": r}) for r in REGION_IDS) == fanned_out
    )


async def test_a_person_no_region_knows_is_not_found(federation: Federation) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.affairs.GetApplicationProgress(
            card_affairs_pb2.GetApplicationProgressRequest(
                social_security_number="11010519491231002X", holder_name="某人"
            ),
            timeout=5,
        )
    assert refused.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_reason(refused.value) == "HOLDER_NOT_FOUND"


async def test_list_regions_names_every_region_with_its_provinces_and_health(federation: Federation) -> None:
    await federation.hub.federation.probe()
    answer = await federation.federation.ListRegions(federation_pb2.ListRegionsRequest(), timeout=5)
    found = {r.id: r for r in answer.regions}
    assert set(found) == set(REGION_IDS)
    for region_id, provinces in PROVINCES.items():
        assert tuple(found[region_id].provinces) == provinces
        assert found[region_id].adapter == region_id
        assert found[region_id].healthy
