"""The card services with fake regions: routed to the person's or the card's region, each write once."""

from __future__ import annotations

import pytest

from adapters import domain
from adapters.errors import CardNotFound, IdempotencyKeyReused
from gateway.errors import StoredRefusal
from tests.unit.fakes import Harness, credential

SC = "sichuan-chongqing"


async def test_an_application_goes_to_the_region_that_knows_the_person_once(hub: Harness) -> None:
    person = hub.regions[SC].person(status=domain.CardStatus.CANCELLED)
    apply = domain.ApplyCard("req-1", person.social_security_number, person.name, person.issuing_area)

    first = await hub.services.affairs.apply(hub.call(), apply)
    again = await hub.services.affairs.apply(hub.call(), apply)
    progress = await hub.services.affairs.progress(hub.call(), person.social_security_number, person.name)

    assert first == again and first.region == SC
    assert progress.application == first.application
    assert hub.regions[SC].calls.count("apply_card") == 1


async def test_a_loss_report_changes_the_card_at_its_issuing_region(hub: Harness) -> None:
    person = hub.regions[SC].person(status=domain.CardStatus.NORMAL)
    report = domain.ChangeCard("req-2", credential(person), domain.CardAction.REPORT_LOSS)

    card = await hub.services.affairs.change(hub.call(), report.credential, report)
    with pytest.raises(IdempotencyKeyReused):
        other = credential(hub.regions[SC].person(status=domain.CardStatus.LOCKED))
        await hub.services.affairs.change(hub.call(), other, domain.ChangeCard("req-2", other, report.action))

    assert card.status is domain.CardStatus.TEMPORARILY_LOST
    assert hub.regions[SC].statuses[person.card_number] is domain.CardStatus.TEMPORARILY_LOST


async def test_a_refused_replacement_is_replayed_as_the_same_refusal(hub: Harness) -> None:
    person = hub.regions[SC].person(status=domain.CardStatus.NORMAL)
    unknown = domain.CardCredential(person.social_security_number, "X00000019", "", person.issuing_area, person.name)
    replace = domain.ReplaceCard("req-3", unknown, domain.ReplaceReason.LOST)

    with pytest.raises(CardNotFound):
        await hub.services.affairs.replace(hub.call(), unknown, replace)
    with pytest.raises(StoredRefusal) as replayed:
        await hub.services.affairs.replace(hub.call(), unknown, replace)

    assert replayed.value.reason == "CARD_NOT_FOUND"
    assert hub.regions[SC].calls.count("replace_card") == 1
