"""The 长三角 adapter against the real 长三角 sandbox (HTTP/JSON envelope protocol) on loopback."""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import entry_points

import aiohttp
import pytest
from aiohttp import web

from adapters import (
    AdapterSettings,
    ApplyCard,
    Card,
    CardAction,
    CardCredential,
    CardStatus,
    ChangeCard,
    Delivery,
    InsuranceType,
    ReplaceCard,
    ReplaceReason,
    Stage,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    RegionProtocolError,
    RegionTimeout,
    RegionUnavailable,
)
from adapters.yangtze_delta import YangtzeDeltaAdapter
from regions.cardsystem import CardRow, PersonRow
from regions.sandbox import RunningSandbox
from regions.yangtze_delta import PATH

REGION = "yangtze-delta"
TIMEOUT = 5.0
UNKNOWN_SSN = "110101199001011237"  # well-formed, not seeded in this region


@pytest.fixture
async def sandbox(start_region: Callable[[str], Awaitable[RunningSandbox]]) -> RunningSandbox:
    return await start_region(REGION)


@pytest.fixture
async def adapter(sandbox: RunningSandbox) -> AsyncIterator[YangtzeDeltaAdapter]:
    async with _adapter(sandbox.address) as started:
        yield started


@contextlib.asynccontextmanager
async def _adapter(endpoint: str) -> AsyncIterator[YangtzeDeltaAdapter]:
    """A started adapter for ``endpoint``, closed on exit."""
    adapter = YangtzeDeltaAdapter(AdapterSettings(REGION, endpoint))
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


def _card_row(sandbox: RunningSandbox, status: CardStatus, *, insured: bool = False) -> CardRow:
    system = sandbox.system
    return next(
        row
        for row in system.cards.values()
        if row.card.status is status and (system.people[row.ssn].insurance is not None or not insured)
    )


def _credential(sandbox: RunningSandbox, row: CardRow) -> CardCredential:
    name = sandbox.system.people[row.ssn].holder.name
    card = row.card
    return CardCredential(row.ssn, card.card_number, card.card_identification_code, card.issuing_area, name)


def _cardless(sandbox: RunningSandbox) -> PersonRow:
    return next(
        p
        for p in sandbox.system.people.values()
        if not p.card_numbers and not p.applications and not p.fails_production
    )


def _apply_request(person: PersonRow, delivery: Delivery = Delivery.OUTLET) -> ApplyCard:
    area = person.insurance.insured_area if person.insurance else person.holder.social_security_number[:6]
    return ApplyCard(str(uuid.uuid4()), person.holder.social_security_number, person.holder.name, area, delivery)


def _changes(sandbox: RunningSandbox) -> list[Card]:
    seen: list[Card] = []
    sandbox.system.listeners.append(lambda card, _ssn: seen.append(card))
    return seen


# --- reads --------------------------------------------------------------------------------------------


