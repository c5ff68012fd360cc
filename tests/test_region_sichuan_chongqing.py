"""The 川渝 protocol: signed requests, the server's own refusals, and where foreign errors are translated.

What every region adapter does alike is tested in ``test_region_adapters.py``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from yarl import URL

from adapters import errors
from adapters.domain import (
    Bill,
    BillLine,
    Card,
    CardAction,
    CardCredential,
    CardStatus,
    CatalogueClass,
    ChangeCard,
    FileRemoteCare,
    FilingType,
    InsuranceType,
    OutcomeState,
    Reversal,
    ServiceKind,
    Split,
    StandInAdvice,
    VisitType,
)
from adapters.interface import AdapterSettings
from adapters.jsonwire import ErrorAnswer, dumps
from adapters.sichuan_chongqing import SichuanChongqingAdapter, codec, translated_errors
from adapters.sichuan_chongqing.signing import signed_headers
from regions.config import RegionConfig
from regions.policy import Accumulator
from regions.sandbox import RunningSandbox
from tests.conftest import HubLink

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]
MakeAdapter = Callable[..., Awaitable[SichuanChongqingAdapter]]

REGION = "sichuan-chongqing"
T = 5.0  # seconds each call may take


@pytest.fixture
async def sandbox(start_region: StartSandbox) -> RunningSandbox:
    return await start_region(REGION)


@pytest.fixture
async def make_adapter(sandbox: RunningSandbox, region_configs: dict[str, RegionConfig]) -> AsyncIterator[MakeAdapter]:
    """Build and start adapters (by default with the region's settings); all are closed after the test."""
    made: list[SichuanChongqingAdapter] = []

    async def make(
        endpoint: str = "", secret: str = "", clock: Callable[[], float] = time.time
    ) -> SichuanChongqingAdapter:
        options = {**region_configs[REGION].options, **({"secret": secret} if secret else {})}
        made.append(SichuanChongqingAdapter(AdapterSettings(REGION, endpoint or sandbox.address, options), clock=clock))
        await made[-1].start()
        return made[-1]

    yield make
    for adapter in made:
        await adapter.close()


@pytest.fixture
async def adapter(make_adapter: MakeAdapter) -> SichuanChongqingAdapter:
    return await make_adapter()


def credential(sandbox: RunningSandbox, status: CardStatus) -> CardCredential:
    row = next(r for r in sandbox.system.cards.values() if r.card.status is status)
    name = sandbox.system.people[row.ssn].holder.name
    return CardCredential(row.ssn, row.card.card_number, row.card.card_identification_code, row.card.issuing_area, name)


def status_changes(sandbox: RunningSandbox) -> list[Card]:
    changes: list[Card] = []
    sandbox.system.listeners.append(lambda card, _: changes.append(card))
    return changes


async def test_get_card_needs_no_issuing_area(sandbox: RunningSandbox, adapter: SichuanChongqingAdapter) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)

    record = await adapter.get_card(replace(cred, issuing_area=""), timeout=T)

    assert record.card == sandbox.system.cards[cred.card_number].card


