"""Property tests for the identifier validators of DESIGN §4.1 (adapters/identifiers.py)."""

from __future__ import annotations

import calendar
import datetime as dt

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from adapters.identifiers import (
    CARD_CODE_MARK,
    InvalidIdentifier,
    card_number_check,
    parse_area,
    parse_card_identification_code,
    parse_card_number,
    parse_ssn,
    ssn_check,
)

TODAY = dt.date.today()
DIGITS = "0123456789"
ALNUM = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
HEX = "0123456789ABCDEF"
PROPERTY = settings(max_examples=200)


def fixed(alphabet: str, n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet, min_size=n, max_size=n)


def ymd(d: dt.date) -> str:
    return f"{d.year:04d}{d.month:02d}{d.day:02d}"


def substitute(value: str, i: int, c: str) -> str:
    return value[:i] + c + value[i + 1 :]


def transpose(value: str, i: int) -> str:
    return value[:i] + value[i + 1] + value[i] + value[i + 2 :]


def with_check(first17: str) -> str:
    return first17 + ssn_check(first17)


def rejects(parse, value: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse(value)


provinces = st.integers(11, 82)
bad_provinces = st.integers(0, 99).filter(lambda p: not 11 <= p <= 82)
areas = st.builds(lambda p, rest: f"{p:02d}{rest}", provinces, fixed(DIGITS, 4))
bad_areas = st.builds(lambda p, rest: f"{p:02d}{rest}", bad_provinces, fixed(DIGITS, 4))
birth_dates = st.dates(dt.date(1900, 1, 1), TODAY).map(ymd)
ssns = st.builds(lambda a, d, s: with_check(a + d + s), areas, birth_dates, fixed(DIGITS, 3))
cards = fixed(ALNUM, 8).map(lambda s: s + card_number_check(s))
chips = fixed(HEX, 16)
codes = st.builds(lambda a, h: a + CARD_CODE_MARK + h, areas, chips)
junk = st.one_of(st.sampled_from(ALNUM + "x"), st.characters())


def _ssn_ending_x(area: str, born: str, seq2: str) -> str | None:
    # Position 17 has weight 2 (invertible mod 11): one residue gives "X", and it is a digit 10 times in 11.
    return next((f + "X" for d in DIGITS if ssn_check(f := area + born + seq2 + d) == "X"), None)


ssns_x = st.builds(_ssn_ending_x, areas, birth_dates, fixed(DIGITS, 2)).filter(lambda s: s is not None)


@PROPERTY
@given(ssns)
def test_valid_ssn_parses_to_itself(ssn: str) -> None:
    assert parse_ssn(ssn) == ssn
    assert parse_ssn(ssn, today=TODAY) == ssn


@PROPERTY
@given(ssns_x)
def test_lower_case_x_is_normalised(ssn: str) -> None:
    assert parse_ssn(ssn[:17] + "x") == ssn


@PROPERTY
@given(ssns, st.integers(0, 17), junk)
def test_ssn_any_single_substitution_is_rejected(ssn: str, i: int, c: str) -> None:
    # ISO 7064 MOD 11-2: every weight is a power of 2 mod 11 (never 0), so every digit change is caught.
    assume(c.upper() != ssn[i])
    rejects(parse_ssn, substitute(ssn, i, c))


@PROPERTY
@given(ssns, st.integers(0, 16))
def test_ssn_any_adjacent_transposition_is_rejected(ssn: str, i: int) -> None:
    # w[i] = 2·w[i+1] mod 11 (the check character has weight 1), so w[i] − w[i+1] = w[i+1] ≠ 0 mod 11.
    assume(ssn[i] != ssn[i + 1])
    rejects(parse_ssn, transpose(ssn, i))


@PROPERTY
@given(ssns, st.sampled_from(DIGITS + "Xx"))
def test_ssn_wrong_check_character_is_rejected(ssn: str, c: str) -> None:
    assume(c.upper() != ssn[17])
    rejects(parse_ssn, ssn[:17] + c)


@st.composite
def impossible_dates(draw: st.DrawFn) -> str:
    year = draw(st.integers(1900, TODAY.year))
    month = draw(st.integers(0, 99))
    if not 1 <= month <= 12:
        return f"{year:04d}{month:02d}{draw(st.integers(1, 28)):02d}"
    last = calendar.monthrange(year, month)[1]
    day = draw(st.one_of(st.just(0), st.integers(last + 1, 99)))
    return f"{year:04d}{month:02d}{day:02d}"


@PROPERTY
@given(areas, impossible_dates(), fixed(DIGITS, 3))
def test_ssn_impossible_birth_date_is_rejected(area: str, born: str, seq: str) -> None:
    rejects(parse_ssn, with_check(area + born + seq))


@pytest.mark.parametrize("born", ["19900230", "19901301", "19900001", "19900100", "19000229", "20230431"])
def test_ssn_impossible_birth_date_examples(born: str) -> None:
    rejects(parse_ssn, with_check("110101" + born + "123"))


out_of_range = st.one_of(st.dates(TODAY + dt.timedelta(days=1)), st.dates(dt.date(1000, 1, 1), dt.date(1899, 12, 31)))


@PROPERTY
@given(areas, out_of_range.map(ymd), fixed(DIGITS, 3))
def test_ssn_future_or_pre_1900_birth_date_is_rejected(area: str, born: str, seq: str) -> None:
    with pytest.raises(InvalidIdentifier):
        parse_ssn(with_check(area + born + seq), today=TODAY)


@PROPERTY
@given(cards)
@example("X00000019")  # the examples of DESIGN §4.1
@example("B7K334774")
@example("188347080")
def test_valid_card_number_parses_to_itself(card: str) -> None:
    assert parse_card_number(card) == card


def same_mod_11(a: str, b: str) -> bool:
    return (int(a, 36) - int(b, 36)) % 11 == 0


@PROPERTY
@given(cards, st.integers(0, 8), junk)
def test_card_substitution_rejected_unless_value_differs_by_multiple_of_11(card: str, i: int, c: str) -> None:
    assume(c != card[i])
    corrupted = substitute(card, i, c)
    if i < 8 and c in ALNUM and same_mod_11(c, card[i]):
        assert parse_card_number(corrupted) == corrupted  # undetectable by the standard's check character
    else:
        rejects(parse_card_number, corrupted)


@PROPERTY
@given(cards, st.integers(0, 7))
def test_card_transposition_rejected_except_known_blind_spots(card: str, i: int) -> None:
    # Weight differences 4 2 1 5 3 4 2 are never 0 mod 11; the (value) difference can be.
    a, b = card[i], card[i + 1]
    assume(a != b)
    blind = same_mod_11(a, b) if i < 7 else {a, b} == {"1", "X"}
    if blind:
        assert parse_card_number(transpose(card, i)) == transpose(card, i)
    else:
        rejects(parse_card_number, transpose(card, i))


def test_card_check_character_cannot_see_changes_by_11() -> None:
    """A property of the standard, not a bug: letters count 10–35, so '0'/'B' (0/11) weigh the same mod 11."""
    assert card_number_check("00000000") == card_number_check("B0000000") == "0"
    assert parse_card_number("000000000") == "000000000"
    assert parse_card_number("B00000000") == "B00000000"
    assert parse_card_number("0B0000000") == "0B0000000"  # the '0B' transposition too
    # Swapping the last data character and an X check character: "…1X" and "…X1" can both be valid.
    assert parse_card_number("70000001X") == "70000001X"
    assert parse_card_number("7000000X1") == "7000000X1"


@PROPERTY
@given(codes)
@example("320200D156000005AD932A48BDC3B9E9")  # the example of DESIGN §4.1
def test_valid_identification_code_parses_to_itself(code: str) -> None:
    assert parse_card_identification_code(code) == code
    assert parse_area(code[:6]) == code[:6]


@PROPERTY
@given(codes, st.integers(0, 31), junk)
def test_code_substitution_out_of_class_is_rejected(code: str, i: int, c: str) -> None:
    # No check character: a digit for a digit in the area, or a hex digit in the chip part, can go unseen.
    allowed = DIGITS if i < 6 else CARD_CODE_MARK[i - 6] if i < 16 else HEX
    assume(c not in allowed)
    rejects(parse_card_identification_code, substitute(code, i, c))


@PROPERTY
@given(codes, st.integers(5, 15))
def test_code_transposition_touching_the_mark_is_rejected(code: str, i: int) -> None:
    assume(code[i] != code[i + 1])
    rejects(parse_card_identification_code, transpose(code, i))


@PROPERTY
@given(codes, st.integers(16, 31), st.sampled_from("abcdef"))
def test_code_lower_case_hex_is_rejected(code: str, i: int, c: str) -> None:
    rejects(parse_card_identification_code, substitute(code, i, c))
    rejects(parse_card_identification_code, code.lower())


@PROPERTY
@given(bad_areas, birth_dates, fixed(DIGITS, 3), chips)
def test_province_outside_11_82_is_rejected(area: str, born: str, seq: str, chip: str) -> None:
    rejects(parse_area, area)
    rejects(parse_ssn, with_check(area + born + seq))
    rejects(parse_card_identification_code, area + CARD_CODE_MARK + chip)


@PROPERTY
@pytest.mark.parametrize(
    ("parse", "valid"),
    [(parse_ssn, ssns), (parse_card_number, cards), (parse_card_identification_code, codes)],
)
@given(data=st.data())
def test_truncation_and_extension_are_rejected(parse, valid: st.SearchStrategy[str], data: st.DataObject) -> None:
    value = data.draw(valid)
    n = data.draw(st.integers(1, len(value)))
    rejects(parse, value[n:] if data.draw(st.booleans()) else value[:-n])
    rejects(parse, value + data.draw(st.text(min_size=1)))
