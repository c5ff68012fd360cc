"""The 长三角 HTTP/JSON envelope protocol: raw envelopes to the sandbox, and the adapter against broken servers.

What every region adapter does alike is tested in ``test_region_adapters.py``; this file covers what is
particular to this wire: yuan-string amounts, msgid/omsgid keyed settlement services and their refusals.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web

from adapters import AdapterSettings, CardStatus
from adapters.domain import (
    Bill,
    BillLine,
    CardCredential,
    CatalogueClass,
    FileRemoteCare,
    FilingType,
    InsuranceType,
    OutcomeState,
    Reversal,
    ServiceKind,
    StandInAdvice,
    VisitType,
)
from adapters.errors import (
    IdempotencyKeyReused,
    NotInsured,
    RegionProtocolError,
    RegionTimeout,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
)
from adapters.yangtze_delta import YangtzeDeltaAdapter, codec
from regions.cardsystem import CardRow
from regions.config import RegionConfig
from regions.sandbox import RunningSandbox
from regions.yangtze_delta import PATH, fields
from tests.conftest import HubLink

REGION = "yangtze-delta"
TIMEOUT = 5.0
UNKNOWN_SSN = "110101199001011237"  # well-formed, not seeded in this region


@pytest.fixture
async def sandbox(start_region: Callable[[str], Awaitable[RunningSandbox]]) -> RunningSandbox:
    return await start_region(REGION)


@contextlib.asynccontextmanager
async def _adapter(endpoint: str, options: Mapping[str, str] | None = None) -> AsyncIterator[YangtzeDeltaAdapter]:
    """A started adapter for ``endpoint`` (with the region's ``options``, for TLS to the sandbox), closed on exit."""
    adapter = YangtzeDeltaAdapter(AdapterSettings(REGION, endpoint, options or {}))
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


def _card_row(sandbox: RunningSandbox, status: CardStatus) -> CardRow:
    return next(row for row in sandbox.system.cards.values() if row.card.status is status)


async def _post(sandbox: RunningSandbox, envelope: dict[str, Any], link: HubLink) -> dict[str, Any]:
    async with link.http() as session, session.post(sandbox.address + PATH, json=envelope) as response:
        assert response.status == 200
        reply: dict[str, Any] = await response.json()
    return reply


# --- the wire -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"infno": "7777", "msgid": "m1", "input": {}}',
        b'{"infno": "1101", "input": {"data": {}}}',
        b'{"infno": "1101", "msgid": "m1", "input": {"data": {"certno": 5}}}',
        b'{"infno": "2802", "msgid": "m1", "input": {"data": {"certno": "1", "mdtrt_cert_no": "2", "action": "X"}}}',
        b'{"infno": "1101", "msgid": "m1", "input": "data"}',
    ],
)
async def test_malformed_envelopes_are_bad_input_not_server_errors(
    sandbox: RunningSandbox, body: bytes, hub_link: HubLink
) -> None:
    async with hub_link.http() as session, session.post(sandbox.address + PATH, data=body) as response:
        reply = await response.json()

    assert response.status == 200
    assert reply["infcode"] == -1
    assert reply["err_code"] == "BAD_INPUT"
    assert reply["inf_refmsgid"]


async def test_a_successful_envelope_reply(sandbox: RunningSandbox, hub_link: HubLink) -> None:
    row = _card_row(sandbox, CardStatus.LOCKED)
    envelope = {
        "infno": "1101",
        "msgid": "m-1",
        "mdtrtarea_admvs": "310104",
        "insuplc_admdvs": "",
        "infver": "V1.0",
        "input": {"data": {"certno": row.ssn, "mdtrt_cert_no": row.card.card_number}},
    }
    async with hub_link.http() as session, session.post(sandbox.address + PATH, json=envelope) as response:
        reply = await response.json()

    assert (response.status, reply["infcode"], reply["err_msg"]) == (200, 0, "")
    assert reply["output"]["cardinfo"]["card_stas"] == "3"
    assert reply["output"]["baseinfo"]["certno"] == row.ssn


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def fake_region() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start an in-process server on port 0 answering the envelope path with a given handler."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post(PATH, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def _not_json(_: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>gateway error</html>", content_type="text/html")


async def _server_error(_: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "boom"}, status=500)


