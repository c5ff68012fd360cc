"""Validation of the identifiers and fields callers send (DESIGN §4.1, §6), before any region is called.

Each function returns the normalised value or raises :class:`~adapters.errors.InvalidArgument` naming the field
(``card.card_number``). The API's codec and the e-card token verifier both use them, so a card named in a token is
checked exactly like a physical card.
"""

from __future__ import annotations

from collections.abc import Callable

from adapters import domain
from adapters.errors import InvalidArgument
from adapters.identifiers import (
    InvalidIdentifier,
    parse_area,
    parse_card_identification_code,
    parse_card_number,
    parse_ssn,
)

MAX_NAME = 64


def checked(field: str, parse: Callable[[str], str], value: str) -> str:
    """``parse(value)``, required, with its problem reported against ``field``."""
    if not value:
        raise InvalidArgument(field, "is required")
    try:
        return parse(value)
    except InvalidIdentifier as exc:
        raise InvalidArgument(field, exc.problem) from None


def ssn(value: str, field: str) -> str:
    return checked(field, parse_ssn, value)


def area(value: str, field: str) -> str:
    return checked(field, parse_area, value)


def request_id(value: str, field: str = "request_id") -> str:
    """1–64 printable ASCII characters (DESIGN §6)."""
    if not value:
        raise InvalidArgument(field, "is required")
    if len(value) > 64 or not all(" " < c <= "~" for c in value):
        raise InvalidArgument(field, "must be 1 to 64 printable ASCII characters")
    return value


def name(value: str, field: str, *, required: bool = True) -> str:
    text = value.strip()
    if not text:
        if required:
            raise InvalidArgument(field, "is required")
        return ""
    if len(text) > MAX_NAME or not text.isprintable():
        raise InvalidArgument(field, f"must be at most {MAX_NAME} printable characters")
    return text


def credential(
    social_security_number: str,
    card_number: str,
    card_identification_code: str,
    issuing_area: str,
    holder_name: str,
    field: str,
    *,
    name_required: bool,
) -> domain.CardCredential:
    """A validated credential whose issuing area is known (from the identification code or stated)."""
    holder_ssn = ssn(social_security_number, f"{field}.social_security_number")
    number = checked(f"{field}.card_number", parse_card_number, card_number)
    code = ""
    if card_identification_code:
        code = checked(f"{field}.card_identification_code", parse_card_identification_code, card_identification_code)
    issued_in = area(issuing_area, f"{field}.issuing_area") if issuing_area else code[:6]
    if not issued_in:
        raise InvalidArgument(f"{field}.card_identification_code", "is required when issuing_area is not given")
    if code and issued_in != code[:6]:
        raise InvalidArgument(f"{field}.issuing_area", "does not agree with the card identification code")
    holder = name(holder_name, f"{field}.holder_name", required=name_required)
    return domain.CardCredential(holder_ssn, number, code, issued_in, holder)
