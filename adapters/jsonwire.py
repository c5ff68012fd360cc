"""JSON on a region's wire: typed field reads that name the field's path, and the parts of an answer.

Both sides of a JSON-over-HTTP protocol read with :class:`Fields`. An adapter reads the region's answers with
it (a :class:`FieldError` is a ``ValueError``, which :func:`adapters.http.transport_errors` turns into
``RegionProtocolError``); a sandbox reads requests with it and answers a :class:`FieldError` as bad input,
naming ``str(error)``'s field (``lines[2].amountFen must be a whole number from 0 to …``).

::

    WireError (ValueError)      a message that is not shaped as the protocol says
    └── FieldError              one field of it, named by its path (``person.ssn``, ``items[0].amount``)

    ErrorAnswer (Exception)     a well-formed answer that carries the region's error code instead of a result
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

from adapters.identifiers import InvalidIdentifier, parse_card_number

T = TypeVar("T")
E = TypeVar("E", bound=enum.Enum)

INT64_MAX = 2**63 - 1
"""The largest amount a wire carries: an int64, as in the hub's API."""

_AREA = re.compile(r"[0-9]{6}")
_MESSAGE_ID = re.compile(r"[\x20-\x7e]{1,64}")
# RFC 3339: a full date, a full time with an optional fraction, and a mandatory offset (Z or ±hh:mm).
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_DATES = {  # layout → its shape, with the year, month and day as groups
    "YYYY-MM-DD": re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"),
    "YYYYMMDD": re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})"),
}


class WireError(ValueError):
    """A message that is not shaped as its protocol says."""


class FieldError(WireError):
    """A field that is missing or not shaped as the protocol says.

    Attributes:
        field: the field's path in the message, e.g. ``items[0].amount``.
        problem: what is wrong with it, e.g. ``must be a non-empty string``.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field, self.problem = field, problem


class ErrorAnswer(Exception):
    """A well-formed answer in which the region reports an error code rather than a result.

    An adapter's client raises it where it reads the answer, and turns it into the matching ``adapters.errors``
    class at its one choke point (see :func:`adapters.http.transport_errors`).

    Attributes:
        status: the HTTP status the answer came with.
        code: the region's error code (a string or a number, as the protocol writes it).
        message: the region's message.
        data: what the answer carries beside the code (details of some refusals), or ``None``.
    """

    def __init__(self, status: int, code: str | int, message: str, data: Any = None) -> None:
        super().__init__(f"HTTP {status}, code {code}: {message}")
        self.status, self.code, self.message, self.data = status, code, message, data

    @property
    def details(self) -> Fields:
        """:attr:`data` for typed reads, its fields named ``data.…``."""
        return Fields(self.data, "data")


def dumps(body: Mapping[str, Any]) -> bytes:
    """A JSON object as sent: compact, UTF-8, Chinese kept as it is (what a signature is computed over)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads(status: int, payload: bytes) -> Fields:
    """The JSON answer of an HTTP exchange, for typed reads.

    Raises:
        WireError: the payload is not JSON.
    """
    try:
        return Fields(json.loads(payload))
    except ValueError:
        raise WireError(f"HTTP {status} answer is not JSON: {payload[:80]!r}") from None


