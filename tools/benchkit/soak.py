"""The soak: mixed load on the hub at a fixed rate for a long while, watched window by window, so that a leak or a
cache that keeps growing shows as resident memory that climbs after warm-up, or as a p99 that creeps up.

Every window reports the calls that *finished* in it (p50, p99, errors), the hub's resident set size at its end
and the hub's CPU per call during it. Warm-up is the first tenth of the run (one window at least): caches fill and
pools open then, so growth is measured from its end.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

from .load import Tally, fixed_rate
from .processes import Fleet, Process
from .workload import Workload

WARM_UP_SHARE = 0.1


def window_seconds(seconds: float) -> float:
    """Twenty windows or so, each of one to thirty seconds."""
    return min(30.0, max(1.0, seconds / 20))


async def soak(
    work: Workload, fleet: Fleet, seconds: float, rate: float, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Drive :meth:`Workload.hub_mixed` at ``rate`` for ``seconds``; the windows and the memory figures."""
    assert fleet.hub is not None
    hub: Process = fleet.hub
    window = window_seconds(seconds)
    tally = Tally()
    rss_start = hub.rss_kib()
    load = asyncio.create_task(fixed_rate(work.hub_mixed(), rate, max(1, round(seconds * rate)), tally))
    started, cpu = time.perf_counter(), hub.cpu_seconds()
    windows: list[dict[str, float]] = []
    while not load.done():
        end = started + (len(windows) + 1) * window
        if end >= started + seconds:  # the last window: every call has started; it ends with the last answer
            await load
        else:
            await asyncio.wait({load}, timeout=max(0.0, end - time.perf_counter()))
        now, cpu_now = time.perf_counter(), hub.cpu_seconds()
        taken = tally.take()
        row = {
            "t_seconds": round(now - started, 1),
            "calls": taken.calls,
            "errors": taken.errors,
            "p50_ms": round(taken.percentile_ms(50), 3),
            "p99_ms": round(taken.percentile_ms(99), 3),
            "rss_kib": hub.rss_kib(),
            "hub_cpu_ms_per_call": round((cpu_now - cpu) * 1000 / max(taken.calls, 1), 3),
        }
        cpu = cpu_now
        windows.append(row)
        if taken.first_error:
            progress(f"  first error of the window: {taken.first_error}")
        progress(_line(row))
    await load
    return _summary(windows, rss_start, seconds, rate, window)


def _line(row: dict[str, float]) -> str:
    return (
        f"t {row['t_seconds']:7.1f} s  calls {row['calls']:6.0f}  errors {row['errors']:4.0f}"
        f"  p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  hub RSS {row['rss_kib'] / 1024:7.1f} MiB"
        f"  hub CPU {row['hub_cpu_ms_per_call']:5.2f} ms/call"
    )


def _summary(
    windows: list[dict[str, float]], rss_start: int, seconds: float, rate: float, window: float
) -> dict[str, Any]:
    warm = max(1, math.ceil(len(windows) * WARM_UP_SHARE))
    rss_warm, rss_end = windows[warm - 1]["rss_kib"], windows[-1]["rss_kib"]
    measured = [w for w in windows[warm:] if w["calls"]] or windows[-1:]
    return {
        "seconds": seconds,
        "rate_per_second": rate,
        "window_seconds": window,
        "warm_up_seconds": windows[warm - 1]["t_seconds"],
        "calls": sum(w["calls"] for w in windows),
        "errors": sum(w["errors"] for w in windows),
        "rss_start_kib": rss_start,
        "rss_after_warm_up_kib": rss_warm,
        "rss_end_kib": rss_end,
        "rss_growth_after_warm_up_pct": round((rss_end - rss_warm) * 100 / rss_warm, 2),
        "p99_first_ms": measured[0]["p99_ms"],
        "p99_last_ms": measured[-1]["p99_ms"],
        "p99_max_ms": max(w["p99_ms"] for w in measured),
        "windows": windows,
    }
