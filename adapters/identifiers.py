"""Validators and check characters for the identifiers of DESIGN §4.1.

Each ``parse_*`` function returns the normalised value or raises :class:`InvalidIdentifier` naming what is
wrong; the hub turns that into ``INVALID_ARGUMENT`` naming the request field. The ``*_check`` functions
are public so that sandboxes and tests can build valid identifiers.
"""

from __future__ import annotations

import datetime as dt
import re

SSN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SSN_CHECK = "10X98765432"
CARD_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
CARD_CODE_MARK = "D156000005"

_SSN_SHAPE = re.compile(r"[0-9]{17}[0-9X]")
_CARD_SHAPE = re.compile(r"[0-9A-Z]{9}")
_CODE_SHAPE = re.compile(r"[0-9]{6}D156000005[0-9A-F]{16}")
_AREA_SHAPE = re.compile(r"[0-9]{6}")


class InvalidIdentifier(ValueError):
    """An identifier failed validation; ``problem`` says how, in words a caller can act on."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def ssn_check(first17: str) -> str:
    """The check character of a social security number from its first 17 digits."""
    return SSN_CHECK[sum(int(c) * w for c, w in zip(first17, SSN_WEIGHTS, strict=True)) % 11]


def card_number_check(first8: str) -> str:
    """The check character of a card number from its first 8 characters."""
    total = sum(int(c, 36) * w for c, w in zip(first8, CARD_WEIGHTS, strict=True))
    value = 11 - total % 11
    return "X" if value == 10 else "0" if value == 11 else str(value)


def parse_area(value: str) -> str:
    """A 6-digit GB/T 2260 area code whose first two digits are a province code (11–82)."""
    if not _AREA_SHAPE.fullmatch(value):
        raise InvalidIdentifier("must be 6 digits")
    if not 11 <= int(value[:2]) <= 82:
        raise InvalidIdentifier(f"{value[:2]} is not a province code")
    return value


def parse_ssn(value: str, *, today: dt.date | None = None) -> str:
    """An 18-character social security number, upper-cased; birth date real and not in the future."""
    ssn = value.upper()
    if not _SSN_SHAPE.fullmatch(ssn):
        raise InvalidIdentifier("must be 17 digits and a check character (0-9 or X)")
    try:
        parse_area(ssn[:6])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"area of origin {exc.problem}") from None
    try:
        born = dt.datetime.strptime(ssn[6:14], "%Y%m%d").date()
    except ValueError:
        raise InvalidIdentifier("birth date is not a real date") from None
    if born > (today or dt.date.today()) or born.year < 1900:
        raise InvalidIdentifier("birth date is out of range")
    if ssn_check(ssn[:17]) != ssn[17]:
        raise InvalidIdentifier("check character does not match")
    return ssn


def parse_card_number(value: str) -> str:
    """A 9-character card number: 8 of [0-9A-Z] and a check character."""
    if not _CARD_SHAPE.fullmatch(value):
        raise InvalidIdentifier("must be 9 characters of 0-9 and A-Z")
    if card_number_check(value[:8]) != value[8]:
        raise InvalidIdentifier("check character does not match")
    return value


def parse_card_identification_code(value: str) -> str:
    """A 32-character card identification code: issuing area, ``D156000005``, 16 hex characters."""
    if not _CODE_SHAPE.fullmatch(value):
        raise InvalidIdentifier("must be a 6-digit area, D156000005 and 16 upper-case hex characters")
    try:
        parse_area(value[:6])
    except InvalidIdentifier as exc:
        raise InvalidIdentifier(f"issuing area {exc.problem}") from None
    return value
