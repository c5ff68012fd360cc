"""Typed guarded region calls: the interface declares each method's retry policy; the call records region and
attempts; every RegionAdapter method is offered through the guard."""

from __future__ import annotations

import inspect

import pytest

from adapters import domain
from adapters.errors import RegionTimeout, RegionUnavailable
from adapters.interface import RegionAdapter, RetryPolicy, retry_policy
from gateway.services.federation import GuardedRegion
from tests.unit.fakes import Harness, bill, credential

BJ = "beijing-tianjin-hebei"
ABSTRACT = sorted(RegionAdapter.__abstractmethods__)


def test_every_adapter_method_declares_a_retry_policy_and_only_settle_waits_for_proof() -> None:
    policies = {name: retry_policy(name) for name in ABSTRACT}

    assert policies["settle"] is RetryPolicy.NOT_REACHED
    assert policies["check_health"] is RetryPolicy.NEVER
    assert {n for n, p in policies.items() if p is RetryPolicy.SAFE} == set(ABSTRACT) - {"settle", "check_health"}


def test_the_guarded_region_offers_every_adapter_method_without_its_timeout() -> None:
    for name in ABSTRACT:
        adapter = inspect.signature(getattr(RegionAdapter, name)).parameters
        guarded = inspect.signature(getattr(GuardedRegion, name)).parameters
        assert list(guarded) == [p for p in adapter if p != "timeout"], name


async def test_a_call_records_its_region_and_every_attempt(hub: Harness) -> None:
    region = hub.regions[BJ]
    person = region.person(status=domain.CardStatus.NORMAL)
    region.fail("get_card", RegionUnavailable(BJ, "connection refused"))
    call = hub.call()

    record = await hub.services.federation.region(BJ, call).get_card(credential(person))

    assert record.card.card_number == person.card_number
    assert (call.region, call.attempts) == (BJ, 2)
    assert hub.metric("yikatong_region_retries_total", {"region": BJ, "operation": "get_card"}) == 1
    assert hub.metric("yikatong_region_requests_total", {"region": BJ, "operation": "get_card", "outcome": "ok"}) == 1


async def test_a_settlement_that_may_have_reached_the_region_is_not_sent_again(hub: Harness) -> None:
    region = hub.regions[BJ]
    person = region.person(status=domain.CardStatus.NORMAL, insured=True)
    region.fail("settle", RegionTimeout(BJ, "no answer"), after=True)
    call = hub.call()

    with pytest.raises(RegionTimeout):
        await hub.services.federation.region(BJ, call).settle(bill(person, "req-1"))

    assert call.attempts == 1 and region.calls == ["settle"]
    labels = {"region": BJ, "operation": "settle", "outcome": "timeout"}
    assert hub.metric("yikatong_region_requests_total", labels) == 1