async def _hang_up(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def _unknown_code(_: web.Request) -> web.StreamResponse:
    return web.json_response({"infcode": -1, "err_code": "SOMETHING_NEW", "err_msg": "?", "output": {}})


async def _broken_output(_: web.Request) -> web.StreamResponse:
    return web.json_response({"infcode": 0, "err_msg": "", "output": {"psn_exist": "maybe"}})


@pytest.mark.parametrize("handler", [_not_json, _server_error, _hang_up, _unknown_code, _broken_output])
async def test_unreadable_answers_are_protocol_errors(
    fake_region: Callable[[Handler], Awaitable[str]], handler: Handler
) -> None:
    async with _adapter(await fake_region(handler)) as adapter:
        with pytest.raises(RegionProtocolError) as caught:
            await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT)
    assert caught.value.may_have_reached and not caught.value.retryable


# --- amounts: yuan strings with two decimals ⇄ integer fen ----------------------------------------------

AMOUNTS = [
    (0, "0.00"),
    (1, "0.01"),
    (99, "0.99"),
    (100, "1.00"),
    (12345, "123.45"),
    (2**53 + 1, "90071992547409.93"),  # a float would round this to …92
    (2**63 - 1, "92233720368547758.07"),
    (-5, "-0.05"),
]
MALFORMED_AMOUNTS = [
    "",
    "1",
    "1.",
    "1.5",
    "1.500",
    ".50",
    "01.00",
    "+1.00",
    "-0.00",
    " 1.00",
    "1.00\n",
    "1e2",
    "1,000.00",
    "NaN",
    "１.００",  # full-width digits, which int() would read
    "92233720368547758.08",  # one fen beyond int64
]
# The sandbox and the adapter convert independently, as a real region and its adapter would (only the codes are shared).
CONVERTERS = [(codec.yuan, codec.parse_yuan), (fields.yuan, fields.parse_yuan)]
PARSERS = [codec.parse_yuan, fields.parse_yuan]


@pytest.mark.parametrize(("to_yuan", "to_fen"), CONVERTERS)
@pytest.mark.parametrize(("fen", "text"), AMOUNTS)
def test_amounts_convert_exactly_both_ways(
    to_yuan: Callable[[int], str], to_fen: Callable[[str], int], fen: int, text: str
) -> None:
    assert to_yuan(fen) == text
    assert to_fen(text) == fen


@pytest.mark.parametrize("to_fen", PARSERS)
@pytest.mark.parametrize("text", MALFORMED_AMOUNTS)
def test_malformed_amounts_are_refused(to_fen: Callable[[str], int], text: str) -> None:
    with pytest.raises(ValueError):
        to_fen(text)


# --- settlement through the adapter against the sandbox --------------------------------------------------


def _credential(sandbox: RunningSandbox, insurance_type: InsuranceType | None) -> CardCredential:
    """A NORMAL card of someone insured here with ``insurance_type`` and money in the account (None: uninsured)."""

    def wanted(row: CardRow) -> bool:
        person = sandbox.medical.insured.get(row.ssn)
        if row.card.status is not CardStatus.NORMAL or (person is None) != (insurance_type is None):
            return False
        return person is None or (person.insurance_type is insurance_type and person.account_balance_fen > 0)

    for row in filter(wanted, sandbox.system.cards.values()):
        card, name = row.card, sandbox.system.people[row.ssn].holder.name
        return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)
    raise AssertionError("no such person in the seed")


LINES = (
    BillLine("A001", "头孢曲松", CatalogueClass.A, 3, 123_45, 370_35),
    BillLine("B002", "CT 检查", CatalogueClass.B, 1, 600_00, 600_00, price_cap_fen=450_00),
    BillLine("C003", "单人病房", CatalogueClass.C, 2, 150_00, 300_00),
    BillLine("X004", "自费耗材", CatalogueClass.OUT_OF_CATALOGUE, 1, 1, 1),
    BillLine("A005", "手术", CatalogueClass.A, 1, 25_000_00, 25_000_00),
)


def _bill(sandbox: RunningSandbox, **changes: Any) -> Bill:
    credential = _credential(sandbox, InsuranceType.EMPLOYEE)
    insured_area = sandbox.medical.insured[credential.social_security_number].insured_area
    bill = Bill(
        request_id=uuid.uuid4().hex,
        credential=credential,
        insured_area=insured_area,
        treatment_area="510104",
        institution_id="H51010400001",
        hospital_level=3,
        visit_type=VisitType.INPATIENT,
        later_admission=False,
        lines=LINES,
        use_personal_account=True,
    )
    return replace(bill, **changes)


