"""Property and fuzz tests at the hub, through gRPC.

1. Corrupted identifiers in an otherwise valid credential are refused with ``INVALID_ARGUMENT`` naming the field.
2. Random requests and random bytes sent to every unary RPC never produce ``INTERNAL`` or ``UNKNOWN``, and the
   hub still verifies a card afterwards.

Hypothesis cannot drive a coroutine itself, so each property runs in a worker thread (``run_property``) and sends
its calls to the test's event loop, where the hub's channel lives. That keeps shrinking, and lets a test check
the hub after the property has run.
"""

from __future__ import annotations

import asyncio
import calendar
import datetime as dt
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.domain import CardStatus
from adapters.identifiers import ssn_check
from gateway.api.status import error_reason
from regions.config import load_regions
from regions.seed import SeededPerson, generate
from tests.conftest import Federation, SecureFederation, credential
from yikatong.v1 import (
    card_affairs_pb2,
    card_pb2,
    card_pb2_grpc,
    clearing_pb2,
    common_pb2,
    federation_pb2,
    settlement_pb2,
)

T = TypeVar("T")

TIMEOUT = 5
VENUE = "310104"
DIGITS = string.digits
ALNUM = string.digits + string.ascii_uppercase
HEX = "0123456789ABCDEF"

PEOPLE: dict[str, list[SeededPerson]] = {c.region_id: generate(c.region_id, c.provinces) for c in load_regions()}
NORMAL = [p for people in PEOPLE.values() for p in people if p.status is CardStatus.NORMAL]
# People whose identifiers the fuzzer may send (so writes may really change their cards) ...
FUZZED = [p for people in PEOPLE.values() for p in people[:4]]
# ... and one it never sends, to check the hub with afterwards.
BYSTANDER = next(p for p in NORMAL if p not in FUZZED)


# --- helpers ------------------------------------------------------------------------------------------------


async def run_property(strategy: st.SearchStrategy[T], check: Callable[[T], Awaitable[None]], examples: int) -> None:
    """Run ``check`` on ``examples`` values of ``strategy`` (shrinking on failure), on the current event loop."""
    loop = asyncio.get_running_loop()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large],
    )
    @given(strategy)
    def prop(value: T) -> None:
        asyncio.run_coroutine_threadsafe(check(value), loop).result(timeout=4 * TIMEOUT)

    await asyncio.to_thread(prop)


