"""Resilience per region (gateway/services/resilience.py): breaker, bulkhead, deadline, retries, budget, metrics.

Logic only, with fakes: a fake clock the breaker reads, a recorded ``sleep`` that returns at once, a seeded
``random.Random`` for the jitter, a fresh ``Metrics`` per test and attempt functions that return or raise a
scripted sequence. Only the per-attempt timeout test waits for real (20 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import pytest

from adapters.errors import (
    CardNotFound,
    RegionProtocolError,
    RegionSplitInvalid,
    RegionTimeout,
    RegionUnavailable,
    YikatongError,
)
from adapters.interface import RetryPolicy
from gateway.errors import CircuitOpen, RegionBusy
from gateway.metrics import Metrics
from gateway.services.resilience import CircuitBreaker, RegionGuard
from regions.config import ResilienceSettings

REGION = "yangtze-delta"
OP = "QueryCard"
SEED = 20240601
OUTCOMES = ("ok", "refused", "unavailable", "timeout", "protocol_error", "circuit_open", "bulkhead_full")
# The federation replaces the dataclass's 0.0 ("use the hub's cap") before building a guard; so do we.
BASE = ResilienceSettings(call_timeout_seconds=1.0)
SAFE, NOT_REACHED, NEVER = RetryPolicy.SAFE, RetryPolicy.NOT_REACHED, RetryPolicy.NEVER


def unavailable() -> RegionUnavailable:
    return RegionUnavailable(REGION, "connection refused")


def timeout() -> RegionTimeout:
    return RegionTimeout(REGION, "no answer")


class FakeClock:
    """The breaker's monotonic clock; tests move ``now`` by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Script:
    """An attempt that returns or raises the scripted outcomes in turn and records the timeout of each call."""

    def __init__(self, *outcomes: object) -> None:
        self.outcomes = outcomes
        self.timeouts: list[float] = []

    @property
    def calls(self) -> int:
        return len(self.timeouts)

    async def __call__(self, timeout: float) -> object:
        self.timeouts.append(timeout)
        outcome = self.outcomes[self.calls - 1]  # IndexError (not retried) if called more often than scripted
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


class Gate:
    """An attempt that blocks until ``release`` is set, then returns ``result`` (or raises it, if an error)."""

    def __init__(self, result: object = "card") -> None:
        self.result = result
        self.entered = 0
        self.release = asyncio.Event()

    async def __call__(self, timeout: float) -> object:
        self.entered += 1
        await self.release.wait()
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks run until ``condition`` holds (they only need a few loop turns)."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


@dataclass
class Rig:
    """One test's fakes: metrics, clock, recorded sleeps."""

    metrics: Metrics = field(default_factory=Metrics)
    clock: FakeClock = field(default_factory=FakeClock)
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def guard(self, *, rng: random.Random | None = None, **changes: object) -> RegionGuard:
        settings = replace(BASE, **changes)
        rng = rng or random.Random(SEED)
        return RegionGuard(REGION, settings, self.metrics, clock=self.clock, sleep=self.sleep, rng=rng)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    def outcomes(self) -> dict[str, float]:
        """``yikatong_region_requests_total`` for this region and operation, the outcomes seen only."""
        counts = {
            o: self.sample("yikatong_region_requests_total", region=REGION, operation=OP, outcome=o) for o in OUTCOMES
        }
        return {o: n for o, n in counts.items() if n}

    def retries(self) -> float:
        return self.sample("yikatong_region_retries_total", region=REGION, operation=OP) or 0.0

    def rejected(self, reason: str) -> float:
        return self.sample("yikatong_region_rejected_total", region=REGION, reason=reason) or 0.0

    def circuit_state(self) -> float | None:
        return self.sample("yikatong_region_circuit_state", region=REGION)

    def in_flight(self) -> float | None:
        return self.sample("yikatong_region_in_flight", region=REGION)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def call(
    guard: RegionGuard,
    attempt: Callable[[float], Awaitable[object]],
    policy: RetryPolicy = SAFE,
    time_left: Callable[[], float] = lambda: 10.0,
) -> Awaitable[object]:
    return guard.run(OP, policy, attempt, time_left)


