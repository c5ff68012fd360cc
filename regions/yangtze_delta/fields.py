"""Reading and writing the values of the 长三角 envelope's ``input.data`` and ``output``.

Every reader raises :class:`BadInput` naming the field; the server answers that with ``BAD_INPUT``. These are
the region's own checks of what the adapter sent, against the codes of ``adapters.yangtze_delta.protocol``.
Amounts travel as yuan strings with exactly two decimals (``"123.45"``); they are read into and written
from integer fen with integer arithmetic only, never through a float, and with this module's own code rather
than the adapter's, so that the sandbox checks the adapter's conversion instead of repeating it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from adapters.yangtze_delta.protocol import FLAG_VALUES

INT64_MAX = 2**63 - 1

# ASCII digits only: ``\d`` would also accept other scripts' digits, which ``int()`` reads.
_YUAN = re.compile(r"(-?)(0|[1-9][0-9]{0,18})\.([0-9]{2})")
_AREA = re.compile(r"[0-9]{6}")
_COUNT = re.compile(r"[1-9][0-9]{0,8}")


class BadInput(Exception):
    """The envelope or its input cannot be read; answered with ``BAD_INPUT``."""


def yuan(fen: int) -> str:
    """``12345`` fen → ``"123.45"``; negative amounts keep their sign (``-5`` → ``"-0.05"``)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def parse_yuan(value: object) -> int:
    """``"123.45"`` → ``12345`` fen; raises ``ValueError`` for anything but ``[-]digits.dd`` within int64."""
    match = _YUAN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a yuan amount with two decimals")
    fen = int(match[2]) * 100 + int(match[3])
    if fen > INT64_MAX or (match[1] and not fen):
        raise ValueError(f"{value!r} is out of range or a negative zero")
    return -fen if match[1] else fen


def text(data: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    """A string field; an absent optional field reads as ``""``."""
    value = data.get(key, "")
    if not isinstance(value, str):
        raise BadInput(f"{key} must be a string")
    if required and not value:
        raise BadInput(f"{key} is required")
    return value


def message_id(data: Mapping[str, Any], key: str) -> str:
    """A message id: 1–64 characters."""
    value = text(data, key)
    if len(value) > 64:
        raise BadInput(f"{key} is longer than 64 characters")
    return value


def name(data: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    """A string field that must be one of ``allowed``."""
    value = text(data, key)
    if value not in allowed:
        raise BadInput(f"{key} must be one of {', '.join(allowed)}")
    return value


def flag(data: Mapping[str, Any], key: str) -> bool:
    """A ``"1"``/``"0"`` flag."""
    return name(data, key, FLAG_VALUES) == "1"


def area(data: Mapping[str, Any], key: str) -> str:
    """A 6-digit administrative area code."""
    value = text(data, key)
    if not _AREA.fullmatch(value):
        raise BadInput(f"{key} must be a 6-digit area code")
    return value


def date(data: Mapping[str, Any], key: str) -> str:
    """A real calendar date written ``YYYY-MM-DD``."""
    value = text(data, key)
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise BadInput(f"{key} must be a date YYYY-MM-DD") from None
    if parsed.isoformat() != value:
        raise BadInput(f"{key} must be a date YYYY-MM-DD")
    return value


def count(data: Mapping[str, Any], key: str) -> int:
    """A positive whole number written as a string of digits (``"3"``)."""
    value = text(data, key)
    if not _COUNT.fullmatch(value):
        raise BadInput(f"{key} must be a whole number ≥ 1 written as a string")
    return int(value)


def amount(data: Mapping[str, Any], key: str) -> int:
    """A non-negative yuan amount, in fen."""
    try:
        fen = parse_yuan(data.get(key))
    except ValueError:
        raise BadInput(f'{key} must be a yuan amount with two decimals, e.g. "123.45"') from None
    if fen < 0:
        raise BadInput(f"{key} must not be negative")
    return fen


def rows(data: Mapping[str, Any], key: str, *, limit: int) -> list[Mapping[str, Any]]:
    """A non-empty list of at most ``limit`` objects."""
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise BadInput(f"{key} must be a list of objects")
    if not 1 <= len(value) <= limit:
        raise BadInput(f"{key} must have from 1 to {limit} rows")
    return value