def error_field(exc: grpc.aio.AioRpcError) -> str:
    """The ``field`` metadata of the call's ``ErrorInfo`` ("" when there is none)."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.metadata.get("field", ""))
    return ""


def substitute(value: str, i: int, c: str) -> str:
    return value[:i] + c + value[i + 1 :]


# Any character a protobuf string can hold (surrogates cannot be encoded in UTF-8).
unicode_chars = st.characters(codec="utf-8")
junk_chars = st.one_of(st.sampled_from(ALNUM + string.ascii_lowercase + string.punctuation + " "), unicode_chars)


def substitutions(value: str, allowed: Callable[[int, str], bool]) -> st.SearchStrategy[str]:
    """``value`` with one character replaced, where ``allowed(position, new_char)``."""
    return (
        st.tuples(st.integers(0, len(value) - 1), junk_chars)
        .filter(lambda t: t[1] != value[t[0]] and allowed(*t))
        .map(lambda t: substitute(value, *t))
    )


def truncations(value: str) -> st.SearchStrategy[str]:
    return st.integers(0, len(value) - 1).map(lambda n: value[:n])


def extensions(value: str) -> st.SearchStrategy[str]:
    return st.text(junk_chars, min_size=1, max_size=20).map(lambda extra: value + extra)


# --- 1. corrupted identifiers ---------------------------------------------------------------------------------


def corrupted_ssns(ssn: str) -> st.SearchStrategy[str]:
    """Invalid variants of a valid social security number (parse_ssn upper-cases, so 'x' for 'X' is no change)."""
    area, born, seq = ssn[:6], ssn[6:14], ssn[14:17]
    today = dt.date.today()

    def with_check(first17: str) -> str:
        return first17 + ssn_check(first17)

    def bad_date(y: int, m: int, d: int) -> str:
        return with_check(f"{area}{y:04d}{m:02d}{d:02d}{seq}")

    years = st.integers(1900, 2099)
    not_leap = years.filter(lambda y: not calendar.isleap(y))
    bad_dates = st.one_of(
        st.builds(bad_date, years, st.sampled_from([0, 13, 20, 99]), st.integers(1, 28)),
        st.builds(bad_date, years, st.integers(1, 12), st.sampled_from([0, 32, 45, 99])),
        st.builds(bad_date, years, st.just(2), st.sampled_from([30, 31])),
        st.builds(bad_date, not_leap, st.just(2), st.just(29)),
        st.builds(bad_date, years, st.sampled_from([4, 6, 9, 11]), st.just(31)),
        st.builds(lambda d: bad_date(d.year, d.month, d.day), st.dates(dt.date(1000, 1, 1), dt.date(1899, 12, 31))),
        st.builds(
            lambda d: bad_date(d.year, d.month, d.day),
            st.dates(today + dt.timedelta(days=1), dt.date(9999, 12, 31)),
        ),
    )
    # Every SSN weight is non-zero mod 11, so any other digit in the first 17 breaks the check character.
    return st.one_of(
        substitutions(ssn, lambda i, c: c.upper() != ssn[i]),
        truncations(ssn),
        extensions(ssn),
        bad_dates,
        st.builds(lambda p: with_check(f"{p:02d}{area[2:]}{born}{seq}"), st.integers(0, 99).filter(_not_province)),
    )


def _not_province(p: int) -> bool:
    return not 11 <= p <= 82


def corrupted_card_numbers(number: str) -> st.SearchStrategy[str]:
    """Invalid variants of a valid card number.

    A substitution among the first 8 that changes the character's value by a multiple of 11 ('0'↔'B') keeps the
    check character, so it is no corruption.
    """

    def breaks(i: int, c: str) -> bool:
        if i == 8 or c not in ALNUM:
            return True
        return (int(c, 36) - int(number[i], 36)) % 11 != 0

    lowered = [number.lower()] if number.lower() != number else []
    return st.one_of(
        substitutions(number, breaks),
        truncations(number),
        extensions(number),
        *(st.just(v) for v in lowered),
    )


def corrupted_codes(code: str) -> st.SearchStrategy[str]:
    """Invalid variants of a valid card identification code.

    A different digit in the area is another (valid) area, so the area is only corrupted by a non-digit or a
    province code outside 11–82.
    """

    def breaks(i: int, c: str) -> bool:
        if i < 6:
            return c not in DIGITS
        if i < 16:
            return True
        return c not in HEX

    return st.one_of(
        substitutions(code, breaks),
        st.builds(lambda i, c: substitute(code, i, c), st.integers(16, 31), st.sampled_from("abcdef")),
        st.just(code.lower()),
        truncations(code),
        extensions(code),
        st.builds(lambda p: f"{p:02d}{code[2:]}", st.integers(0, 99).filter(_not_province)),
    )


@dataclass(frozen=True)
class Corruption:
    field: str  # CardCredential field
    value: str
    person: SeededPerson


def corruptions(field: str, corrupt: Callable[[str], st.SearchStrategy[str]]) -> st.SearchStrategy[Corruption]:
    return st.sampled_from(NORMAL).flatmap(lambda p: corrupt(getattr(p, field)).map(lambda v: Corruption(field, v, p)))


@pytest.mark.parametrize(
    ("field", "corrupt"),
    [
        ("social_security_number", corrupted_ssns),
        ("card_number", corrupted_card_numbers),
        ("card_identification_code", corrupted_codes),
    ],
)
async def test_a_corrupted_identifier_is_refused_as_invalid_naming_the_field(
    federation: Federation, field: str, corrupt: Callable[[str], st.SearchStrategy[str]]
) -> None:
    async def check(case: Corruption) -> None:
        card = credential(case.person)
        setattr(card, field, case.value)
        request = card_pb2.VerifyCardRequest(card=card, venue=common_pb2.Venue(area_code=VENUE))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await federation.cards.VerifyCard(request, timeout=TIMEOUT)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
        assert error_reason(refused.value) == "INVALID_ARGUMENT"
        assert error_field(refused.value) == f"card.{field}"

    # The uncorrupted credentials are good: a refusal is the corruption's doing.
    for person in NORMAL[:: len(NORMAL) // 5]:
        request = card_pb2.VerifyCardRequest(card=credential(person), venue=common_pb2.Venue(area_code=VENUE))
        await federation.cards.VerifyCard(request, timeout=TIMEOUT)
    await run_property(corruptions(field, corrupt), check, examples=40)


# --- 2. fuzzing every unary RPC -------------------------------------------------------------------------------

SERVICES = (
    card_pb2.DESCRIPTOR.services_by_name["CardService"],
    card_affairs_pb2.DESCRIPTOR.services_by_name["CardAffairsService"],
    settlement_pb2.DESCRIPTOR.services_by_name["MedicalSettlementService"],
    clearing_pb2.DESCRIPTOR.services_by_name["ClearingService"],
    federation_pb2.DESCRIPTOR.services_by_name["FederationService"],
)
METHODS = [m for s in SERVICES for m in s.methods]
EXPECTED = {
    "CardService": {"VerifyCard", "GetCardStatus"},
    "CardAffairsService": {
        "ApplyCard",
        "EnableSocialSecurity",
        "ReplaceCard",
        "ReportLoss",
        "CancelLossReport",
        "GetApplicationProgress",
    },
    "MedicalSettlementService": {"FileRemoteCare", "PreSettle", "Settle", "ReverseSettlement", "GetSettlement"},
    "ClearingService": {"GetClearingReport", "CloseClearingPeriod", "Reconcile"},
    "FederationService": {"ListRegions"},
}
FAULTY = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}

# Plausible values per field name, so that some fuzzed requests get past validation and reach the regions.
AREAS = sorted({p.issuing_area for p in FUZZED} | {"110105", "440100", "820000", "000000"})
PLAUSIBLE: dict[str, list[str]] = {
    "social_security_number": [p.social_security_number for p in FUZZED] + ["11010519491231002X"],
    "card_number": [p.card_number for p in FUZZED],
    "card_identification_code": [p.card_identification_code for p in FUZZED],
    "issuing_area": AREAS,
    "insured_area": AREAS,
    "delivery_area": AREAS,
    "area_code": AREAS,
    "holder_name": [p.name for p in FUZZED],
    "request_id": ["fuzz-1", "fuzz-2", "fuzz-3", "~" * 64],
    "treatment_area": AREAS,
    "institution_id": ["H3101040001", "H5001030001"],
    "item_code": ["110900001", "XC01AAT0"],
    "item_name": ["床位费", ""],
    "valid_from": ["2026-01-01", "2026-11-28"],
    "valid_until": ["2026-12-31", "2027-06-30"],
    "date": ["2026-11-28", "2026-02-29"],
    "period": ["2026-11", "2026-10", "2030-01"],
}

fuzz_text = st.one_of(
    st.text(unicode_chars, max_size=40),
    st.text(st.characters(codec="ascii"), max_size=40),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp", "Mn"]), max_size=20),
    st.builds(lambda c, n: c * n, unicode_chars, st.integers(65, 70_000)),
)
fuzz_enum_ints = st.one_of(
    st.sampled_from([-1, 5, 8, 9, 99, 999, 2**31 - 1, -(2**31)]),
    st.integers(-(2**31), 2**31 - 1),
)


def near_misses(values: list[str]) -> st.SearchStrategy[str]:
    """A plausible value with one character replaced, cut short or extended."""
    return st.sampled_from(values).flatmap(
        lambda v: st.one_of(substitutions(v, lambda i, c: True), truncations(v), extensions(v)) if v else st.just(v)
    )


def weighted(*options: tuple[int, st.SearchStrategy[T]]) -> st.SearchStrategy[T]:
    """``one_of`` that picks each strategy in proportion to its weight."""
    return st.one_of(*(s for weight, s in options for _ in range(weight)))


def string_values(name: str) -> st.SearchStrategy[str]:
    if name not in PLAUSIBLE:
        return fuzz_text
    return weighted((3, st.sampled_from(PLAUSIBLE[name])), (1, near_misses(PLAUSIBLE[name])), (2, fuzz_text))


def scalar_values(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == pb_descriptor.FieldDescriptor.TYPE_STRING:
        return string_values(field.name)
    if kind == pb_descriptor.FieldDescriptor.TYPE_ENUM:
        return st.one_of(st.sampled_from([v.number for v in field.enum_type.values]), fuzz_enum_ints)
    if kind == pb_descriptor.FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == pb_descriptor.FieldDescriptor.TYPE_INT32:
        return weighted((1, st.integers(-(2**31), 2**31 - 1)), (2, st.integers(0, 5)))
    if kind == pb_descriptor.FieldDescriptor.TYPE_INT64:
        return weighted((1, st.integers(-(2**63), 2**63 - 1)), (2, st.integers(0, 1_000_000)))
    raise NotImplementedError(f"no fuzz strategy for {field.full_name}")


def plausible_scalars(field: pb_descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == pb_descriptor.FieldDescriptor.TYPE_STRING:
        return st.sampled_from(PLAUSIBLE[field.name]) if field.name in PLAUSIBLE else st.just("")
    if field.type == pb_descriptor.FieldDescriptor.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values])
    return scalar_values(field)


def _fields(descriptor: pb_descriptor.Descriptor, *, plausible: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Values for the message's fields: random ones (None for unset), or plausible ones."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if plausible:
            value = plausible_messages(field.message_type) if field.message_type else plausible_scalars(field)
        else:
            value = messages(field.message_type) if field.message_type else scalar_values(field)
        if field.is_repeated:
            value = st.lists(value, max_size=3)
        fields[field.name] = value if plausible else weighted((1, st.none()), (3, value))
    return st.fixed_dictionaries(fields)


def _build(descriptor: pb_descriptor.Descriptor, values: dict[str, Any]) -> Any:
    cls = message_factory.GetMessageClass(descriptor)
    return cls(**{k: v for k, v in values.items() if v is not None})


def real_credentials() -> st.SearchStrategy[common_pb2.CardCredential]:
    """A fuzzed person's credential, sometimes with one field replaced by random text."""
    return st.builds(
        lambda p, with_name, name, value: _with(credential(p, with_name=with_name), name, value),
        st.sampled_from(FUZZED),
        st.booleans(),
        st.sampled_from([f.name for f in common_pb2.CardCredential.DESCRIPTOR.fields]),
        weighted((1, st.none()), (1, fuzz_text)),
    )