async def test_get_card_of_a_normal_card_returns_holder_and_insurance(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    row = _card_row(sandbox, CardStatus.NORMAL, insured=True)
    person = sandbox.system.people[row.ssn]

    record = await adapter.get_card(_credential(sandbox, row), timeout=TIMEOUT)

    assert record.card == row.card
    assert record.holder == person.holder
    assert record.insurances == (person.insurance,)
    assert record.insurances[0].insurance_type in (InsuranceType.EMPLOYEE, InsuranceType.RESIDENT)


@pytest.mark.parametrize("status", [s for s in CardStatus if s is not CardStatus.NORMAL])
async def test_get_card_reports_every_other_status_without_error(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter, status: CardStatus
) -> None:
    row = _card_row(sandbox, status)

    record = await adapter.get_card(_credential(sandbox, row), timeout=TIMEOUT)

    assert record.card.status is status


async def test_get_card_of_an_uninsured_holder_has_no_insurances(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    row = next(r for r in sandbox.system.cards.values() if sandbox.system.people[r.ssn].insurance is None)

    record = await adapter.get_card(_credential(sandbox, row), timeout=TIMEOUT)

    assert record.insurances == ()


async def test_get_card_with_another_persons_ssn_is_a_holder_mismatch(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    row = _card_row(sandbox, CardStatus.NORMAL)
    other = next(ssn for ssn in sandbox.system.people if ssn != row.ssn)
    credential = _credential(sandbox, row)

    with pytest.raises(HolderMismatch) as caught:
        await adapter.get_card(
            CardCredential(other, row.card.card_number, "", row.card.issuing_area, ""), timeout=TIMEOUT
        )
    assert caught.value.reason == "HOLDER_MISMATCH"
    with pytest.raises(HolderMismatch):
        await adapter.get_card(
            CardCredential(row.ssn, row.card.card_number, "", row.card.issuing_area, credential.holder_name + "某"),
            timeout=TIMEOUT,
        )


async def test_get_card_of_an_unknown_card_number_is_card_not_found(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    row = _card_row(sandbox, CardStatus.NORMAL)
    credential = CardCredential(row.ssn, "X00000019", "", row.card.issuing_area, "")

    with pytest.raises(CardNotFound) as caught:
        await adapter.get_card(credential, timeout=TIMEOUT)
    assert caught.value.metadata["region"] == REGION


async def test_knows_holder(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    known = next(iter(sandbox.system.people))

    assert await adapter.knows_holder(known, timeout=TIMEOUT) is True
    assert await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT) is False


async def test_check_health_answers(adapter: YangtzeDeltaAdapter) -> None:
    await adapter.check_health(timeout=TIMEOUT)


# --- applications -------------------------------------------------------------------------------------


async def test_application_moves_through_every_stage_to_issued(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    person = _cardless(sandbox)
    ssn, name = person.holder.social_security_number, person.holder.name

    submitted = await adapter.apply_card(_apply_request(person), timeout=TIMEOUT)
    stages = [(await adapter.get_application(ssn, name, timeout=TIMEOUT)).stage]
    for _ in range(5):
        sandbox.system.clock.advance(sandbox.system.stage_seconds)
        stages.append((await adapter.get_application(ssn, name, timeout=TIMEOUT)).stage)
    issued = await adapter.get_application(ssn, name, timeout=TIMEOUT)

    assert submitted.stage is Stage.SUBMITTED
    assert stages == [
        Stage.SUBMITTED,
        Stage.BANK_ACCOUNT_OPENED,
        Stage.AT_CARD_FACTORY,
        Stage.KEYS_LOADED,
        Stage.READY_AT_OUTLET,
        Stage.ISSUED,
    ]
    assert issued == sandbox.system.application(ssn, name)  # history and times survive the wire
    assert issued.application_id == submitted.application_id
    assert issued.card is not None and issued.card.status is CardStatus.SEALED


async def test_mailed_application_passes_the_mailed_stage(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    person = _cardless(sandbox)
    await adapter.apply_card(_apply_request(person, Delivery.MAIL), timeout=TIMEOUT)
    sandbox.system.clock.advance(4 * sandbox.system.stage_seconds)

    application = await adapter.get_application(
        person.holder.social_security_number, person.holder.name, timeout=TIMEOUT
    )

    assert application.stage is Stage.MAILED
    assert [e.stage for e in application.history][-2:] == [Stage.KEYS_LOADED, Stage.MAILED]


async def test_apply_refusals(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    holder = sandbox.system.people[_card_row(sandbox, CardStatus.NORMAL).ssn]
    request = _apply_request(holder)

    with pytest.raises(CardAlreadyHeld):
        await adapter.apply_card(request, timeout=TIMEOUT)
    with pytest.raises(HolderNotFound):
        await adapter.apply_card(ApplyCard(str(uuid.uuid4()), UNKNOWN_SSN, "王伟", "310104"), timeout=TIMEOUT)
    with pytest.raises(HolderMismatch):
        await adapter.apply_card(
            ApplyCard(str(uuid.uuid4()), request.social_security_number, "某某", "310104"), timeout=TIMEOUT
        )


async def test_progress_of_a_person_without_application_is_application_not_found(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    person = _cardless(sandbox)

    with pytest.raises(ApplicationNotFound):
        await adapter.get_application(person.holder.social_security_number, person.holder.name, timeout=TIMEOUT)


# --- card status changes and replacement -----------------------------------------------------------------


async def test_enable_report_loss_and_cancel_loss(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    credential = _credential(sandbox, _card_row(sandbox, CardStatus.SEALED))

    async def change(action: CardAction) -> CardStatus:
        card = await adapter.change_card(ChangeCard(str(uuid.uuid4()), credential, action), timeout=TIMEOUT)
        return card.status

    assert await change(CardAction.ENABLE) is CardStatus.NORMAL
    assert await change(CardAction.REPORT_LOSS) is CardStatus.TEMPORARILY_LOST
    assert await change(CardAction.CANCEL_LOSS) is CardStatus.NORMAL
    assert sandbox.system.cards[credential.card_number].card.status is CardStatus.NORMAL


async def test_a_change_not_allowed_from_the_status_is_a_conflict(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    credential = _credential(sandbox, _card_row(sandbox, CardStatus.NORMAL))

    with pytest.raises(CardStateConflict) as caught:
        await adapter.change_card(ChangeCard(str(uuid.uuid4()), credential, CardAction.ENABLE), timeout=TIMEOUT)
    assert caught.value.metadata == {"action": "ENABLE", "status": "NORMAL"}


async def test_replace_cancels_the_old_card_and_starts_an_application(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    row = _card_row(sandbox, CardStatus.NORMAL)
    credential = _credential(sandbox, row)

    application = await adapter.replace_card(
        ReplaceCard(str(uuid.uuid4()), credential, ReplaceReason.DAMAGED), timeout=TIMEOUT
    )

    assert application.stage is Stage.SUBMITTED
    assert (await adapter.get_card(credential, timeout=TIMEOUT)).card.status is CardStatus.CANCELLED
    progress = await adapter.get_application(credential.social_security_number, credential.holder_name, timeout=TIMEOUT)
    assert progress.application_id == application.application_id


# --- idempotency ----------------------------------------------------------------------------------------


async def test_a_replayed_write_gets_the_same_answer_and_changes_once(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    changes = _changes(sandbox)
    request = ChangeCard("req-enable-1", _credential(sandbox, _card_row(sandbox, CardStatus.SEALED)), CardAction.ENABLE)

    first = await adapter.change_card(request, timeout=TIMEOUT)
    second = await adapter.change_card(request, timeout=TIMEOUT)

    assert first == second
    assert first.status is CardStatus.NORMAL
    assert len(changes) == 1


async def test_a_replayed_application_is_one_application(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    person = _cardless(sandbox)
    request = _apply_request(person)

    first = await adapter.apply_card(request, timeout=TIMEOUT)
    second = await adapter.apply_card(request, timeout=TIMEOUT)

    assert first.application_id == second.application_id
    assert len(person.applications) == 1


async def test_the_same_request_id_for_another_request_is_refused(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    credential = _credential(sandbox, _card_row(sandbox, CardStatus.NORMAL))
    await adapter.change_card(ChangeCard("req-reused", credential, CardAction.REPORT_LOSS), timeout=TIMEOUT)

    with pytest.raises(IdempotencyKeyReused) as caught:
        await adapter.change_card(ChangeCard("req-reused", credential, CardAction.CANCEL_LOSS), timeout=TIMEOUT)
    assert caught.value.metadata == {"request_id": "req-reused"}
    assert sandbox.system.cards[credential.card_number].card.status is CardStatus.TEMPORARILY_LOST


# --- faults -----------------------------------------------------------------------------------------------


async def test_a_region_that_is_down_is_unavailable(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    sandbox.faults.down = True

    with pytest.raises(RegionUnavailable) as caught:
        await adapter.check_health(timeout=TIMEOUT)
    assert caught.value.retryable and not caught.value.may_have_reached
    assert caught.value.metadata == {"region": REGION}


async def test_a_slow_region_times_out(sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter) -> None:
    sandbox.faults.latency_ms = 500

    with pytest.raises(RegionTimeout) as caught:
        await adapter.knows_holder(UNKNOWN_SSN, timeout=0.1)
    assert caught.value.may_have_reached


async def test_a_busy_region_is_unavailable_and_does_not_act(
    sandbox: RunningSandbox, adapter: YangtzeDeltaAdapter
) -> None:
    changes = _changes(sandbox)
    sandbox.faults.error_rate = 1.0
    request = ChangeCard(
        str(uuid.uuid4()), _credential(sandbox, _card_row(sandbox, CardStatus.SEALED)), CardAction.ENABLE
    )

    with pytest.raises(RegionUnavailable):
        await adapter.change_card(request, timeout=TIMEOUT)
    assert changes == []


async def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _adapter(f"http://127.0.0.1:{port}") as adapter:
        with pytest.raises(RegionUnavailable):
            await adapter.check_health(timeout=TIMEOUT)


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
async def test_malformed_envelopes_are_bad_input_not_server_errors(sandbox: RunningSandbox, body: bytes) -> None:
    async with aiohttp.ClientSession() as session, session.post(sandbox.address + PATH, data=body) as response:
        reply = await response.json()

    assert response.status == 200
    assert reply["infcode"] == -1
    assert reply["err_code"] == "BAD_INPUT"
    assert reply["inf_refmsgid"]


async def test_a_successful_envelope_reply(sandbox: RunningSandbox) -> None:
    row = _card_row(sandbox, CardStatus.LOCKED)
    envelope = {
        "infno": "1101",
        "msgid": "m-1",
        "mdtrtarea_admvs": "310104",
        "insuplc_admdvs": "",
        "infver": "V1.0",
        "input": {"data": {"certno": row.ssn, "mdtrt_cert_no": row.card.card_number}},
    }
    async with aiohttp.ClientSession() as session, session.post(sandbox.address + PATH, json=envelope) as response:
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


def test_the_adapter_is_registered_under_its_entry_point() -> None:
    (entry,) = entry_points(group="yikatong.adapters", name=REGION)

    assert entry.load() is YangtzeDeltaAdapter
