"""Cards and the holder directory with fake regions: the NORMAL rule, routing, the directory's fan-out."""

from __future__ import annotations

import asyncio

import pytest

from adapters import domain
from adapters.errors import HolderNotFound, RegionUnavailable
from gateway.api.status import code_of
from gateway.errors import CardNotUsable, DirectoryBusy, RegionNotFederated
from regions.seed import SeededPerson
from tests.unit.fakes import Harness, credential

BJ = "beijing-tianjin-hebei"


def person(hub: Harness, region: str, status: domain.CardStatus = domain.CardStatus.NORMAL) -> SeededPerson:
    return hub.regions[region].person(status=status)


async def test_a_normal_card_is_verified_at_its_issuing_region(hub: Harness) -> None:
    p = person(hub, BJ)
    call = hub.call()

    found = await hub.services.cards.verify(call, credential(p), "500103")

    assert (found.region, found.record.card.card_number) == (BJ, p.card_number)
    assert (call.region, call.venue_region, call.attempts) == (BJ, "sichuan-chongqing", 1)
    assert hub.regions[BJ].calls == ["get_card"]


@pytest.mark.parametrize(
    "status", [s for s in domain.CardStatus if s is not domain.CardStatus.NORMAL], ids=lambda s: s.name
)
async def test_a_card_in_any_other_status_is_refused_naming_it(hub: Harness, status: domain.CardStatus) -> None:
    p = person(hub, BJ, status)

    with pytest.raises(CardNotUsable) as refused:
        await hub.services.cards.verify(hub.call(), credential(p), "500103")
    found = await hub.services.cards.status(hub.call(), credential(p))  # the status itself is no error

    assert refused.value.reason == f"CARD_{status.name}"
    assert found.record.card.status is status


async def test_a_card_of_a_province_no_region_serves_is_not_federated(hub: Harness) -> None:
    c = credential(person(hub, BJ))
    guangdong = domain.CardCredential(c.social_security_number, c.card_number, "", "440100", "")
    with pytest.raises(RegionNotFederated):
        await hub.services.cards.verify(hub.call(), guangdong, "500103")


async def test_the_directory_asks_every_region_once_then_remembers(hub: Harness) -> None:
    ssn = person(hub, BJ).social_security_number

    assert await hub.services.cards.holder_region(hub.call(), ssn) == BJ
    assert await hub.services.cards.holder_region(hub.call(), ssn) == BJ

    assert sum(r.calls.count("knows_holder") for r in hub.regions.values()) <= 3
    assert hub.regions[BJ].calls.count("knows_holder") == 1
    assert hub.metric("yikatong_directory_lookups_total", {"result": "hit"}) == 1


async def test_a_person_no_region_knows_is_not_found(hub: Harness) -> None:
    with pytest.raises(HolderNotFound):
        await hub.services.cards.holder_region(hub.call(), "110101199003070011")


async def test_a_region_that_cannot_be_asked_makes_an_unknown_person_unavailable_not_unknown(hub: Harness) -> None:
    hub.regions[BJ].fail("knows_holder", RegionUnavailable(BJ, "down"), times=10)

    with pytest.raises(RegionUnavailable) as failed:
        await hub.services.cards.holder_region(hub.call(), "110101199003070011")
    assert failed.value.region == BJ


async def test_a_person_no_region_knows_is_remembered_for_a_while(hub: Harness) -> None:
    ssn = "110101199003070011"
    for _ in range(3):
        with pytest.raises(HolderNotFound):
            await hub.services.cards.holder_region(hub.call(), ssn)

    assert sum(r.calls.count("knows_holder") for r in hub.regions.values()) == 3  # one fan-out, then remembered
    assert hub.metric("yikatong_directory_lookups_total", {"result": "negative"}) == 2


async def test_fan_outs_beyond_the_limit_are_refused_at_once(hub: Harness) -> None:
    hub.services.directory.fanout_limit = 1
    held = hub.regions[BJ].hold("knows_holder")
    first = asyncio.create_task(hub.services.cards.holder_region(hub.call(), person(hub, BJ).social_security_number))
    await hub.regions[BJ].reached("knows_holder")

    with pytest.raises(DirectoryBusy):
        await hub.services.cards.holder_region(hub.call(), person(hub, "yangtze-delta").social_security_number)
    held.set()

    assert await first == BJ
    assert code_of(DirectoryBusy(1)).name == "RESOURCE_EXHAUSTED"