def _with(card: common_pb2.CardCredential, name: str, value: str | None) -> common_pb2.CardCredential:
    if value is not None:
        setattr(card, name, value)
    return card


def messages(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[Any]:
    """Messages of ``descriptor`` with each field unset or set to a random value (nested messages too)."""
    generic = _fields(descriptor, plausible=False).map(lambda values: _build(descriptor, values))
    if descriptor is common_pb2.CardCredential.DESCRIPTOR:
        return weighted((1, generic), (2, real_credentials()))
    return generic


def plausible_messages(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[Any]:
    """Messages that mostly pass validation and reach the regions: plausible values, perhaps one random field."""
    if descriptor is common_pb2.CardCredential.DESCRIPTOR:
        return real_credentials()
    names = [f.name for f in descriptor.fields]
    if not names:
        return messages(descriptor)
    return st.builds(
        lambda good, bad, name: _build(descriptor, {**good, name: bad[name]} if name else good),
        _fields(descriptor, plausible=True),
        _fields(descriptor, plausible=False),
        st.sampled_from([None, *names]),
    )


def requests(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[Any]:
    return st.one_of(messages(descriptor), plausible_messages(descriptor))


def _flip(data: bytes, i: int, byte: int) -> bytes:
    """``data`` with the byte at ``i`` (wrapped around) replaced."""
    if not data:
        return bytes([byte])
    i %= len(data)
    return data[:i] + bytes([byte]) + data[i + 1 :]


def raw_payloads(descriptor: pb_descriptor.Descriptor) -> st.SearchStrategy[bytes]:
    """Random bytes, and encodings of real requests cut short, extended or with a byte flipped."""
    encoded = requests(descriptor).map(lambda m: m.SerializeToString())
    return st.one_of(
        st.binary(max_size=512),
        st.binary(min_size=4096, max_size=70_000),
        st.builds(lambda b, n: b[:n], encoded, st.integers(0, 64)),
        st.builds(lambda b, extra: b + extra, encoded, st.binary(min_size=1, max_size=32)),
        st.builds(_flip, encoded, st.integers(0, 1 << 16), st.integers(0, 255)),
    )


def test_the_fuzzed_methods_are_every_unary_rpc_of_the_hub() -> None:
    assert {s.name: {m.name for m in s.methods} for s in SERVICES} == EXPECTED
    assert not any(m.client_streaming or m.server_streaming for m in METHODS)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.full_name.removeprefix("yikatong.v1."))
async def test_random_requests_and_bytes_never_fail_internally(
    secure_federation: SecureFederation, method: pb_descriptor.MethodDescriptor
) -> None:
    """Over mutual TLS, as a participant holding every role (so the requests reach the services)."""
    channel = secure_federation.channel("test-everything")
    call = channel.unary_unary(
        f"/{method.containing_service.full_name}/{method.name}", request_serializer=None, response_deserializer=None
    )
    answer_cls = message_factory.GetMessageClass(method.output_type)

    async def send(payload: bytes) -> None:
        try:
            answer = await call(payload, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() not in FAULTY, f"{exc.code().name}: {exc.details()}"
        else:
            answer_cls.FromString(answer)

    async def send_message(request: Any) -> None:
        await send(request.SerializeToString())

    await run_property(requests(method.input_type), send_message, examples=60)
    await run_property(raw_payloads(method.input_type), send, examples=50)

    request = card_pb2.VerifyCardRequest(card=credential(BYSTANDER), venue=common_pb2.Venue(area_code=VENUE))
    answer = await card_pb2_grpc.CardServiceStub(channel).VerifyCard(request, timeout=TIMEOUT)
    assert answer.holder.social_security_number == BYSTANDER.social_security_number
    assert answer.card.status == common_pb2.CARD_STATUS_NORMAL
