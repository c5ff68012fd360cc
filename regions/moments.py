"""Times on the sandboxes' wires: RFC 3339 with an explicit offset, as the hub writes them."""

from __future__ import annotations

import datetime as dt
import re

# A full date, a full time with an optional fraction, and a mandatory offset (Z or ±hh:mm).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def is_rfc3339(value: str) -> bool:
    """Whether ``value`` is a real RFC 3339 date-time with its offset (``2025-03-01T08:30:00+08:00``)."""
    if not _RFC3339.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
