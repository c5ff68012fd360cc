"""Resilience per region: deadline, retries under a budget, a circuit breaker and a bulkhead (DESIGN §2, §6).

Every call to a region passes one :class:`RegionGuard`:

1. **Bulkhead** — at most ``max_in_flight`` calls to the region at once; one more is refused at once with
   ``RESOURCE_EXHAUSTED`` / ``REGION_BUSY`` instead of queueing without bound.
2. **Circuit breaker** — ``breaker_consecutive_failures`` failures in a row, or a failure ratio of
   ``breaker_failure_ratio`` over the last ``breaker_window`` calls, opens it: calls then fail inside the hub with
   ``UNAVAILABLE`` / ``REGION_CIRCUIT_OPEN``. After ``breaker_cooldown_seconds`` one call (a request or the
   health probe) goes through half-open: success closes it, failure opens it again. Only trouble talking to
   the region counts as failure; a refusal is the region answering.
3. **Deadline** — each attempt gets the caller's remaining time less a margin, capped per region.
4. **Retries** (tenacity) with jittered exponential backoff, at most ``max_attempts`` attempts, only where
   DESIGN §6 makes them safe (the method's :class:`~adapters.interface.RetryPolicy` and the error's
   ``retryable`` and ``may_have_reached``), only while time is left, and only while the region's retry
   budget — a token bucket that each call refills by ``retry_budget_ratio`` and each retry drains by one — has
   tokens, so that a failing region never receives a retry storm. The retry machinery is built only once a
   first attempt has failed.

What counts as a failure, and the outcome label of a call, are the error's own attributes (``adapters.errors``).

The clock, the sleep and the jitter are injectable, so tests of backoff and breakers take milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from adapters.errors import RegionTimeout, YikatongError
from adapters.interface import RetryPolicy
from gateway.errors import CircuitOpen, RegionBusy
from gateway.metrics import CIRCUIT_STATES, Metrics
from regions.config import ResilienceSettings

T = TypeVar("T")
log = logging.getLogger("yikatong.resilience")

MIN_ATTEMPT_SECONDS = 0.01  # an attempt with less time than this left is not started


class CircuitBreaker:
    """Closed → open → half-open → closed, from the outcomes of calls (module docstring)."""

    def __init__(
        self,
        region: str,
        settings: ResilienceSettings,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] = lambda state: None,
    ) -> None:
        self.region, self.settings, self.clock, self.on_change = region, settings, clock, on_change
        self.state = "closed"
        self._opened_at = 0.0
        self._probing = False
        self._consecutive = 0
        self._window: deque[bool] = deque()

    def before_call(self) -> None:
        """Let the call through, or raise :class:`CircuitOpen`."""
        if self.state == "open":
            if self.clock() - self._opened_at < self.settings.breaker_cooldown_seconds:
                raise CircuitOpen(self.region, "circuit open: recent calls failed")
            self._set("half_open")
        if self.state == "half_open":
            if self._probing:
                raise CircuitOpen(self.region, "circuit half-open: a trial call is in progress")
            self._probing = True

    def record(self, ok: bool | None) -> None:
        """The call's outcome: True success, False failure, None neither (cancelled)."""
        if self.state == "half_open":
            self._probing = False
            if ok is not None:
                self._reset() if ok else self._open()
            return
        if ok is None:
            return
        self._consecutive = 0 if ok else self._consecutive + 1
        self._window.append(ok)
        while len(self._window) > self.settings.breaker_window:
            self._window.popleft()
        failures = self._window.count(False)
        full = len(self._window) >= self.settings.breaker_window
        if self._consecutive >= self.settings.breaker_consecutive_failures or (
            full and failures >= self.settings.breaker_failure_ratio * len(self._window)
        ):
            self._open()

    def _open(self) -> None:
        self._opened_at = self.clock()
        self._set("open")

    def _reset(self) -> None:
        self._consecutive = 0
        self._window.clear()
        self._set("closed")

    def _set(self, state: str) -> None:
        if state != self.state:
            log.warning("region %s circuit %s → %s", self.region, self.state, state)
            self.state = state
            self.on_change(state)


class RetryBudget:
    """A token bucket: each call adds ``ratio`` tokens (up to ``capacity``), each retry takes one."""

    def __init__(self, ratio: float, capacity: float) -> None:
        self.ratio, self.capacity = ratio, capacity
        self.tokens = capacity

    def deposit(self) -> None:
        self.tokens = min(self.capacity, self.tokens + self.ratio)

    def can_retry(self) -> bool:
        return self.tokens >= 1.0

    def withdraw(self) -> None:
        self.tokens -= 1.0