def breaker(clock: FakeClock, changes: list[str], **settings: object) -> CircuitBreaker:
    return CircuitBreaker(REGION, replace(BASE, **settings), clock, changes.append)


def record_all(b: CircuitBreaker, outcomes: str) -> None:
    """Record one call per letter: S success, F failure."""
    for letter in outcomes:
        b.before_call()
        b.record(letter == "S")


# --- circuit breaker -------------------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_not_before() -> None:
    changes: list[str] = []
    b = breaker(FakeClock(), changes, breaker_consecutive_failures=3, breaker_window=20)

    record_all(b, "FFSFF")  # a success breaks the run: never three in a row
    assert (b.state, changes) == ("closed", [])

    record_all(b, "F")
    assert (b.state, changes) == ("open", ["open"])
    with pytest.raises(CircuitOpen) as refused:
        b.before_call()
    assert refused.value.reason == "REGION_CIRCUIT_OPEN"


def test_breaker_opens_on_failure_ratio_over_a_full_window() -> None:
    changes: list[str] = []
    b = breaker(FakeClock(), changes, breaker_consecutive_failures=3, breaker_failure_ratio=0.5, breaker_window=4)

    record_all(b, "FSF")  # 2 of 3 failed, but the window is not full yet
    assert b.state == "closed"
    record_all(b, "S")  # window F S F S: 2 of 4 ≥ 0.5 — opens although never two failures in a row
    assert (b.state, changes) == ("open", ["open"])


def test_breaker_ratio_looks_at_the_last_window_only() -> None:
    changes: list[str] = []
    b = breaker(FakeClock(), changes, breaker_consecutive_failures=3, breaker_failure_ratio=0.5, breaker_window=4)

    record_all(b, "FSSSS")  # the early failure has slid out: window S S S S
    record_all(b, "F")  # window S S S F: 1 of 4
    assert b.state == "closed"
    record_all(b, "SF")  # window S F S F: 2 of 4
    assert (b.state, changes) == ("open", ["open"])


def test_breaker_failed_trial_reopens_with_a_fresh_cooldown() -> None:
    clock, changes = FakeClock(100.0), []
    b = breaker(clock, changes, breaker_consecutive_failures=1, breaker_cooldown_seconds=5.0)
    record_all(b, "F")  # opened at 100

    clock.now = 104.999
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now = 105.0
    b.before_call()  # the trial
    assert b.state == "half_open"
    b.record(False)  # re-opened at 105
    assert (b.state, changes) == ("open", ["open", "half_open", "open"])

    clock.now = 109.999
    with pytest.raises(CircuitOpen):
        b.before_call()
    clock.now = 110.0
    b.before_call()
    assert b.state == "half_open"


def test_breaker_trial_success_closes_and_resets_the_counts() -> None:
    clock, changes = FakeClock(), []
    b = breaker(clock, changes, breaker_consecutive_failures=3, breaker_cooldown_seconds=5.0)
    record_all(b, "FFF")
    clock.now += 5.0
    b.before_call()
    b.record(True)
    assert (b.state, changes) == ("closed", ["open", "half_open", "closed"])

    record_all(b, "FF")  # the run before opening does not count any more
    assert b.state == "closed"
    record_all(b, "F")
    assert b.state == "open"


def test_breaker_cancelled_trial_releases_it_without_changing_state() -> None:
    clock, changes = FakeClock(), []
    b = breaker(clock, changes, breaker_consecutive_failures=1, breaker_cooldown_seconds=5.0)
    record_all(b, "F")
    clock.now += 5.0
    b.before_call()
    with pytest.raises(CircuitOpen, match="trial call is in progress"):
        b.before_call()

    b.record(None)
    assert (b.state, changes) == ("half_open", ["open", "half_open"])
    b.before_call()  # the next call becomes the trial
    with pytest.raises(CircuitOpen):
        b.before_call()


async def test_refusal_counts_as_success_for_the_breaker(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=2)
    attempt = Script(unavailable(), CardNotFound("no such card"), unavailable(), unavailable())

    for expected in (RegionUnavailable, CardNotFound, RegionUnavailable):
        with pytest.raises(expected):
            await call(guard, attempt, NEVER)
    assert guard.breaker.state == "closed"  # the refusal broke the run of failures
    with pytest.raises(RegionUnavailable):
        await call(guard, attempt, NEVER)
    assert guard.breaker.state == "open"
    assert rig.outcomes() == {"unavailable": 3, "refused": 1}