class Fields:
    """Typed reads from one JSON object; each failed read raises :class:`FieldError` naming the field's path.

    Args:
        data: the object (anything else is refused on the first read).
        path: where it sits in the message (``""`` for the message itself), for error messages.
    """

    def __init__(self, data: Any, path: str = "") -> None:
        self.data, self.path = data, path

    def name(self, key: str) -> str:
        """The path of ``key`` in this object."""
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, problem: str) -> FieldError:
        """The error to raise for a field this object holds, e.g. one that contradicts another."""
        return FieldError(self.name(key), problem)

    def _get(self, key: str, default: Any = None) -> Any:
        if not isinstance(self.data, dict):
            raise FieldError(self.path or "the message", "must be a JSON object")
        return self.data.get(key, default)

    # --- values as they come -----------------------------------------------------------------------------------

    def value(self, key: str, kind: type[T]) -> T:
        """A required value of exactly the JSON type ``kind`` (``str``, ``int``, ``bool``, ``list``, ``dict``).

        A string may be empty and a number any size; an ``int`` is never a ``bool``. For reading answers, where the
        region's own values are taken as they are.
        """
        value = self._get(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.error(key, f"must be {kind.__name__}, got {value!r}")
        return value

    def nested(self, key: str) -> Fields:
        """A required JSON object inside this one."""
        value = self._get(key)
        if not isinstance(value, dict):
            raise self.error(key, "must be a JSON object")
        return Fields(value, self.name(key))

    def nested_or_none(self, key: str) -> Fields | None:
        """A JSON object inside this one, or ``None`` when it is absent or ``null``."""
        return None if self._get(key) is None else self.nested(key)

    def objects(self, key: str, *, allow_empty: bool = False) -> list[Fields]:
        """A list of JSON objects, each element named by its index (``items[2]``); non-empty unless allowed."""
        value = self._get(key)
        if not isinstance(value, list) or not (value or allow_empty):
            raise self.error(key, "must be a list" if allow_empty else "must be a non-empty list")
        return [Fields(item, f"{self.name(key)}[{i}]") for i, item in enumerate(value)]

    # --- values a request must get right -----------------------------------------------------------------------

    def text(self, key: str) -> str:
        """A required, non-empty string."""
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise self.error(key, "must be a non-empty string")
        return value

    def optional(self, key: str) -> str:
        """An optional string: ``""`` when absent (a ``null`` is not a string)."""
        value = self._get(key, "")
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        return value

    def integer(self, key: str, low: int = 0, high: int = INT64_MAX) -> int:
        """A required whole number (never a boolean or a decimal) from ``low`` to ``high``."""
        value = self._get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(key, f"must be a whole number from {low} to {high}")
        return value

    def boolean(self, key: str) -> bool:
        """A required ``true``/``false``."""
        value = self._get(key)
        if not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def area(self, key: str) -> str:
        """A required 6-digit area code."""
        value = self.text(key)
        if not _AREA.fullmatch(value):
            raise self.error(key, "must be a 6-digit area code")
        return value

    def date(self, key: str, layout: str = "YYYY-MM-DD") -> str:
        """A required real calendar date written as ``layout`` (``YYYY-MM-DD`` or ``YYYYMMDD``), as ``YYYY-MM-DD``."""
        value = self.text(key)
        match = _DATES[layout].fullmatch(value)
        try:
            if match is None:
                raise ValueError(value)
            return dt.date(int(match[1]), int(match[2]), int(match[3])).isoformat()
        except ValueError:
            raise self.error(key, f"must be a date {layout}") from None

    def moment(self, key: str) -> str:
        """A required RFC 3339 time with its offset, returned as sent."""
        value = self.text(key)
        if not is_rfc3339(value):
            raise self.error(key, "must be an RFC 3339 time with an offset")
        return value

    def coded(self, key: str, table: Mapping[str, T]) -> T:
        """A required code of the protocol, looked up in ``table`` (wire code → domain value)."""
        value = self.text(key)
        if value not in table:
            raise self.error(key, f"must be one of {', '.join(table)}")
        return table[value]

    def choice(self, key: str, kind: type[E]) -> E:
        """A required member of the enum ``kind``, written as its value."""
        return self.coded(key, {str(member.value): member for member in kind})

    def card_number(self, key: str) -> str:
        """A required card number: 8 of [0-9A-Z] and its check character."""
        try:
            return parse_card_number(self.text(key))
        except InvalidIdentifier as exc:
            raise self.error(key, exc.problem) from None

    def message_id(self, key: str) -> str:
        """A required message id: 1–64 printable ASCII characters."""
        value = self.text(key)
        if not is_message_id(value):
            raise self.error(key, "must be 1 to 64 printable ASCII characters")
        return value


def is_message_id(value: str) -> bool:
    """Whether ``value`` is a message id: 1–64 printable ASCII characters (a UUID, the hub's request ids)."""
    return _MESSAGE_ID.fullmatch(value) is not None


def is_rfc3339(value: str) -> bool:
    """Whether ``value`` is a real RFC 3339 date-time with its offset (``2025-03-01T08:30:00+08:00``)."""
    if not _RFC3339.fullmatch(value):
        return False
    try:
        dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