class RegionGuard:
    """Bulkhead, breaker, deadline and retries around the calls to one region.

    Args:
        region: the region id.
        settings: the region's resilience settings.
        metrics: where call outcomes, latency, retries, rejections and breaker state are counted.
        clock: monotonic clock for the breaker.
        sleep: the backoff sleep.
        rng: jitter source for the backoff.
    """

    def __init__(
        self,
        region: str,
        settings: ResilienceSettings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.region, self.settings, self.metrics = region, settings, metrics
        self.sleep, self.rng = sleep, rng or random.Random()
        self.breaker = CircuitBreaker(region, settings, clock, self._breaker_changed)
        self.budget = RetryBudget(settings.retry_budget_ratio, settings.retry_budget_tokens)
        self.in_flight = 0
        metrics.circuit_state.labels(region).set(CIRCUIT_STATES["closed"])
        self._in_flight_gauge = metrics.region_in_flight.labels(region)
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}  # (operation, outcome) → (counter, histogram)

    def _breaker_changed(self, state: str) -> None:
        self.metrics.circuit_state.labels(self.region).set(CIRCUIT_STATES[state])

    async def run(
        self,
        operation: str,
        policy: RetryPolicy,
        attempt: Callable[[float], Awaitable[T]],
        time_left: Callable[[], float],
    ) -> T:
        """Run ``attempt(timeout)`` under the guard; ``time_left()`` is the call's remaining budget in seconds."""
        if self.in_flight >= self.settings.max_in_flight:
            self.metrics.region_rejected.labels(self.region, "bulkhead_full").inc()
            self.metrics.region_requests.labels(self.region, operation, "bulkhead_full").inc()
            raise RegionBusy(self.region, f"{self.in_flight} calls in flight, the most allowed")
        self.in_flight += 1
        self._in_flight_gauge.inc()
        self.budget.deposit()
        started = time.perf_counter()
        outcome = "ok"
        try:
            try:
                return await self._attempt(attempt, time_left)
            except YikatongError as exc:
                if not self._may_retry(exc, policy):
                    raise
                first_failure = exc
            return await self._with_retries(operation, policy, attempt, time_left, first_failure)
        except YikatongError as exc:
            outcome = exc.outcome
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except BaseException:
            outcome = "error"
            raise
        finally:
            self.in_flight -= 1
            self._in_flight_gauge.dec()
            requests, seconds = self._metrics_of(operation, outcome)
            requests.inc()
            seconds.observe(time.perf_counter() - started)

    def _metrics_of(self, operation: str, outcome: str) -> tuple[Any, Any]:
        """The label children of a call's outcome, resolved once each."""
        children = self._children.get((operation, outcome))
        if children is None:
            children = self._children[(operation, outcome)] = (
                self.metrics.region_requests.labels(self.region, operation, outcome),
                self.metrics.region_seconds.labels(self.region, operation),
            )
        return children

    def _may_retry(self, exc: BaseException, policy: RetryPolicy) -> bool:
        """Whether a failed attempt may be sent again; once the circuit has opened, the caller gets the
        region's real error, not CircuitOpen."""
        if not isinstance(exc, YikatongError) or not exc.retryable or policy is RetryPolicy.NEVER:
            return False
        if policy is RetryPolicy.NOT_REACHED and exc.may_have_reached:
            return False
        return self.budget.can_retry() and self.breaker.state != "open"

    async def _with_retries(
        self,
        operation: str,
        policy: RetryPolicy,
        attempt: Callable[[float], Awaitable[T]],
        time_left: Callable[[], float],
        first_failure: YikatongError,
    ) -> T:
        """The retries after a failed first attempt (tenacity, built only when needed)."""
        replay: list[YikatongError] = [first_failure]

        async def again() -> T:
            if replay:  # tenacity's first attempt is the one that already failed
                raise replay.pop()
            return await self._attempt(attempt, time_left)

        async def before_sleep(state: RetryCallState) -> None:
            self.budget.withdraw()
            self.metrics.region_retries.labels(self.region, operation).inc()

        retrying = AsyncRetrying(
            stop=stop_any(stop_after_attempt(self.settings.max_attempts), _OutOfTime(time_left)),
            wait=_JitteredBackoff(self.settings.backoff_initial_seconds, self.settings.backoff_max_seconds, self.rng),
            retry=retry_if_exception(lambda exc: self._may_retry(exc, policy)),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(again)

    async def _attempt(self, attempt: Callable[[float], Awaitable[T]], time_left: Callable[[], float]) -> T:
        timeout = min(time_left(), self.settings.call_timeout_seconds)
        if timeout < MIN_ATTEMPT_SECONDS:  # nothing is sent, so the breaker learns nothing
            raise RegionTimeout(self.region, "no time left of the caller's deadline")
        try:
            self.breaker.before_call()
        except CircuitOpen:
            self.metrics.region_rejected.labels(self.region, "circuit_open").inc()
            raise
        ok: bool | None = None
        try:
            async with asyncio.timeout(timeout):
                result = await attempt(timeout)
            ok = True
            return result
        except TimeoutError:
            ok = False
            raise RegionTimeout(self.region, f"no answer within {timeout:.3f}s") from None
        except YikatongError as exc:
            ok = not exc.breaker_failure  # a refusal is the region answering
            raise
        finally:
            self.breaker.record(ok)


class _JitteredBackoff(wait_base):
    """Full jitter: a uniform wait up to ``initial × 2^(attempt − 1)``, never above ``most``."""

    def __init__(self, initial: float, most: float, rng: random.Random) -> None:
        self.initial, self.most, self.rng = initial, most, rng

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.rng.uniform(0.0, min(self.most, self.initial * 2 ** (retry_state.attempt_number - 1)))


class _OutOfTime(stop_base):
    """Stop when the wait before the next attempt would leave it no time."""

    def __init__(self, time_left: Callable[[], float]) -> None:
        self.time_left = time_left

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.time_left() - (retry_state.upcoming_sleep or 0.0) < MIN_ATTEMPT_SECONDS