async def test_open_circuit_refuses_without_calling_the_region(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=1, max_attempts=3)
    attempt = Script(unavailable(), "card")
    with pytest.raises(RegionUnavailable):
        await call(guard, attempt, NEVER)

    with pytest.raises(CircuitOpen):
        await call(guard, attempt, SAFE)  # CircuitOpen is not retried, even where retries are safe
    assert attempt.calls == 1
    assert rig.sleeps == []
    assert rig.rejected("circuit_open") == 1
    assert rig.outcomes() == {"unavailable": 1, "circuit_open": 1}


async def test_half_open_lets_one_trial_through_and_its_success_closes(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=1, breaker_cooldown_seconds=5.0)
    states = [rig.circuit_state()]
    with pytest.raises(RegionUnavailable):
        await call(guard, Script(unavailable()), NEVER)
    states.append(rig.circuit_state())

    rig.clock.now += 5.0
    trial = Gate("card")
    running = asyncio.create_task(call(guard, trial))
    await until(lambda: trial.entered == 1)
    states.append(rig.circuit_state())

    second = Script("card")
    with pytest.raises(CircuitOpen):
        await call(guard, second)
    assert second.calls == 0
    assert rig.rejected("circuit_open") == 1

    trial.release.set()
    assert await running == "card"
    states.append(rig.circuit_state())
    assert states == [0, 1, 2, 0]
    assert await call(guard, Script("card")) == "card"  # closed: calls go through again


async def test_failed_trial_reopens_and_the_gauge_follows(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=1, breaker_cooldown_seconds=5.0)
    with pytest.raises(RegionUnavailable):
        await call(guard, Script(unavailable()), NEVER)
    states = [rig.circuit_state()]
    rig.clock.now += 5.0
    trial = Gate(timeout())

    running = asyncio.create_task(call(guard, trial, NEVER))
    await until(lambda: trial.entered == 1)
    states.append(rig.circuit_state())
    trial.release.set()
    with pytest.raises(RegionTimeout):
        await running
    states.append(rig.circuit_state())

    rig.clock.now += 4.9  # the cool-down starts again from the failed trial
    with pytest.raises(CircuitOpen):
        await call(guard, Script("card"))
    rig.clock.now += 0.1
    assert await call(guard, Script("card")) == "card"
    states.append(rig.circuit_state())
    assert states == [1, 2, 1, 0]


# --- bulkhead --------------------------------------------------------------------------------------------------


async def test_bulkhead_refuses_the_call_over_max_in_flight_at_once(rig: Rig) -> None:
    guard = rig.guard(max_in_flight=2)
    gate = Gate("card")
    running = [asyncio.create_task(call(guard, gate)) for _ in range(2)]
    await until(lambda: gate.entered == 2)
    assert rig.in_flight() == 2

    third = Script("card")
    with pytest.raises(RegionBusy) as busy:
        await call(guard, third)
    assert busy.value.reason == "REGION_BUSY"
    assert third.calls == 0
    assert rig.rejected("bulkhead_full") == 1

    gate.release.set()
    assert await asyncio.gather(*running) == ["card", "card"]
    assert rig.in_flight() == 0
    assert await call(guard, third) == "card"  # room again