# --- signatures ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "skew"), [("not-the-shared-secret", 0.0), ("", -1000.0)], ids=["wrong-secret", "stale"]
)
async def test_a_badly_signed_write_is_refused_and_changes_nothing(
    sandbox: RunningSandbox, make_adapter: MakeAdapter, secret: str, skew: float
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    changes = status_changes(sandbox)
    adapter = await make_adapter(secret=secret, clock=lambda: time.time() + skew)

    with pytest.raises(errors.RegionProtocolError):
        await adapter.change_card(ChangeCard("c1", cred, CardAction.REPORT_LOSS), timeout=T)

    assert changes == []
    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.NORMAL


async def raw_post(
    sandbox: RunningSandbox, path: str, body: bytes, headers: dict[str, str], link: HubLink
) -> tuple[int, dict[str, object]]:
    """POST exactly these bytes to exactly this (encoded) path."""
    url = URL(sandbox.address + path, encoded=True)
    async with link.http() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, json.loads(await r.read())


def signed(
    region_configs: dict[str, RegionConfig], body: bytes, path: str = "/v2/settlements", **changes: Any
) -> dict[str, str]:
    """The signing headers of ``POST path`` with ``body``, as the adapter makes them (``changes``: now, nonce)."""
    options = region_configs[REGION].options
    when = {"now": time.time(), **changes}
    return signed_headers(options["paas_id"], options["secret"], "POST", path, {}, body, **when)


async def test_the_server_names_missing_and_stale_signatures(
    sandbox: RunningSandbox, region_configs: dict[str, RegionConfig], hub_link: HubLink
) -> None:
    body = b'{"requestId": "x"}'
    stale = signed(region_configs, body, "/v2/applications", now=time.time() - 301)

    unsigned = {"code": "4010", "message": "request signature refused", "data": None}
    assert await raw_post(sandbox, "/v2/applications", body, {}, hub_link) == (401, unsigned)
    assert (await raw_post(sandbox, "/v2/applications", body, stale, hub_link))[1]["code"] == "4011"


async def test_a_replayed_request_is_refused_by_its_nonce_and_changes_nothing(
    sandbox: RunningSandbox, region_configs: dict[str, RegionConfig], hub_link: HubLink
) -> None:
    cred = insured(sandbox)
    body = dumps(codec.bill_json(bill(sandbox, cred)))
    headers = signed(region_configs, body)
    first = await raw_post(sandbox, "/v2/settlements", body, headers, hub_link)
    accumulator = sandbox.medical.accumulator(cred.social_security_number, VisitType.INPATIENT)

    status, reply = await raw_post(sandbox, "/v2/settlements", body, headers, hub_link)
    fresh = await raw_post(sandbox, "/v2/settlements", body, signed(region_configs, body), hub_link)

    assert first[0] == 201
    assert (status, reply["code"], reply["message"]) == (401, "4012", "request signature refused: nonce already used")
    assert fresh[0] == 201  # the same bill signed anew is a retry: replayed by its message id, not refused
    assert list(sandbox.medical.settlements) == ["s1"]
    assert sandbox.medical.accumulator(cred.social_security_number, VisitType.INPATIENT) == accumulator


async def test_the_adapter_signs_paths_and_queries_as_the_region_reads_them(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    odd = "a/b c?%~+&="  # printable ASCII a request id may hold: each must reach the region as signed

    outcome = await adapter.settlement_outcome(odd, timeout=T)
    record = await adapter.get_card(cred, timeout=T)  # a Chinese name in the query

    assert outcome.state is OutcomeState.NOT_FOUND
    assert record.holder.name == cred.holder_name


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        ("/v2/settlements/s2/correction", "another settlement"),
        ("/v2/settlements/s1/reversal", "another action"),
        ("/v2/settlements/s1/correction?x=1", "a query added"),
    ],
)
async def test_a_signed_request_sent_to_another_path_is_refused(
    sandbox: RunningSandbox, region_configs: dict[str, RegionConfig], hub_link: HubLink, sent: str, why: str
) -> None:
    cred = insured(sandbox)
    for request_id in ("s1", "s2"):
        sandbox.medical.settle(bill(sandbox, cred, request_id))
    headers = signed(region_configs, b"{}", "/v2/settlements/s1/correction")  # captured, then pointed elsewhere

    status, reply = await raw_post(sandbox, sent, b"{}", headers, hub_link)

    assert (status, reply["code"]) == (401, "4010"), why
    assert [sandbox.medical.outcome(r).state for r in ("s1", "s2")] == [OutcomeState.SETTLED] * 2


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"requestId": 7}', b'{"requestId": "x", "idNo": "1", "name": "n"}'],
)
async def test_malformed_input_is_a_400_not_a_500(
    sandbox: RunningSandbox,
    region_configs: dict[str, RegionConfig],
    body: bytes,
    hub_link: HubLink,
) -> None:
    headers = signed(region_configs, body, "/v2/applications")

    status, reply = await raw_post(sandbox, "/v2/applications", body, headers, hub_link)

    assert (status, reply["code"]) == (400, "4000")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), errors.RegionProtocolError),
        (ValueError("not JSON"), errors.RegionProtocolError),
        (TimeoutError(), errors.RegionTimeout),
        (ErrorAnswer(503, "5030", "busy", None), errors.RegionUnavailable),
        (ErrorAnswer(401, "4010", "refused", None), errors.RegionProtocolError),
        (ErrorAnswer(409, "4090", "conflict", {"action": "ENABLE"}), errors.RegionProtocolError),
        (ErrorAnswer(200, "4040", "a refusal must be a 4xx", None), errors.RegionProtocolError),
        (ErrorAnswer(404, "4043", "not insured", None), errors.NotInsured),
        (ErrorAnswer(409, "4093", "reversed", {"requestId": "s1", "state": "02"}), errors.SettlementNotSettled),
        (ErrorAnswer(409, "4093", "no state", {"requestId": "s1"}), errors.RegionProtocolError),
        (ErrorAnswer(409, "4094", "corrected", {"requestId": "s1"}), errors.SettlementCorrected),
    ],
)
def test_foreign_errors_are_translated_at_one_choke_point(raised: Exception, expected: type[Exception]) -> None:
    with pytest.raises(expected), translated_errors(REGION):
        raise raised


