"""Clearing periods and booking days, in Beijing time (UTC+8): a period is a calendar month ``YYYY-MM``."""

from __future__ import annotations

import datetime as dt
import re

BEIJING = dt.timezone(dt.timedelta(hours=8))
_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")  # ASCII digits only: \d would take ٢٠٢٥


def period_of(at: float) -> str:
    """The period a moment falls in."""
    return dt.datetime.fromtimestamp(at, BEIJING).strftime("%Y-%m")


def day_of(at: float) -> str:
    """The Beijing calendar day of a moment, ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(at, BEIJING).date().isoformat()


def is_period(text: str) -> bool:
    """A real calendar month ``YYYY-MM`` (years 0001 to 9998, so that the month after it exists too)."""
    found = _PERIOD.fullmatch(text)
    return found is not None and 1 <= int(found.group(1)) <= 9998


def next_period(period: str) -> str:
    year, month = int(period[:4]), int(period[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def period_end(period: str) -> float:
    """The first moment after the period (midnight Beijing time starting the next month)."""
    following = next_period(period)
    return dt.datetime(int(following[:4]), int(following[5:7]), 1, tzinfo=BEIJING).timestamp()


def stamp(at: float | None) -> str:
    """RFC 3339 in Beijing time, or "" for no moment."""
    return "" if at is None else dt.datetime.fromtimestamp(at, BEIJING).isoformat(timespec="seconds")