def _money(sandbox: RunningSandbox, bill: Bill) -> tuple[int, int, int]:
    """The person's (deductible used, fund paid, account balance) for the bill's visit type."""
    ssn = bill.credential.social_security_number
    acc = sandbox.medical.accumulator(ssn, bill.visit_type)
    return acc.deductible_used_fen, acc.fund_paid_fen, sandbox.medical.insured[ssn].account_balance_fen


@pytest.fixture
async def adapter(
    sandbox: RunningSandbox, region_configs: dict[str, RegionConfig]
) -> AsyncIterator[YangtzeDeltaAdapter]:
    async with _adapter(sandbox.address, region_configs[REGION].options) as started:
        yield started


async def test_a_settlement_splits_like_the_region_and_moves_its_accumulators_by_the_split(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    bill = _bill(sandbox)
    expected = sandbox.medical.pre_settle(bill)
    before = _money(sandbox, bill)

    assert await adapter.pre_settle(bill, timeout=TIMEOUT) == expected
    assert _money(sandbox, bill) == before  # pre-settlement has no side effects
    settlement = await adapter.settle(bill, timeout=TIMEOUT)

    split = settlement.split
    assert split == expected and not split.violations()
    assert split.total_fen == 26_270_36 and split.over_cap_fen == 150_00 and split.full_self_pay_fen == 300_01
    assert split.deductible_fen > 0 and split.fund_pay_fen > 0 and split.account_pay_fen > 0
    assert settlement.request_id == bill.request_id
    assert sandbox.medical.outcome(bill.request_id).settlement == settlement
    after = _money(sandbox, bill)
    assert (after[0] - before[0], after[1] - before[1], before[2] - after[2]) == (
        split.deductible_fen,
        split.fund_pay_fen,
        split.account_pay_fen,
    )


async def test_amounts_beyond_float_precision_cross_the_wire_exactly(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    huge = 2**53 + 1
    bill = _bill(sandbox, lines=(BillLine("C1", "x", CatalogueClass.C, 1, huge, huge), LINES[3]))

    split = await adapter.pre_settle(bill, timeout=TIMEOUT)

    assert split.total_fen == split.full_self_pay_fen == huge + 1


async def test_a_settlement_replays_on_the_same_msgid_and_refuses_another_bill(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    bill = _bill(sandbox)
    first = await adapter.settle(bill, timeout=TIMEOUT)
    once = _money(sandbox, bill)

    assert await adapter.settle(bill, timeout=TIMEOUT) == first
    assert _money(sandbox, bill) == once
    with pytest.raises(IdempotencyKeyReused):
        await adapter.settle(replace(bill, lines=LINES[:2]), timeout=TIMEOUT)


async def test_a_correction_of_an_unseen_msgid_refuses_the_late_settlement(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    bill = _bill(sandbox)
    before = _money(sandbox, bill)

    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)
    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)  # harmless to repeat
    with pytest.raises(SettlementCorrected) as caught:
        await adapter.settle(bill, timeout=TIMEOUT)

    assert caught.value.metadata["request_id"] == bill.request_id
    assert sandbox.medical.corrections == [bill.request_id, bill.request_id]
    assert _money(sandbox, bill) == before
    outcome = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)
    assert (outcome.state, outcome.settlement) == (OutcomeState.CORRECTED, None)


async def test_a_settlement_is_reversed_once(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    bill = _bill(sandbox)
    before = _money(sandbox, bill)
    await adapter.settle(bill, timeout=TIMEOUT)
    reversal = Reversal(uuid.uuid4().hex, bill.request_id, bill.credential.social_security_number, "wrong patient")

    await adapter.reverse_settlement(reversal, timeout=TIMEOUT)
    await adapter.reverse_settlement(reversal, timeout=TIMEOUT)  # a retry of the same reversal

    assert _money(sandbox, bill) == before
    with pytest.raises(SettlementNotSettled) as caught:
        await adapter.reverse_settlement(replace(reversal, request_id=uuid.uuid4().hex), timeout=TIMEOUT)
    assert caught.value.metadata == {"settlement_id": bill.request_id, "state": "REVERSED"}
    unknown = replace(reversal, request_id="r2", settlement_request_id="never-settled")
    with pytest.raises(SettlementNotFound):
        await adapter.reverse_settlement(unknown, timeout=TIMEOUT)


async def test_the_outcome_query_follows_a_settlement_through_its_states(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    bill = _bill(sandbox, visit_type=VisitType.OUTPATIENT, hospital_level=1, use_personal_account=False)
    before = _money(sandbox, bill)
    assert (await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)).state is OutcomeState.NOT_FOUND

    settlement = await adapter.settle(bill, timeout=TIMEOUT)
    settled = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)
    await adapter.correct_settlement(bill.request_id, timeout=TIMEOUT)
    corrected = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)

    assert (settled.state, settled.settlement) == (OutcomeState.SETTLED, settlement)
    assert (corrected.state, corrected.settlement) == (OutcomeState.CORRECTED, settlement)
    assert _money(sandbox, bill) == before


