"""Rules of talking to a region: error mapping, deadlines, health and stand-in advices (DESIGN §2, §4.7).

The sandbox's fault knobs make the region down or slow on purpose; the adapter must say so with the error
classes of ``adapters.errors``, whose ``retryable`` and ``may_have_reached`` the hub's retry logic reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace

from adapters.conformance.rule import Rule, Unmet, answer, describe, holds, refused, rule, same, show
from adapters.conformance.target import Target
from adapters.domain import CardAction, CardCredential, CardStatus, ChangeCard, OutcomeState, ServiceKind, StandInAdvice
from adapters.errors import AdapterError, CardNotFound, HolderMismatch, Refusal, RegionTimeout, RegionUnavailable

DEADLINE = 0.25  # the timeout the deadline rule gives the adapter, in seconds
DEADLINE_MARGIN = 0.35  # how much later than its timeout an adapter may give up
SLOW_MS = 800  # how slow the sandbox is made for the deadline rule
HUNG = object()  # what _timed reports of a call cut off long after the slow region answered


def _not_retryable(error: Refusal, doing: str) -> None:
    """A refusal class may be subclassed by an adapter; the subclass must still say "do not retry"."""
    holds(not error.retryable, f"{doing} not to be retryable", f"retryable {type(error).__name__}")


def _unavailable(error: RegionUnavailable, t: Target, doing: str, *, reached: bool) -> None:
    same(f"retryable of {doing}", True, error.retryable)
    same(f"may_have_reached of {doing}", reached, error.may_have_reached)
    same(f"region of {doing}", t.region_id, error.region)


@rule("ERROR-REFUSAL", "a definite no from the region (CardNotFound, HolderMismatch) is a Refusal, not retryable")
async def error_refusal(t: Target) -> None:
    person = t.samples.employee
    credential = t.credential(person)
    unknown = CardCredential(person.social_security_number, t.samples.unknown_card_number, "", person.issuing_area, "")
    error: Refusal = await refused(
        CardNotFound,
        "get_card of a card number the region did not issue",
        t.adapter.get_card(unknown, timeout=t.timeout),
    )
    _not_retryable(error, "CardNotFound")
    other = t.samples.resident.social_security_number
    for what, wrong in (
        ("another holder's SSN", replace(credential, social_security_number=other)),
        ("another name", replace(credential, holder_name=credential.holder_name + "某")),
    ):
        error = await refused(HolderMismatch, f"get_card with {what}", t.adapter.get_card(wrong, timeout=t.timeout))
        _not_retryable(error, "HolderMismatch")


@rule(
    "ERROR-UNAVAILABLE",
    "a region that answers it is down raises RegionUnavailable, retryable and may have been reached; "
    "one nobody listens for raises it not reached",
)
async def error_unavailable(t: Target) -> None:
    changes = t.status_changes()
    person = t.samples.employee
    t.sandbox.faults.update({"down": True})
    request = ChangeCard(str(uuid.uuid4()), t.credential(person), CardAction.REPORT_LOSS)
    calls: tuple[tuple[str, Callable[[], Awaitable[object]]], ...] = (
        ("get_card of a region that is down", lambda: t.adapter.get_card(t.credential(person), timeout=t.timeout)),
        ("change_card of a region that is down", lambda: t.adapter.change_card(request, timeout=t.timeout)),
        (
            "settle at a region that is down",
            lambda: t.adapter.settle(t.bill(person, request.request_id), timeout=t.timeout),
        ),
    )
    for doing, call in calls:
        _unavailable(await refused(RegionUnavailable, doing, call()), t, doing, reached=True)
    same("status changes at the region", [], changes)
    same("settlements the region holds", {}, t.sandbox.medical.settlements)
    t.sandbox.faults.update({"clear": True})
    nobody = t.adapter_class(t.settings(t.closed_endpoint()))
    await answer("start of an adapter for an endpoint nobody listens on", nobody.start())
    try:
        doing = "get_card at an endpoint nobody listens on"
        _unavailable(
            await refused(RegionUnavailable, doing, nobody.get_card(t.credential(person), timeout=t.timeout)),
            t,
            doing,
            reached=False,
        )
    finally:
        with contextlib.suppress(Exception):
            await nobody.close()


async def _timed(call: Awaitable[object]) -> tuple[object, float]:
    """The call's answer or error, and how long it took; a call that outlives the slow region is cut off."""
    started = time.monotonic()
    cutoff = asyncio.timeout(SLOW_MS / 1000 + 2)
    result: object
    try:
        async with cutoff:
            result = await call
    except TimeoutError as exc:
        result = HUNG if cutoff.expired() else exc
    except Exception as exc:
        result = exc
    return result, time.monotonic() - started


