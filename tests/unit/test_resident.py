"""Resident services with fake regions: agreements, the status cache, card events and stand-in."""

from __future__ import annotations

import pytest

from adapters import domain
from adapters.errors import RegionUnavailable
from gateway.domain import Decision
from gateway.ledger import ADVICE
from tests.unit.fakes import Harness, credential

SHANGHAI_VENUE, HANGZHOU, BEIJING_VENUE = "310104", "330100", "110105"
YRD = "yangtze-delta"


def shanghai_card(hub: Harness, status: domain.CardStatus = domain.CardStatus.NORMAL) -> domain.CardCredential:
    region = hub.regions[YRD]
    return credential(next(p for p in region.people if p.status is status and p.issuing_area.startswith("31")))


async def authorize(
    hub: Harness, card: domain.CardCredential, venue: str, kind: domain.ServiceKind = domain.ServiceKind.TRANSIT
) -> Decision:
    return await hub.services.resident.authorize(hub.call(), card, kind, venue)


async def test_a_service_without_an_agreement_is_refused_without_asking_the_region(hub: Harness) -> None:
    decision = await authorize(hub, shanghai_card(hub), BEIJING_VENUE, domain.ServiceKind.MUSEUM)

    assert (decision.authorized, decision.reason, decision.issuing_region) == (False, "SERVICE_NOT_AGREED", YRD)
    assert hub.regions[YRD].calls == []


async def test_an_agreed_service_asks_the_region_once_then_answers_from_the_cache(hub: Harness) -> None:
    card = shanghai_card(hub)

    first = await authorize(hub, card, HANGZHOU)
    second = await authorize(hub, card, HANGZHOU)

    assert first.authorized and second.authorized and not second.via_stand_in
    assert hub.regions[YRD].calls == ["get_card"]
    assert hub.metric("yikatong_status_cache_lookups_total", {"result": "hit"}) == 1


async def test_a_card_that_is_not_normal_is_refused_with_its_status(hub: Harness) -> None:
    decision = await authorize(hub, shanghai_card(hub, domain.CardStatus.TEMPORARILY_LOST), HANGZHOU)

    assert (decision.authorized, decision.reason) == (False, "CARD_TEMPORARILY_LOST")


async def test_a_card_event_drops_the_cached_status_at_once(hub: Harness) -> None:
    card = shanghai_card(hub)
    await authorize(hub, card, HANGZHOU)
    hub.regions[YRD].statuses[card.card_number] = domain.CardStatus.TEMPORARILY_LOST

    await hub.services.resident.card_event(
        hub.call(),
        domain.CardEvent("ev-1", YRD, card.card_number, card.issuing_area, domain.CardStatus.TEMPORARILY_LOST),
    )
    decision = await authorize(hub, card, HANGZHOU)

    assert decision.reason == "CARD_TEMPORARILY_LOST"
    assert hub.metric("yikatong_card_events_total", {"region": YRD, "status": "TEMPORARILY_LOST"}) == 1


async def test_stand_in_grants_a_recently_seen_card_and_queues_an_advice(hub: Harness) -> None:
    card = shanghai_card(hub)
    await authorize(hub, card, HANGZHOU)
    hub.clock.advance(hub.config.status_cache_seconds + 1)  # the cache no longer answers; the region must be asked
    hub.regions[YRD].fail("get_card", RegionUnavailable(YRD, "down"), times=10)

    decision = await authorize(hub, card, HANGZHOU)

    assert decision.authorized and decision.via_stand_in
    [item] = await hub.owed()
    assert (item.kind, item.region) == (ADVICE, YRD)
    assert await hub.services.outbox.deliver_due() == 1
    [advice] = hub.regions[YRD].advices
    assert (advice.card_number, advice.service_kind, advice.venue_area) == (
        card.card_number,
        domain.ServiceKind.TRANSIT,
        HANGZHOU,
    )


async def test_a_card_not_seen_recently_is_not_stood_in_for(hub: Harness) -> None:
    card = shanghai_card(hub)
    await authorize(hub, card, HANGZHOU)
    hub.clock.advance(hub.config.stand_in_seconds + 1)
    hub.regions[YRD].fail("get_card", RegionUnavailable(YRD, "down"), times=10)

    with pytest.raises(RegionUnavailable):
        await authorize(hub, card, HANGZHOU)
    assert await hub.owed() == []