async def test_a_settlement_answered_too_late_is_found_by_the_outcome_query(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    bill = _bill(sandbox)
    sandbox.faults.update({"answer_delay_ms": 400, "answer_delay_calls": 1})

    with pytest.raises(RegionTimeout):
        await adapter.settle(bill, timeout=0.1)
    outcome = await adapter.settlement_outcome(bill.request_id, timeout=TIMEOUT)

    assert outcome.state is OutcomeState.SETTLED
    assert outcome.settlement is not None and outcome.settlement.request_id == bill.request_id


async def test_filings_and_the_uninsured(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    credential = _credential(sandbox, InsuranceType.EMPLOYEE)
    for kind in FilingType:
        request = FileRemoteCare(uuid.uuid4().hex, credential, "510000", kind, "2020-01-01", "2099-12-31")
        filing = await adapter.file_remote_care(request, timeout=TIMEOUT)
        assert (filing.filing_type, filing.treatment_area, filing.valid_until) == (kind, "510000", "2099-12-31")
        assert await adapter.file_remote_care(request, timeout=TIMEOUT) == filing

    uninsured = _bill(sandbox, credential=_credential(sandbox, None))
    with pytest.raises(NotInsured):
        await adapter.settle(uninsured, timeout=TIMEOUT)


# --- the settlement wire -----------------------------------------------------------------------------------


def _settle_envelope(sandbox: RunningSandbox, infno: str = "2207", **changes: Any) -> dict[str, Any]:
    data = codec.bill_data(_bill(sandbox))
    data.update(changes)
    return {"infno": infno, "msgid": uuid.uuid4().hex, "input": {"data": data}}


def _row(**changes: str) -> dict[str, str]:
    """The first line of ``LINES`` as a ``feedetail`` row, changed."""
    row = {
        "med_list_codg": "A001",
        "medins_list_name": "头孢曲松",
        "chrgitm_lv": "01",
        "cnt": "3",
        "pric": "123.45",
        "det_item_fee_sumamt": "370.35",
        "pric_uplmt_amt": "0.00",
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"medfee_sumamt": "100.00"},  # not the sum of the lines
        {"medfee_sumamt": 262.7036},
        {"feedetail": []},
        {"feedetail": [_row(det_item_fee_sumamt="370.3")], "medfee_sumamt": "370.30"},
        {"feedetail": [_row(det_item_fee_sumamt="-370.35")], "medfee_sumamt": "-370.35"},
        {"feedetail": [_row(chrgitm_lv="09")], "medfee_sumamt": "370.35"},
        {"feedetail": [_row(cnt="0")], "medfee_sumamt": "370.35"},
        {"feedetail": [_row(cnt="2")], "medfee_sumamt": "370.35"},  # 2 × 123.45 ≠ 370.35
        {"feedetail": [_row(pric_uplmt_amt="")], "medfee_sumamt": "370.35"},
        {"med_type": "99"},
        {"medins_lv": "4"},
        {"acct_used_flag": "Y"},
        {"insuplc_admdvs": "31"},
        {"certno": ""},
    ],
)
async def test_malformed_settlements_are_bad_input_and_change_nothing(
    sandbox: RunningSandbox,
    changes: dict[str, Any],
    hub_link: HubLink,
) -> None:
    reply = await _post(sandbox, _settle_envelope(sandbox, **changes), hub_link)

    assert (reply["infcode"], reply["err_code"]) == (-1, "BAD_INPUT")
    assert sandbox.medical.settlements == {}