# --- medical settlement ----------------------------------------------------------------------------------

# 51 EMPLOYEE INPATIENT (regions/policies.toml): deductible 1000.00, level-3 ratio 85 %, 乙类 self-pay 10 %,
# unfiled penalty 20 points. Class A 3000.00; class B 1000.00 capped at 800.00; class C 500.00.
LINES = (
    BillLine("A001", "CT scan", CatalogueClass.A, 1, 300000, 300000),
    BillLine("B001", "stent", CatalogueClass.B, 2, 50000, 100000, price_cap_fen=80000),
    BillLine("C001", "single room", CatalogueClass.C, 5, 10000, 50000),
)
UNFILED = Split(
    total_fen=450000,
    full_self_pay_fen=50000,
    over_cap_fen=20000,
    b_class_self_pay_fen=8000,  # 10 % of the 800.00 under the cap
    in_scope_fen=372000,
    deductible_fen=100000,
    fund_pay_fen=176800,  # (3720.00 − 1000.00) × 65 %
    account_pay_fen=0,
    cash_pay_fen=273200,
)


def insured(sandbox: RunningSandbox, insurance_type: InsuranceType = InsuranceType.EMPLOYEE) -> CardCredential:
    """A Sichuan card holder insured at the region, with money in the personal account."""
    for ssn, person in sandbox.medical.insured.items():
        row = sandbox.system.people.get(ssn)
        if (
            person.insured_area.startswith("51")
            and person.insurance_type is insurance_type
            and (person.account_balance_fen > 0 or insurance_type is InsuranceType.RESIDENT)
            and row is not None
            and row.card_numbers
        ):
            card = sandbox.system.cards[row.card_numbers[-1]].card
            return CardCredential(ssn, card.card_number, card.card_identification_code, card.issuing_area, person.name)
    raise AssertionError("the seed has no such person")


def uninsured(sandbox: RunningSandbox) -> CardCredential:
    row = next(r for r in sandbox.system.cards.values() if r.ssn not in sandbox.medical.insured)
    name = sandbox.system.people[row.ssn].holder.name
    return CardCredential(row.ssn, row.card.card_number, row.card.card_identification_code, row.card.issuing_area, name)