# --- retries ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "error", "attempts"),
    [
        (SAFE, unavailable, 3),
        (SAFE, timeout, 3),
        (NOT_REACHED, unavailable, 3),
        (NOT_REACHED, timeout, 1),  # a timed-out request may have reached the region
        (NEVER, unavailable, 1),
        (NEVER, timeout, 1),
    ],
)
async def test_retries_follow_the_policy_and_raise_the_last_error(
    rig: Rig, policy: RetryPolicy, error: Callable[[], YikatongError], attempts: int
) -> None:
    guard = rig.guard(max_attempts=3)
    errors = [error() for _ in range(3)]
    attempt = Script(*errors)

    with pytest.raises(type(errors[0])) as raised:
        await call(guard, attempt, policy)
    assert raised.value is errors[attempts - 1]
    assert attempt.calls == attempts
    assert len(rig.sleeps) == attempts - 1
    assert rig.retries() == attempts - 1
    assert rig.outcomes() == {"unavailable" if error is unavailable else "timeout": 1}


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (RegionProtocolError(REGION, "garbled reply"), "protocol_error"),
        (RegionSplitInvalid(REGION, ["fund_pay + cash_pay != total"]), "protocol_error"),
        (CardNotFound("no such card"), "refused"),
    ],
)
async def test_protocol_errors_and_refusals_are_never_retried(rig: Rig, error: YikatongError, outcome: str) -> None:
    attempt = Script(error, "card")
    with pytest.raises(type(error)):
        await call(rig.guard(max_attempts=3), attempt, SAFE)
    assert attempt.calls == 1
    assert rig.sleeps == []
    assert rig.retries() == 0
    assert rig.outcomes() == {outcome: 1}


async def test_success_on_the_second_attempt_returns_the_value(rig: Rig) -> None:
    attempt = Script(unavailable(), "card")
    assert await call(rig.guard(), attempt) == "card"
    assert attempt.calls == 2
    assert rig.retries() == 1
    assert rig.outcomes() == {"ok": 1}
    assert rig.in_flight() == 0


async def test_backoff_sleeps_are_jittered_within_the_exponential_window(rig: Rig) -> None:
    guard = rig.guard(max_attempts=5, backoff_initial_seconds=0.1, backoff_max_seconds=0.25)
    with pytest.raises(RegionUnavailable):
        await call(guard, Script(*(unavailable() for _ in range(5))))
    assert len(rig.sleeps) == 4
    windows = [0.1, 0.2, 0.25, 0.25]  # 0.1 · 2^n, capped at backoff_max_seconds
    assert all(0 < s <= w for s, w in zip(rig.sleeps, windows, strict=True)), rig.sleeps


async def test_seeded_jitter_gives_the_same_sleeps() -> None:
    runs = []
    for _ in range(2):
        rig = Rig()
        guard = rig.guard(rng=random.Random(SEED), max_attempts=4)
        with pytest.raises(RegionUnavailable):
            await call(guard, Script(*(unavailable() for _ in range(4))))
        runs.append(rig.sleeps)
    assert runs[0] == runs[1]


async def test_retry_budget_stops_retries_when_drained(rig: Rig) -> None:
    guard = rig.guard(max_attempts=3, retry_budget_tokens=1.0, retry_budget_ratio=0.0)
    first, second = Script(unavailable(), unavailable(), unavailable()), Script(unavailable(), unavailable())

    with pytest.raises(RegionUnavailable):
        await call(guard, first)
    assert first.calls == 2  # the one token paid for one retry
    with pytest.raises(RegionUnavailable):
        await call(guard, second)
    assert second.calls == 1
    assert rig.retries() == 1
    assert len(rig.sleeps) == 1


@pytest.mark.parametrize(
    ("backoff_seconds", "attempts"),
    [
        (0.001, 3),  # a wait ≤ 1 ms leaves ~49 ms of the 50: retried
        (1e6, 1),  # a wait drawn from [0, 10⁶ s) leaves nothing (fails only if the draw is < 40 ms: p = 4·10⁻⁸)
    ],
)
async def test_no_retry_when_the_backoff_would_outlast_the_deadline(
    rig: Rig, backoff_seconds: float, attempts: int
) -> None:
    guard = rig.guard(max_attempts=3, backoff_initial_seconds=backoff_seconds, backoff_max_seconds=backoff_seconds)
    attempt = Script(unavailable(), unavailable(), unavailable())
    with pytest.raises(RegionUnavailable):
        await call(guard, attempt, SAFE, time_left=lambda: 0.05)
    assert attempt.calls == attempts
    assert len(rig.sleeps) == attempts - 1
    assert rig.retries() == attempts - 1


@pytest.mark.parametrize(("time_left", "cap", "expected"), [(0.3, 1.0, 0.3), (5.0, 1.0, 1.0)])
async def test_attempt_gets_the_remaining_time_capped_per_region(
    rig: Rig, time_left: float, cap: float, expected: float
) -> None:
    attempt = Script("card")
    await call(rig.guard(call_timeout_seconds=cap), attempt, time_left=lambda: time_left)
    assert attempt.timeouts == [expected]