FILING = {
    "certno": "1",
    "mdtrtarea_admvs": "510000",
    "fil_type": "11",
    "begndate": "2025-03-01",
    "enddate": "2025-03-01",
}


@pytest.mark.parametrize(
    ("infno", "data"),
    [
        ("2601", {"omsgid": "m1", "oinfno": "2801"}),
        ("2601", {"oinfno": "2207"}),
        ("5201", {"omsgid": "m" * 65}),
        ("2208", {"omsgid": "m1"}),
        ("2501", {**FILING, "begndate": "2025-02-30"}),
        ("2501", {**FILING, "begndate": "20250301"}),
        ("2501", {**FILING, "begndate": "2025-03-02"}),
        ("2501", {**FILING, "fil_type": "99"}),
        ("2501", {**FILING, "mdtrtarea_admvs": "51000"}),
    ],
)
async def test_malformed_settlement_calls_are_bad_input(
    sandbox: RunningSandbox,
    infno: str,
    data: dict[str, Any],
    hub_link: HubLink,
) -> None:
    reply = await _post(sandbox, {"infno": infno, "msgid": "m-2", "input": {"data": data}}, hub_link)

    assert (reply["infcode"], reply["err_code"]) == (-1, "BAD_INPUT")
    assert sandbox.medical.corrections == []


async def test_a_settlement_on_the_wire(sandbox: RunningSandbox, hub_link: HubLink) -> None:
    envelope = _settle_envelope(sandbox)

    reply = await _post(sandbox, envelope, hub_link)
    again = await _post(sandbox, envelope, hub_link)

    setlinfo = reply["output"]["setlinfo"]
    booked = sandbox.medical.outcome(envelope["msgid"]).settlement
    assert booked is not None
    assert reply["infcode"] == 0 and again["output"] == reply["output"]
    assert (setlinfo["setl_msgid"], setlinfo["setl_id"]) == (envelope["msgid"], booked.region_settlement_id)
    assert setlinfo["medfee_sumamt"] == "26270.36" and setlinfo["fulamt_ownpay_amt"] == "300.01"
    assert setlinfo["overlmt_selfpay"] == "150.00"
    assert setlinfo["hifp_pay"] == fields.yuan(booked.split.fund_pay_fen)
    assert setlinfo["psn_cash_pay"] == fields.yuan(booked.split.cash_pay_fen)