def _timed_out(result: object, took: float, doing: str) -> None:
    if not isinstance(result, RegionTimeout):
        if result is HUNG:
            got = "neither an answer nor an error"
        else:
            got = describe(result) if isinstance(result, BaseException) else f"an answer: {show(result)}"
        raise Unmet(f"{doing} to raise RegionTimeout", f"{got} after {took:.2f} s")
    same(f"may_have_reached of {doing}", True, result.may_have_reached)
    holds(
        took <= DEADLINE + DEADLINE_MARGIN,
        f"{doing} to give up within {DEADLINE + DEADLINE_MARGIN:.2f} s (timeout {DEADLINE} s)",
        f"{took:.2f} s",
    )


@rule("DEADLINE", "no answer within the timeout raises RegionTimeout (may have reached) within timeout + margin")
async def deadline(t: Target) -> None:
    person = t.samples.employee
    faults = t.sandbox.faults
    faults.update({"answer_delay_ms": SLOW_MS, "answer_delay_calls": 1, "answer_delay_scope": "settlement"})
    bill = t.bill(person, str(uuid.uuid4()))
    result, took = await _timed(t.adapter.settle(bill, timeout=DEADLINE))
    _timed_out(result, took, "settle answered late")
    outcome = await answer(
        "settlement_outcome after the late answer", t.adapter.settlement_outcome(bill.request_id, timeout=t.timeout)
    )
    same("outcome of the settlement answered late (the region did act)", OutcomeState.SETTLED, outcome.state)
    faults.update({"clear": True, "latency_ms": SLOW_MS})
    result, took = await _timed(t.adapter.get_card(t.credential(person), timeout=DEADLINE))
    _timed_out(result, took, "get_card of a slow region")
    faults.update({"clear": True})
    await answer("get_card once the region is fast again", t.adapter.get_card(t.credential(person), timeout=t.timeout))


@rule("HEALTH", "check_health returns when the region answers and raises an AdapterError when it is down")
async def health(t: Target) -> None:
    await answer("check_health of a running region", t.adapter.check_health(timeout=t.timeout))
    t.sandbox.faults.update({"down": True})
    await refused(AdapterError, "check_health of a region that is down", t.adapter.check_health(timeout=t.timeout))


@rule("STAND-IN-ADVICE", "a stand-in advice reaches the issuing region with every field, once per advice id")
async def stand_in_advice(t: Target) -> None:
    person = t.samples.by_status[CardStatus.NORMAL]
    advices = [
        StandInAdvice(
            advice_id=str(uuid.uuid4()),
            card_number=person.card_number,
            issuing_area=person.issuing_area,
            service_kind=kind,
            venue_area=t.samples.treatment_area,
            granted_at="2025-03-01T08:30:15+08:00",
            status_confirmed_at="2025-03-01T00:10:00Z",
        )
        for kind in (ServiceKind.TRANSIT, ServiceKind.MUSEUM)
    ]
    for advice in advices:
        await answer(
            f"send_stand_in_advice ({advice.service_kind.name})",
            t.adapter.send_stand_in_advice(advice, timeout=t.timeout),
        )
    await answer("send_stand_in_advice resent", t.adapter.send_stand_in_advice(advices[0], timeout=t.timeout))
    same("advices the region holds", {a.advice_id: a for a in advices}, t.sandbox.system.advices)


RULES: tuple[Rule, ...] = (error_refusal, error_unavailable, deadline, health, stand_in_advice)
