"""Load shapes: a fixed number of callers each calling back to back (throughput), and calls started on a fixed
schedule whatever the answers do (latency at a given rate).

Latency at a fixed rate is measured from when a call was *due*, not from when it was sent, so a server that
stalls is charged for the calls that queued behind the stall (no coordinated omission). Times come from
``time.perf_counter``: uvloop's ``loop.time()`` advances in whole milliseconds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Call = Callable[[int], Awaitable[object]]


@dataclass
class Tally:
    """What calls did: their latencies (seconds, successful calls only) and failures."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    @property
    def calls(self) -> int:
        return len(self.latencies) + self.errors

    def failed(self, exc: BaseException) -> None:
        if not self.errors:
            self.first_error = f"{type(exc).__name__}: {exc}"[:300]
        self.errors += 1

    def take(self) -> Tally:
        """What was tallied so far, leaving this one empty (to cut a long run into windows)."""
        taken = Tally(self.latencies, self.errors, self.first_error)
        self.latencies, self.errors, self.first_error = [], 0, ""
        return taken

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile of the latencies (nearest rank), in milliseconds; NaN when there are none."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
        return ordered[rank] * 1000


async def _timed(call: Call, i: int, started: float, tally: Tally) -> None:
    try:
        await call(i)
    except Exception as exc:  # a failed call is counted and reported, never fatal to the run
        tally.failed(exc)
        return
    tally.latencies.append(time.perf_counter() - started)


async def closed_loop(
    call: Call, calls: int, concurrency: int, tally: Tally | None = None, seconds: float = math.inf
) -> tuple[Tally, float]:
    """``concurrency`` callers share ``calls`` calls, each starting its next call when the last one answered; none
    starts after ``seconds`` (a server that stalls cuts the phase short rather than stretching the run).

    Returns:
        The tally and the seconds the whole took.
    """
    tally = tally if tally is not None else Tally()
    numbers = iter(range(calls))
    started = time.perf_counter()
    last_start = started + seconds

    async def caller() -> None:
        for i in numbers:
            if (now := time.perf_counter()) > last_start:
                return
            await _timed(call, i, now, tally)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return tally, time.perf_counter() - started


async def fixed_rate(call: Call, rate: float, calls: int, tally: Tally | None = None, first: int = 0) -> Tally:
    """Start call ``i`` at ``i / rate`` seconds, whether or not earlier calls have answered; wait for them all.

    Args:
        call: the call, given its number (``first`` + i).
        rate: calls started per second.
        calls: how many.
        tally: where to count (a fresh one by default).
        first: the number of the first call, so that consecutive runs pick different people.
    """
    tally = tally if tally is not None else Tally()
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    running: set[asyncio.Task[None]] = set()
    for i in range(calls):
        due = start + i / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(_timed(call, first + i, due, tally))
        running.add(task)
        task.add_done_callback(running.discard)
    if running:
        await asyncio.wait(running)
    return tally
