"""The SDK's wire helpers: JSON field reads that name the field's path, and refusal codes read both ways."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from adapters import REGION_REFUSALS, FieldError, Fields, RefusalCodes, WireError
from adapters.domain import CardStatus
from adapters.errors import CardNotFound, CardStateConflict, IdempotencyKeyReused
from adapters.jsonwire import ErrorAnswer, dumps, is_rfc3339, loads
from gateway.errors import CardNotUsable


class Colour(enum.Enum):
    RED = "R"
    GREEN = "G"


BILL: dict[str, Any] = {
    "person": {"ssn": "440106199001011234", "name": "张三"},
    "items": [{"amount": 100, "class": "A"}, {"amount": "100", "class": "A"}],
    "level": 2,
    "flag": True,
    "empty": "",
    "nothing": None,
}


@pytest.mark.parametrize(
    ("read", "field", "problem"),
    [
        (lambda f: f.nested("person").text("card_no"), "person.card_no", "must be a non-empty string"),
        (lambda f: f.objects("items")[1].integer("amount"), "items[1].amount", "must be a whole number from 0 to"),
        (lambda f: f.integer("flag"), "flag", "must be a whole number"),  # a boolean is no number
        (lambda f: f.integer("level", low=3), "level", "must be a whole number from 3 to"),
        (lambda f: f.boolean("level"), "level", "must be true or false"),
        (lambda f: f.text("empty"), "empty", "must be a non-empty string"),
        (lambda f: f.optional("nothing"), "nothing", "must be a string"),  # null is not an absent string
        (lambda f: f.objects("missing"), "missing", "must be a non-empty list"),
        (lambda f: Fields(["x"], "items[0]").text("code"), "items[0]", "must be a JSON object"),
        (lambda f: f.nested("level"), "level", "must be a JSON object"),
        (lambda f: f.value("level", bool), "level", "must be bool, got 2"),
        (lambda f: f.value("flag", int), "flag", "must be int, got True"),
        (lambda f: f.choice("empty", Colour), "empty", "must be a non-empty string"),
        (lambda f: Fields({"c": "B"}).choice("c", Colour), "c", "must be one of R, G"),
        (lambda f: Fields({"d": "2026-02-30"}).date("d"), "d", "must be a date YYYY-MM-DD"),
        (lambda f: Fields({"d": "2026-2-3"}).date("d"), "d", "must be a date YYYY-MM-DD"),
        (lambda f: Fields({"d": "2026-03-01"}).date("d", "YYYYMMDD"), "d", "must be a date YYYYMMDD"),
        (lambda f: Fields({"a": "31010"}).area("a"), "a", "must be a 6-digit area code"),
        (lambda f: Fields({"m": "x" * 65}).message_id("m"), "m", "must be 1 to 64 printable ASCII characters"),
        (lambda f: Fields({"c": "X00000018"}).card_number("c"), "c", "check character does not match"),
        (lambda f: Fields({"t": "2025-03-01T08:30:00"}).moment("t"), "t", "must be an RFC 3339 time with an offset"),
    ],
)
def test_a_failed_read_names_the_field_by_its_path(read: Any, field: str, problem: str) -> None:
    with pytest.raises(FieldError) as caught:
        read(Fields(BILL))

    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field} {problem}")
    assert isinstance(caught.value, WireError) and isinstance(caught.value, ValueError)


def test_reads_that_succeed_return_the_domain_value() -> None:
    fields = Fields({**BILL, "d": "20260301", "c": "G", "t": "2025-03-01T08:30:00Z", "card": None})

    assert fields.nested("person").text("name") == "张三"
    assert [item.coded("class", {"A": 1}) for item in fields.objects("items")] == [1, 1]
    assert (fields.integer("level", low=1, high=3), fields.boolean("flag")) == (2, True)
    assert (fields.optional("absent"), fields.optional("empty"), fields.value("empty", str)) == ("", "", "")
    assert fields.date("d", "YYYYMMDD") == "2026-03-01"
    assert fields.choice("c", Colour) is Colour.GREEN
    assert fields.moment("t") == "2025-03-01T08:30:00Z"
    assert fields.nested_or_none("card") is None and fields.nested_or_none("absent") is None
    assert Fields({"l": []}).objects("l", allow_empty=True) == []


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2025-03-01T08:30:15.250+08:00", True),
        ("2025-03-01 00:10:00z", True),
        ("2025-03-01T08:30:00", False),  # no offset
        ("2025-02-30T08:30:00Z", False),  # no such day
        ("2025-03-01T08:30:00+0800", False),
    ],
)
def test_rfc3339_needs_a_real_moment_and_its_offset(value: str, ok: bool) -> None:
    assert is_rfc3339(value) is ok


def test_an_answer_is_read_from_json_and_written_compact() -> None:
    assert dumps({"name": "张三", "n": 1}) == '{"name":"张三","n":1}'.encode()
    assert loads(200, b'{"code": "0000"}').value("code", str) == "0000"
    with pytest.raises(WireError, match="HTTP 502 answer is not JSON"):
        loads(502, b"<html>bad gateway</html>")
    answer = ErrorAnswer(409, "4090", "conflict", {"action": 1})
    with pytest.raises(FieldError, match=r"^data\.action must be str"):
        answer.details.value("action", str)


CODES = {reason: 1000 + i for i, reason in enumerate(REGION_REFUSALS)}


def test_refusal_codes_are_read_both_ways() -> None:
    table = RefusalCodes(CODES)

    assert table.code(CardNotFound("no such card")) == CODES["CARD_NOT_FOUND"]
    assert table.code(CardStateConflict("ENABLE", CardStatus.LOST)) == CODES["CARD_STATE_CONFLICT"]
    assert table.code(CardNotUsable(CardStatus.LOST, "X00000019")) is None  # the hub's, never a region's
    assert table.refusal(CODES["IDEMPOTENCY_KEY_REUSED"]) is IdempotencyKeyReused
    assert table.refusal(999) is None and table.refusal(["unhashable"]) is None
    assert all(table.refusal(table.codes[reason]) is cls for reason, cls in REGION_REFUSALS.items())


@pytest.mark.parametrize(
    ("codes", "problem"),
    [
        ({k: v for k, v in CODES.items() if k != "NOT_INSURED"}, r"no code for \['NOT_INSURED'\]"),
        ({**CODES, "CARD_LOST": 2000}, r"unknown reasons \['CARD_LOST'\]"),
        ({**CODES, "NOT_INSURED": CODES["CARD_NOT_FOUND"]}, "two reasons share a code"),
    ],
)
def test_a_refusal_table_must_code_every_region_refusal_once(codes: dict[str, int], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RefusalCodes(codes)