def bill(sandbox: RunningSandbox, cred: CardCredential, request_id: str = "s1", **changes: object) -> Bill:
    insured_area = sandbox.medical.insured[cred.social_security_number].insured_area
    base = Bill(
        request_id=request_id,
        credential=cred,
        insured_area=insured_area,
        treatment_area="310104",
        institution_id="H31010400001",
        hospital_level=3,
        visit_type=VisitType.INPATIENT,
        later_admission=False,
        lines=LINES,
        use_personal_account=False,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def money(sandbox: RunningSandbox, cred: CardCredential) -> tuple[Accumulator, int]:
    """The person's inpatient accumulator and account balance at the region."""
    ssn = cred.social_security_number
    return sandbox.medical.accumulator(ssn, VisitType.INPATIENT), sandbox.medical.insured[ssn].account_balance_fen


async def test_pre_settle_gives_the_policy_split_in_fen_and_changes_nothing(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    before = money(sandbox, cred)

    split = await adapter.pre_settle(bill(sandbox, cred, request_id=""), timeout=T)

    assert split == UNFILED
    assert money(sandbox, cred) == before
    assert sandbox.medical.settlements == {}


async def test_a_long_term_filing_lifts_the_ratio_of_the_treatment_province(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    request = FileRemoteCare("f1", cred, "310000", FilingType.WORKING_AWAY, "2020-01-01", "2099-12-31")

    filing = await adapter.file_remote_care(request, timeout=T)
    again = await adapter.file_remote_care(request, timeout=T)
    split = await adapter.pre_settle(bill(sandbox, cred), timeout=T)

    assert (filing.treatment_area, filing.filing_type, filing.valid_until) == (
        "310000",
        FilingType.WORKING_AWAY,
        "2099-12-31",
    )
    assert again == filing
    assert split.fund_pay_fen == 231200  # (3720.00 − 1000.00) × 85 %, no penalty
    assert split.cash_pay_fen == 450000 - 231200


async def test_settle_moves_accumulators_and_account_by_exactly_its_split(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    (acc, balance) = money(sandbox, cred)

    settlement = await adapter.settle(bill(sandbox, cred, use_personal_account=True), timeout=T)

    split = settlement.split
    assert settlement.request_id == "s1"
    assert split.violations() == []
    assert (split.total_fen, split.fund_pay_fen, split.deductible_fen) == (450000, 176800, 100000)
    assert split.account_pay_fen == min(273200, balance) > 0
    after, balance_after = money(sandbox, cred)
    assert after.deductible_used_fen - acc.deductible_used_fen == split.deductible_fen
    assert after.fund_paid_fen - acc.fund_paid_fen == split.fund_pay_fen
    assert balance - balance_after == split.account_pay_fen
    assert sandbox.medical.outcome("s1").settlement == settlement


async def test_a_replayed_msgid_settles_once_and_another_bill_under_it_is_refused(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    first = await adapter.settle(bill(sandbox, cred, use_personal_account=True), timeout=T)
    once = money(sandbox, cred)

    replayed = await adapter.settle(bill(sandbox, cred, use_personal_account=True), timeout=T)
    with pytest.raises(errors.IdempotencyKeyReused) as reused:
        await adapter.settle(bill(sandbox, cred, hospital_level=2), timeout=T)

    assert replayed == first
    assert money(sandbox, cred) == once
    assert reused.value.metadata["request_id"] == "s1"


async def test_a_correction_of_an_unseen_msgid_refuses_its_late_settle(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    before = money(sandbox, cred)

    await adapter.correct_settlement("late-1", timeout=T)
    await adapter.correct_settlement("late-1", timeout=T)  # the outbox may send it twice
    outcome = await adapter.settlement_outcome("late-1", timeout=T)
    with pytest.raises(errors.SettlementCorrected) as refused:
        await adapter.settle(bill(sandbox, cred, "late-1"), timeout=T)

    assert (outcome.state, outcome.settlement) == (OutcomeState.CORRECTED, None)
    assert refused.value.metadata["request_id"] == "late-1"
    assert sandbox.medical.corrections == ["late-1", "late-1"]
    assert money(sandbox, cred) == before


async def test_a_correction_of_an_applied_settlement_restores_the_money(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    before = money(sandbox, cred)
    settlement = await adapter.settle(bill(sandbox, cred, use_personal_account=True), timeout=T)

    await adapter.correct_settlement("s1", timeout=T)

    outcome = await adapter.settlement_outcome("s1", timeout=T)
    assert (outcome.state, outcome.settlement) == (OutcomeState.CORRECTED, settlement)
    assert money(sandbox, cred) == before


async def test_a_reversal_happens_once_and_restores_the_money(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    before = money(sandbox, cred)
    settlement = await adapter.settle(bill(sandbox, cred, use_personal_account=True), timeout=T)
    reversal = Reversal("r1", "s1", cred.social_security_number, "wrong patient")

    await adapter.reverse_settlement(reversal, timeout=T)
    await adapter.reverse_settlement(reversal, timeout=T)  # a retry of the same reversal
    with pytest.raises(errors.SettlementNotSettled) as twice:
        await adapter.reverse_settlement(replace(reversal, request_id="r2"), timeout=T)

    assert money(sandbox, cred) == before
    assert twice.value.metadata == {"settlement_id": "s1", "state": "REVERSED"}
    outcome = await adapter.settlement_outcome("s1", timeout=T)
    assert (outcome.state, outcome.settlement) == (OutcomeState.REVERSED, settlement)


async def test_a_reversal_of_an_unknown_or_corrected_settlement_is_refused(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    ssn = cred.social_security_number
    await adapter.settle(bill(sandbox, cred), timeout=T)
    await adapter.correct_settlement("s1", timeout=T)
    await adapter.correct_settlement("void-1", timeout=T)  # corrected before it was ever seen

    with pytest.raises(errors.SettlementNotSettled) as corrected:
        await adapter.reverse_settlement(Reversal("r1", "s1", ssn, ""), timeout=T)
    with pytest.raises(errors.SettlementNotFound) as unknown:
        await adapter.reverse_settlement(Reversal("r2", "never-sent", ssn, ""), timeout=T)
    with pytest.raises(errors.SettlementNotSettled) as void:
        await adapter.reverse_settlement(Reversal("r3", "void-1", ssn, ""), timeout=T)

    assert corrected.value.metadata == {"settlement_id": "s1", "state": "CORRECTED"}
    assert unknown.value.metadata["request_id"] == "never-sent"
    assert void.value.metadata == {"settlement_id": "void-1", "state": "CORRECTED"}


async def test_outcome_of_an_unseen_msgid_is_not_found_and_odd_ids_travel_intact(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    odd = "hub/2026 07?x=1#%2F"

    unseen = await adapter.settlement_outcome("never-sent", timeout=T)
    settlement = await adapter.settle(bill(sandbox, cred, odd), timeout=T)
    seen = await adapter.settlement_outcome(odd, timeout=T)

    assert unseen.state is OutcomeState.NOT_FOUND
    assert settlement.request_id == odd
    assert (seen.state, seen.settlement) == (OutcomeState.SETTLED, settlement)
    assert sandbox.medical.outcome(odd).state is OutcomeState.SETTLED


async def test_a_person_without_medical_insurance_is_refused(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = uninsured(sandbox)
    no_bill = replace(bill(sandbox, insured(sandbox)), credential=cred)
    filing = FileRemoteCare("f1", cred, "310000", FilingType.REFERRAL, "2020-01-01", "2099-12-31")

    with pytest.raises(errors.NotInsured):
        await adapter.pre_settle(no_bill, timeout=T)
    with pytest.raises(errors.NotInsured):
        await adapter.settle(no_bill, timeout=T)
    with pytest.raises(errors.NotInsured):
        await adapter.file_remote_care(filing, timeout=T)

    assert sandbox.medical.settlements == {}


async def test_a_settle_answered_too_late_was_still_applied(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = insured(sandbox)
    sandbox.faults.update({"answer_delay_ms": 400, "answer_delay_calls": 1})

    with pytest.raises(errors.RegionTimeout):
        await adapter.settle(bill(sandbox, cred), timeout=0.1)
    outcome = await adapter.settlement_outcome("s1", timeout=T)

    assert outcome.state is OutcomeState.SETTLED
    assert outcome.settlement is not None and outcome.settlement.split == UNFILED


async def test_a_card_change_answered_too_late_was_still_applied(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    cred = credential(sandbox, CardStatus.NORMAL)
    sandbox.faults.update({"answer_delay_ms": 400, "answer_delay_calls": 1})

    with pytest.raises(errors.RegionTimeout):
        await adapter.change_card(ChangeCard("c1", cred, CardAction.REPORT_LOSS), timeout=0.1)

    assert sandbox.system.cards[cred.card_number].card.status is CardStatus.TEMPORARILY_LOST


# --- settlement on the wire ------------------------------------------------------------------------------


async def test_unsigned_and_badly_signed_settlements_are_refused_and_settle_nothing(
    sandbox: RunningSandbox,
    make_adapter: MakeAdapter,
    hub_link: HubLink,
) -> None:
    cred = insured(sandbox)
    body = dumps(codec.bill_json(bill(sandbox, cred)))
    forged = await make_adapter(secret="not-the-shared-secret")

    status, reply = await raw_post(sandbox, "/v2/settlements", body, {}, hub_link)
    with pytest.raises(errors.RegionProtocolError):
        await forged.settle(bill(sandbox, cred), timeout=T)
    with pytest.raises(errors.RegionProtocolError):
        await forged.correct_settlement("s2", timeout=T)

    assert (status, reply["code"]) == (401, "4010")
    assert sandbox.medical.settlements == {}
    assert sandbox.medical.corrections == []


async def test_a_signed_settlement_is_answered_in_camel_case_fen(
    sandbox: RunningSandbox,
    region_configs: dict[str, RegionConfig],
    hub_link: HubLink,
) -> None:
    cred = insured(sandbox)
    body = dumps(codec.bill_json(bill(sandbox, cred)))

    status, reply = await raw_post(sandbox, "/v2/settlements", body, signed(region_configs, body), hub_link)

    assert (status, reply["code"]) == (201, "0000")
    data = reply["data"]
    assert isinstance(data, dict)
    assert data["requestId"] == "s1"
    assert data["split"] == {
        "totalFen": 450000,
        "fullSelfPayFen": 50000,
        "overCapFen": 20000,
        "bClassSelfPayFen": 8000,
        "inScopeFen": 372000,
        "deductibleFen": 100000,
        "fundPayFen": 176800,
        "accountPayFen": 0,
        "cashPayFen": 273200,
    }


def _patched(base: dict[str, object], changes: dict[str, object], line: dict[str, object]) -> dict[str, object]:
    lines = base["lines"]
    assert isinstance(lines, list)
    return {**base, "lines": [{**lines[0], **line}, *lines[1:]], **changes}


@pytest.mark.parametrize(
    ("changes", "line", "field"),
    [
        ({"requestId": ""}, {}, "requestId"),
        ({"idNo": None}, {}, "idNo"),
        ({"lines": []}, {}, "lines"),
        ({"lines": ["x"]}, {}, "lines[0]"),
        ({"hospitalLevel": 4}, {}, "hospitalLevel"),
        ({"hospitalLevel": True}, {}, "hospitalLevel"),
        ({"laterAdmission": "no"}, {}, "laterAdmission"),
        ({"visitType": "EMERGENCY"}, {}, "visitType"),
        ({"treatmentArea": "31010"}, {}, "treatmentArea"),
        ({}, {"amountFen": "300000"}, "lines[0].amountFen"),
        ({}, {"amountFen": 3000.5}, "lines[0].amountFen"),
        ({}, {"unitPriceFen": -1}, "lines[0].unitPriceFen"),
        ({}, {"priceCapFen": None}, "lines[0].priceCapFen"),
        ({}, {"quantity": 0}, "lines[0].quantity"),
        ({}, {"catalogueClass": "D"}, "lines[0].catalogueClass"),
        ({}, {"itemCode": ""}, "lines[0].itemCode"),
    ],
)
async def test_a_malformed_settlement_is_a_400_naming_the_field(
    sandbox: RunningSandbox,
    region_configs: dict[str, RegionConfig],
    changes: dict[str, object],
    line: dict[str, object],
    field: str,
    hub_link: HubLink,
) -> None:
    body = dumps(_patched(codec.bill_json(bill(sandbox, insured(sandbox))), changes, line))

    status, reply = await raw_post(sandbox, "/v2/settlements", body, signed(region_configs, body), hub_link)

    assert (status, reply["code"]) == (400, "4000")
    assert str(reply["message"]).startswith(field + " ")
    assert sandbox.medical.settlements == {}


@pytest.mark.parametrize(
    ("path", "fields", "field"),
    [
        ("/v2/filings", {"validFrom": "2026-02-30"}, "validFrom"),
        ("/v2/filings", {"validFrom": "2026-03-01", "validUntil": "2026-02-28"}, "validUntil"),
        ("/v2/filings", {"filingType": "HOLIDAY"}, "filingType"),
        ("/v2/settlements/s1/reversal", {"idNo": ""}, "idNo"),
        ("/v2/settlements/" + "x" * 65 + "/correction", {}, "msgId"),
    ],
)
async def test_malformed_filings_reversals_and_msgids_are_400s(
    sandbox: RunningSandbox,
    region_configs: dict[str, RegionConfig],
    path: str,
    fields: dict[str, object],
    field: str,
    hub_link: HubLink,
) -> None:
    cred = insured(sandbox)
    filing = FileRemoteCare("f1", cred, "310000", FilingType.REFERRAL, "2020-01-01", "2099-12-31")
    base = codec.filing_request_json(filing) if path == "/v2/filings" else {"requestId": "r1", "idNo": "x"}
    body = dumps({**base, **fields})

    status, reply = await raw_post(sandbox, path, body, signed(region_configs, body, path), hub_link)

    assert (status, reply["code"]) == (400, "4000")
    assert str(reply["message"]).startswith(field + " ")
    assert sandbox.medical.insured[cred.social_security_number].filings == []
    assert sandbox.medical.corrections == []


# --- stand-in advices ------------------------------------------------------------------------------------


def advice(sandbox: RunningSandbox, **changes: object) -> StandInAdvice:
    cred = credential(sandbox, CardStatus.NORMAL)
    made = StandInAdvice(
        advice_id=str(uuid.uuid4()),
        card_number=cred.card_number,
        issuing_area=cred.issuing_area,
        service_kind=ServiceKind.TRANSIT,
        venue_area="500103",
        granted_at="2025-03-01T08:30:15.250+08:00",
        status_confirmed_at="2025-03-01T00:10:00Z",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


async def test_a_stand_in_advice_is_recorded_once_with_every_field(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    advices = [advice(sandbox, service_kind=kind) for kind in ServiceKind]

    for sent in advices:
        await adapter.send_stand_in_advice(sent, timeout=T)
    await adapter.send_stand_in_advice(advices[0], timeout=T)  # the hub resends until acknowledged

    assert sandbox.system.advices == {sent.advice_id: sent for sent in advices}


async def test_a_stand_in_advice_is_created_once_and_a_repeat_is_answered_alike(
    sandbox: RunningSandbox,
    region_configs: dict[str, RegionConfig],
    hub_link: HubLink,
) -> None:
    sent = advice(sandbox)
    body = dumps(codec.advice_json(sent))

    created = await raw_post(
        sandbox, "/v2/stand-in-advices", body, signed(region_configs, body, "/v2/stand-in-advices"), hub_link
    )
    repeated = await raw_post(
        sandbox, "/v2/stand-in-advices", body, signed(region_configs, body, "/v2/stand-in-advices"), hub_link
    )

    assert created == (201, {"code": "0000", "message": "success", "data": codec.advice_json(sent)})
    assert repeated == (200, created[1])
    assert list(sandbox.system.advices) == [sent.advice_id]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("adviceId", ""),
        ("adviceId", "a" * 65),
        ("cardNo", "X0000001"),
        ("cardNo", "X00000018"),  # wrong check character
        ("issuingArea", "50"),
        ("serviceKind", "ZOO"),
        ("serviceKind", None),
        ("venueArea", 500103),
        ("grantedAt", "2025-03-01T08:30:00"),  # no offset
        ("grantedAt", "2025-02-30T08:30:00+08:00"),
        ("statusConfirmedAt", "yesterday"),
    ],
)
async def test_a_malformed_stand_in_advice_is_a_400_naming_the_field(
    sandbox: RunningSandbox,
    region_configs: dict[str, RegionConfig],
    field: str,
    value: object,
    hub_link: HubLink,
) -> None:
    body = dumps({**codec.advice_json(advice(sandbox)), field: value})

    status, reply = await raw_post(
        sandbox, "/v2/stand-in-advices", body, signed(region_configs, body, "/v2/stand-in-advices"), hub_link
    )

    assert (status, reply["code"]) == (400, "4000")
    assert str(reply["message"]).startswith(field + " ")
    assert sandbox.system.advices == {}


async def test_a_refused_or_unsigned_advice_records_nothing(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter, make_adapter: MakeAdapter
) -> None:
    forged = await make_adapter(secret="not-the-shared-secret")

    with pytest.raises(errors.RegionProtocolError):
        await adapter.send_stand_in_advice(advice(sandbox, venue_area="5001"), timeout=T)
    with pytest.raises(errors.RegionProtocolError):
        await forged.send_stand_in_advice(advice(sandbox), timeout=T)

    assert sandbox.system.advices == {}


async def test_a_stand_in_advice_meets_the_fault_knobs_as_a_card_call(
    sandbox: RunningSandbox, adapter: SichuanChongqingAdapter
) -> None:
    sent = advice(sandbox)
    sandbox.faults.update({"down": True})
    with pytest.raises(errors.RegionUnavailable):
        await adapter.send_stand_in_advice(sent, timeout=T)
    assert sandbox.system.advices == {}

    # Held back only when every call is: it is no settlement call.
    sandbox.faults.update({"down": False, "answer_delay_ms": 1000, "answer_delay_scope": "settlement"})
    await adapter.send_stand_in_advice(sent, timeout=0.5)
    sandbox.faults.update({"answer_delay_scope": "all"})
    with pytest.raises(errors.RegionTimeout):
        await adapter.send_stand_in_advice(sent, timeout=0.3)

    assert sandbox.system.advices == {sent.advice_id: sent}