def _settled(setlinfo: dict[str, str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        info = {"setl_msgid": body["msgid"], **setlinfo}
        return web.json_response({"infcode": 0, "err_msg": "", "output": {"setlinfo": info}})

    return handler


SETLINFO = {
    "setl_id": "S1",
    "medfee_sumamt": "10.00",
    "fulamt_ownpay_amt": "0.00",
    "overlmt_selfpay": "0.00",
    "preselfpay_amt": "0.00",
    "inscp_scp_amt": "10.00",
    "act_pay_dedc": "0.00",
    "hifp_pay": "8.00",
    "acct_pay": "0.00",
    "psn_cash_pay": "2.00",
}


@pytest.mark.parametrize(
    "answer",
    [
        {"hifp_pay": 8.0},  # a number, not a yuan string
        {"hifp_pay": "8"},
        {"psn_cash_pay": "2.000"},
        {"setl_msgid": "another-msgid"},
    ],
)
async def test_unreadable_settlements_are_protocol_errors(
    sandbox: RunningSandbox, fake_region: Callable[[Handler], Awaitable[str]], answer: dict[str, Any]
) -> None:
    bill = _bill(sandbox)
    async with _adapter(await fake_region(_settled(SETLINFO))) as adapter:
        assert (await adapter.settle(bill, timeout=TIMEOUT)).split.fund_pay_fen == 800
    async with _adapter(await fake_region(_settled({**SETLINFO, **answer}))) as adapter:
        with pytest.raises(RegionProtocolError) as caught:
            await adapter.settle(bill, timeout=TIMEOUT)
    assert caught.value.may_have_reached


# --- the stand-in advice (9102) ----------------------------------------------------------------------------


def _advice(sandbox: RunningSandbox, **changes: Any) -> StandInAdvice:
    card = _card_row(sandbox, CardStatus.NORMAL).card
    advice = StandInAdvice(
        advice_id=uuid.uuid4().hex,
        card_number=card.card_number,
        issuing_area=card.issuing_area,
        service_kind=ServiceKind.LIBRARY,
        venue_area="320505",
        granted_at="2025-03-01T08:30:15.250+08:00",
        status_confirmed_at="2025-03-01T00:10:00Z",
    )
    return replace(advice, **changes)


async def test_a_stand_in_advice_is_recorded_once_with_every_field(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    advices = [_advice(sandbox, service_kind=kind) for kind in ServiceKind]

    for advice in advices:
        await adapter.send_stand_in_advice(advice, timeout=TIMEOUT)
    await adapter.send_stand_in_advice(advices[0], timeout=TIMEOUT)  # the hub resends until acknowledged

    assert sandbox.system.advices == {advice.advice_id: advice for advice in advices}


async def test_a_stand_in_advice_on_the_wire(sandbox: RunningSandbox, hub_link: HubLink) -> None:
    advice = _advice(sandbox)
    envelope = {"infno": "9102", "msgid": advice.advice_id, "input": {"data": codec.advice_data(advice)}}

    reply = await _post(sandbox, envelope, hub_link)
    again = await _post(sandbox, envelope, hub_link)

    assert (reply["infcode"], again["output"]) == (0, reply["output"])
    assert reply["output"]["advcinfo"] == {"advc_msgid": advice.advice_id, **codec.advice_data(advice)}
    assert reply["output"]["advcinfo"]["serv_type"] == "LIBRARY"
    assert list(sandbox.system.advices) == [advice.advice_id]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mdtrt_cert_no", "X0000001"),
        ("mdtrt_cert_no", "X00000018"),  # wrong check character
        ("card_admdvs", "31"),
        ("serv_type", "ZOO"),
        ("serv_type", "library"),
        ("use_admdvs", ""),
        ("grnt_time", "2025-03-01 08:30:00"),  # no offset
        ("grnt_time", "2025-02-30T08:30:00+08:00"),
        ("grnt_time", "1 March 2025"),
        ("stas_cfm_time", 1740787200),
    ],
)
async def test_a_malformed_stand_in_advice_is_bad_input_naming_the_field(
    sandbox: RunningSandbox,
    field: str,
    value: object,
    hub_link: HubLink,
) -> None:
    data = {**codec.advice_data(_advice(sandbox)), field: value}

    reply = await _post(sandbox, {"infno": "9102", "msgid": "a-1", "input": {"data": data}}, hub_link)

    assert (reply["infcode"], reply["err_code"]) == (-1, "BAD_INPUT")
    assert reply["err_msg"].startswith(field + " ")
    assert sandbox.system.advices == {}


async def test_a_refused_or_misacknowledged_advice_is_a_protocol_error(
    sandbox: RunningSandbox,
    adapter: YangtzeDeltaAdapter,
    fake_region: Callable[[Handler], Awaitable[str]],
) -> None:
    async def another_advice(_: web.Request) -> web.StreamResponse:
        output = {"advcinfo": {"advc_msgid": "another-advice"}}
        return web.json_response({"infcode": 0, "err_msg": "", "output": output})

    with pytest.raises(RegionProtocolError):
        await adapter.send_stand_in_advice(_advice(sandbox, venue_area="3205"), timeout=TIMEOUT)
    async with _adapter(await fake_region(another_advice)) as misled:
        with pytest.raises(RegionProtocolError) as caught:
            await misled.send_stand_in_advice(_advice(sandbox), timeout=TIMEOUT)

    assert caught.value.may_have_reached
    assert sandbox.system.advices == {}


async def test_a_stand_in_advice_meets_the_fault_knobs_as_a_card_call(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    advice = _advice(sandbox)
    sandbox.faults.update({"down": True})
    with pytest.raises(RegionUnavailable):
        await adapter.send_stand_in_advice(advice, timeout=TIMEOUT)
    assert sandbox.system.advices == {}

    # Held back only when every call is: it is no settlement call.
    sandbox.faults.update({"down": False, "answer_delay_ms": 1000, "answer_delay_scope": "settlement"})
    await adapter.send_stand_in_advice(advice, timeout=0.5)
    sandbox.faults.update({"answer_delay_scope": "all"})
    with pytest.raises(RegionTimeout):
        await adapter.send_stand_in_advice(advice, timeout=0.3)

    assert sandbox.system.advices == {advice.advice_id: advice}
