"""Idempotent writes over the ledger: fingerprints of domain requests, replays, refusals, claims released."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from adapters import domain
from adapters.errors import CardNotFound, IdempotencyKeyReused, RegionUnavailable
from gateway.api.status import code_of
from gateway.errors import RequestInProgress, StoredRefusal
from gateway.personal import KeyedHash
from gateway.services.call import Call
from gateway.services.idempotency import Idempotency, fingerprint
from tests.unit.fakes import Harness

CALL = Call()
APPLY = domain.ApplyCard("req-1", "110101199003070011", "张三", "110101")


KEYED = KeyedHash(b"k" * 32)


def idempotency_of(hub: Harness) -> Idempotency:
    return Idempotency(hub.ledger, hub.services.settlements.sealer, hub.services.auditor)


def test_the_fingerprint_ignores_the_request_id_and_nothing_else_and_is_keyed() -> None:
    assert fingerprint(APPLY, KEYED) == fingerprint(replace(APPLY, request_id="req-2"), KEYED)
    assert fingerprint(APPLY, KEYED) != fingerprint(replace(APPLY, holder_name="李四"), KEYED)
    assert fingerprint(APPLY, KEYED) != fingerprint(replace(APPLY, delivery=domain.Delivery.MAIL), KEYED)
    assert fingerprint(APPLY, KEYED) != fingerprint(APPLY, KeyedHash(b"o" * 32))


async def test_an_answer_is_replayed_as_the_same_domain_value(hub: Harness) -> None:
    idempotency, produced = idempotency_of(hub), []

    async def produce() -> domain.Application:
        produced.append(1)
        return domain.Application("app-1", domain.Stage.SUBMITTED, (domain.StageEvent(domain.Stage.SUBMITTED, "t"),))

    first = await idempotency.run(CALL, "ApplyCard", APPLY, produce, domain.Application)
    again = await idempotency.run(CALL, "ApplyCard", APPLY, produce, domain.Application)

    assert again == first and len(produced) == 1
    with pytest.raises(IdempotencyKeyReused):
        await idempotency.run(CALL, "ApplyCard", replace(APPLY, holder_name="李四"), produce, domain.Application)
    assert (
        await idempotency.run(CALL, "ReplaceCard", APPLY, produce, domain.Application) == first
    )  # keys are per method
    assert len(produced) == 2


async def test_a_refusal_is_replayed_with_its_own_status_code(hub: Harness) -> None:
    idempotency = idempotency_of(hub)

    async def refuse() -> domain.Application:
        raise CardNotFound("no such card", metadata={"card_number": "X00000019"})

    with pytest.raises(CardNotFound):
        await idempotency.run(CALL, "ApplyCard", APPLY, refuse, domain.Application)
    with pytest.raises(StoredRefusal) as replayed:
        await idempotency.run(CALL, "ApplyCard", APPLY, refuse, domain.Application)

    assert (replayed.value.reason, replayed.value.metadata) == ("CARD_NOT_FOUND", {"card_number": "X00000019"})
    assert code_of(replayed.value).name == "NOT_FOUND"


async def test_a_failure_to_reach_the_region_releases_the_claim(hub: Harness) -> None:
    idempotency, tries = idempotency_of(hub), []

    async def flaky() -> domain.Application:
        tries.append(1)
        if len(tries) == 1:
            raise RegionUnavailable("beijing-tianjin-hebei", "down")
        return domain.Application("app-1", domain.Stage.SUBMITTED, ())

    with pytest.raises(RegionUnavailable):
        await idempotency.run(CALL, "ApplyCard", APPLY, flaky, domain.Application)
    answer = await idempotency.run(CALL, "ApplyCard", APPLY, flaky, domain.Application)

    assert answer.application_id == "app-1" and len(tries) == 2


async def test_the_same_id_while_the_first_runs_is_in_progress(hub: Harness) -> None:
    idempotency, started, release = idempotency_of(hub), asyncio.Event(), asyncio.Event()

    async def slow() -> domain.Application:
        started.set()
        await release.wait()
        return domain.Application("app-1", domain.Stage.SUBMITTED, ())

    first = asyncio.create_task(idempotency.run(CALL, "ApplyCard", APPLY, slow, domain.Application))
    await started.wait()
    with pytest.raises(RequestInProgress):
        await idempotency.run(CALL, "ApplyCard", APPLY, slow, domain.Application)
    release.set()
    assert (await first).application_id == "app-1"