async def test_no_attempt_without_time_left(rig: Rig) -> None:
    attempt = Script("card")
    with pytest.raises(RegionTimeout, match="no time left"):
        await call(rig.guard(), attempt, SAFE, time_left=lambda: 0.005)
    assert attempt.calls == 0
    assert rig.outcomes() == {"timeout": 1}


async def test_spent_deadlines_do_not_open_the_circuit(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=2)
    for _ in range(2):
        with pytest.raises(RegionTimeout):
            await call(guard, Script("card"), SAFE, time_left=lambda: 0.0)
    assert guard.breaker.state == "closed"
    assert rig.circuit_state() == 0


async def test_slow_attempt_times_out_after_the_cap(rig: Rig) -> None:
    calls = 0

    async def slow(timeout: float) -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(1.0)
        return "card"

    guard = rig.guard(call_timeout_seconds=0.02)
    with pytest.raises(RegionTimeout, match=r"no answer within 0\.020s"):
        await call(guard, slow, NOT_REACHED)
    assert calls == 1
    assert rig.outcomes() == {"timeout": 1}
    assert rig.in_flight() == 0


# --- cancellation ----------------------------------------------------------------------------------------------


async def test_cancelled_call_frees_its_slot_and_the_half_open_trial(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=1, breaker_cooldown_seconds=5.0, max_in_flight=1)
    with pytest.raises(RegionUnavailable):
        await call(guard, Script(unavailable()), NEVER)
    rig.clock.now += 5.0
    trial = Gate()
    running = asyncio.create_task(call(guard, trial))
    await until(lambda: trial.entered == 1)

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert rig.in_flight() == 0
    assert (guard.breaker.state, rig.circuit_state()) == ("half_open", 2)
    assert await call(guard, Script("card")) == "card"  # the next call is the trial, and it closes the circuit
    assert rig.circuit_state() == 0


async def test_cancelled_call_is_not_counted_as_ok(rig: Rig) -> None:
    guard = rig.guard()
    gate = Gate()
    running = asyncio.create_task(call(guard, gate))
    await until(lambda: gate.entered == 1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert "ok" not in rig.outcomes()


# --- outcome labels --------------------------------------------------------------------------------------------


async def _ok(rig: Rig) -> None:
    await call(rig.guard(), Script("card"))


async def _refused(rig: Rig) -> None:
    await call(rig.guard(), Script(CardNotFound("no such card")))


async def _unavailable(rig: Rig) -> None:
    await call(rig.guard(), Script(unavailable()), NEVER)


async def _timeout(rig: Rig) -> None:
    await call(rig.guard(), Script(timeout()), NEVER)


async def _protocol_error(rig: Rig) -> None:
    await call(rig.guard(), Script(RegionProtocolError(REGION, "garbled reply")))


async def _circuit_open(rig: Rig) -> None:
    guard = rig.guard(breaker_consecutive_failures=1)
    with pytest.raises(RegionUnavailable):
        await call(guard, Script(unavailable()), NEVER)
    await call(guard, Script("card"))


async def _bulkhead_full(rig: Rig) -> None:
    guard = rig.guard(max_in_flight=1)
    gate = Gate()
    running = asyncio.create_task(call(guard, gate))
    await until(lambda: gate.entered == 1)
    try:
        await call(guard, Script("card"))
    finally:
        gate.release.set()
        await running


@pytest.mark.parametrize(
    ("scenario", "outcome"),
    [
        (_ok, "ok"),
        (_refused, "refused"),
        (_unavailable, "unavailable"),
        (_timeout, "timeout"),
        (_protocol_error, "protocol_error"),
        (_circuit_open, "circuit_open"),
        (_bulkhead_full, "bulkhead_full"),
    ],
)
async def test_each_outcome_is_counted(rig: Rig, scenario: Callable[[Rig], Awaitable[None]], outcome: str) -> None:
    with contextlib.suppress(YikatongError):  # the scenario's last call may fail: only its count matters
        await scenario(rig)
    assert rig.outcomes().get(outcome) == 1
