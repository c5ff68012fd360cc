"""Rules of card lookups and the five card services (DESIGN §4.1, §4.3, §4.4, §6)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace

from adapters.conformance.rule import Rule, Unmet, answer, describe, holds, refused, rule, same
from adapters.conformance.target import Target
from adapters.domain import (
    ApplyCard,
    CardAction,
    CardStatus,
    ChangeCard,
    Delivery,
    Holder,
    Insurance,
    ReplaceCard,
    ReplaceReason,
    Stage,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardStateConflict,
    HolderNotFound,
    IdempotencyKeyReused,
)
from adapters.identifiers import (
    InvalidIdentifier,
    parse_area,
    parse_card_identification_code,
    parse_card_number,
    parse_ssn,
)
from regions.seed import SeededPerson

STAGES_TO_OUTLET = (
    Stage.SUBMITTED,
    Stage.BANK_ACCOUNT_OPENED,
    Stage.AT_CARD_FACTORY,
    Stage.KEYS_LOADED,
    Stage.READY_AT_OUTLET,
    Stage.ISSUED,
)


def _new_id() -> str:
    return str(uuid.uuid4())


def _valid(what: str, parse: Callable[[str], str], value: str) -> None:
    try:
        parse(value)
    except InvalidIdentifier as exc:
        raise Unmet(f"a valid {what}", f"{value!r} ({exc.problem})") from None


def _apply_request(person: SeededPerson, request_id: str) -> ApplyCard:
    area = person.insurance.insured_area if person.insurance else person.issuing_area
    return ApplyCard(request_id, person.social_security_number, person.name, area, Delivery.OUTLET)


@rule("IDENTIFIERS", "what the adapter returns passes the identifier validators and keeps the card's issuing area")
async def identifiers(t: Target) -> None:
    person = t.samples.moved
    record = await answer("get_card of a NORMAL card", t.adapter.get_card(t.credential(person), timeout=t.timeout))
    card = record.card
    _valid("card number", parse_card_number, card.card_number)
    _valid("card identification code", parse_card_identification_code, card.card_identification_code)
    _valid("issuing area", parse_area, card.issuing_area)
    _valid("social security number", parse_ssn, record.holder.social_security_number)
    for insurance in record.insurances:
        _valid("insured area", parse_area, insurance.insured_area)
    same("card number (the one asked for)", person.card_number, card.card_number)
    same("issuing area (from the card identification code)", card.card_identification_code[:6], card.issuing_area)
    same("issuing area of the card, not of the holder's SSN", person.issuing_area, card.issuing_area)
    holds(
        card.issuing_area[:2] in t.config.provinces,
        f"an issuing area in the region's provinces {', '.join(t.config.provinces)}",
        repr(card.issuing_area),
    )


@rule("CARD-RECORD", "get_card returns the card, its holder and the holder's insurances as the region holds them")
async def card_record(t: Target) -> None:
    for person in (t.samples.employee, t.samples.resident, t.samples.uninsured):
        record = await answer("get_card of a NORMAL card", t.adapter.get_card(t.credential(person), timeout=t.timeout))
        region = t.sandbox.system.cards[person.card_number]
        same("card", region.card, record.card)
        same(
            "holder",
            Holder(person.social_security_number, person.name, person.gender, person.birth_date),
            record.holder,
        )
        expected = (
            (Insurance(person.insurance.insured_area, person.insurance.insurance_type),) if person.insurance else ()
        )
        same("insurances", expected, record.insurances)


@rule("CARD-STATUS-MAPPING", "a card of each of the six statuses comes back from get_card with that CardStatus")
async def card_status_mapping(t: Target) -> None:
    for status, person in t.samples.by_status.items():
        record = await answer(
            f"get_card of a {status.name} card", t.adapter.get_card(t.credential(person), timeout=t.timeout)
        )
        same(f"the {status.name} card's status", status, record.card.status)


@rule("KNOWS-HOLDER", "knows_holder is True for a person the region holds (card or not) and False otherwise")
async def knows_holder(t: Target) -> None:
    for what, ssn, known in (
        ("a card holder", t.samples.employee.social_security_number, True),
        ("a person with no card", t.samples.cardless.social_security_number, True),
        ("an unknown SSN", t.samples.unknown_ssn, False),
    ):
        got = await answer(f"knows_holder of {what}", t.adapter.knows_holder(ssn, timeout=t.timeout))
        same(f"knows_holder of {what}", known, got)


@rule("CARD-APPLY", "申领 submits one application per request id; a replay answers the same; refusals are mapped")
async def card_apply(t: Target) -> None:
    person = t.samples.cardless
    request = _apply_request(person, _new_id())
    first = await answer("apply_card", t.adapter.apply_card(request, timeout=t.timeout))
    again = await answer(
        "apply_card replayed under the same request_id", t.adapter.apply_card(request, timeout=t.timeout)
    )
    row = t.sandbox.system.people[person.social_security_number]
    same("applications the region holds", 1, len(row.applications))
    same("application_id", row.applications[0].application_id, first.application_id)
    same("stage", Stage.SUBMITTED, first.stage)
    same("the replay's answer", first, again)
    holder = t.samples.employee
    await refused(
        CardAlreadyHeld,
        "apply_card for a person holding a NORMAL card",
        t.adapter.apply_card(_apply_request(holder, _new_id()), timeout=t.timeout),
    )
    unknown = ApplyCard(_new_id(), t.samples.unknown_ssn, "王伟", request.insured_area)
    await refused(HolderNotFound, "apply_card of an unknown person", t.adapter.apply_card(unknown, timeout=t.timeout))


@rule("CARD-PROGRESS", "制卡进度 follows the application through every stage to ISSUED, history and card included")
async def card_progress(t: Target) -> None:
    person = t.samples.cardless
    ssn, name = person.social_security_number, person.name
    await refused(
        ApplicationNotFound,
        "get_application of a person with no application",
        t.adapter.get_application(ssn, name, timeout=t.timeout),
    )
    await answer("apply_card", t.adapter.apply_card(_apply_request(person, _new_id()), timeout=t.timeout))
    system = t.sandbox.system
    for expected in STAGES_TO_OUTLET:
        got = await answer("get_application", t.adapter.get_application(ssn, name, timeout=t.timeout))
        same("stage", expected, got.stage)
        system.clock.advance(system.stage_seconds)
    issued = await answer("get_application", t.adapter.get_application(ssn, name, timeout=t.timeout))
    same("the application (id, stage, history with times, card)", system.application(ssn, name), issued)
    holds(issued.card is not None, "the issued application to carry its new card", "no card")
    assert issued.card is not None
    _valid("card number", parse_card_number, issued.card.card_number)
    _valid("card identification code", parse_card_identification_code, issued.card.card_identification_code)


@rule("CARD-ENABLE", "enabling a SEALED card makes it NORMAL; a replay answers the same and changes nothing more")
async def card_enable(t: Target) -> None:
    changes = t.status_changes()
    person = t.samples.by_status[CardStatus.SEALED]
    request = ChangeCard(_new_id(), t.credential(person), CardAction.ENABLE)
    first = await answer("change_card ENABLE of a SEALED card", t.adapter.change_card(request, timeout=t.timeout))
    again = await answer("change_card ENABLE replayed", t.adapter.change_card(request, timeout=t.timeout))
    same("status", CardStatus.NORMAL, first.status)
    same("card", t.sandbox.system.cards[person.card_number].card, first)
    same("the replay's answer", first, again)
    same("status changes at the region", [CardStatus.NORMAL], [c.status for c in changes])


@rule("CARD-LOSS-REPORT", "临时挂失 and 解挂 move a NORMAL card to TEMPORARILY_LOST and back, once per request id")
async def card_loss_report(t: Target) -> None:
    changes = t.status_changes()
    person = t.samples.by_status[CardStatus.NORMAL]
    credential = t.credential(person)
    for action, after in (
        (CardAction.REPORT_LOSS, CardStatus.TEMPORARILY_LOST),
        (CardAction.CANCEL_LOSS, CardStatus.NORMAL),
    ):
        request = ChangeCard(_new_id(), credential, action)
        first = await answer(f"change_card {action.name}", t.adapter.change_card(request, timeout=t.timeout))
        again = await answer(f"change_card {action.name} replayed", t.adapter.change_card(request, timeout=t.timeout))
        same(f"status after {action.name}", after, first.status)
        same(f"the {action.name} replay's answer", first, again)
    same(
        "status changes at the region",
        [CardStatus.TEMPORARILY_LOST, CardStatus.NORMAL],
        [c.status for c in changes],
    )


@rule("CARD-REPLACE", "补换 cancels the card and starts one replacement application; a replay answers the same")
async def card_replace(t: Target) -> None:
    person = t.samples.by_status[CardStatus.NORMAL]
    request = ReplaceCard(_new_id(), t.credential(person), ReplaceReason.DAMAGED)
    first = await answer("replace_card", t.adapter.replace_card(request, timeout=t.timeout))
    again = await answer("replace_card replayed", t.adapter.replace_card(request, timeout=t.timeout))
    row = t.sandbox.system.people[person.social_security_number]
    same("stage", Stage.SUBMITTED, first.stage)
    same("the replay's answer", first, again)
    same("applications the region holds", 1, len(row.applications))
    same("application_id", row.applications[0].application_id, first.application_id)
    same(
        "the old card's status at the region",
        CardStatus.CANCELLED,
        t.sandbox.system.cards[person.card_number].card.status,
    )
    record = await answer("get_card of the replaced card", t.adapter.get_card(t.credential(person), timeout=t.timeout))
    same("the replaced card's status", CardStatus.CANCELLED, record.card.status)


@rule("CARD-STATE-CONFLICT", "a status change the card's status does not allow raises CardStateConflict, not retryable")
async def card_state_conflict(t: Target) -> None:
    for status, action in ((CardStatus.NORMAL, CardAction.ENABLE), (CardStatus.LOST, CardAction.CANCEL_LOSS)):
        person = t.samples.by_status[status]
        request = ChangeCard(_new_id(), t.credential(person), action)
        error = await refused(
            CardStateConflict,
            f"change_card {action.name} of a {status.name} card",
            t.adapter.change_card(request, timeout=t.timeout),
        )
        holds(not error.retryable, "a refusal that is not retryable", f"retryable {describe(error)}")
        same("the card's status at the region", status, t.sandbox.system.cards[person.card_number].card.status)


@rule("CARD-KEY-REUSED", "another request under a used request id raises IdempotencyKeyReused and changes nothing")
async def card_key_reused(t: Target) -> None:
    person = t.samples.by_status[CardStatus.NORMAL]
    request = ChangeCard(_new_id(), t.credential(person), CardAction.REPORT_LOSS)
    await answer("change_card REPORT_LOSS", t.adapter.change_card(request, timeout=t.timeout))
    error = await refused(
        IdempotencyKeyReused,
        "change_card CANCEL_LOSS under the REPORT_LOSS request_id",
        t.adapter.change_card(replace(request, action=CardAction.CANCEL_LOSS), timeout=t.timeout),
    )
    same("the error's request_id", request.request_id, error.metadata.get("request_id"))
    status = t.sandbox.system.cards[person.card_number].card.status
    same("the card's status at the region", CardStatus.TEMPORARILY_LOST, status)
    applied = _apply_request(t.samples.cardless, _new_id())
    await answer("apply_card", t.adapter.apply_card(applied, timeout=t.timeout))
    await refused(
        IdempotencyKeyReused,
        "apply_card of another delivery under the same request_id",
        t.adapter.apply_card(replace(applied, delivery=Delivery.MAIL), timeout=t.timeout),
    )


RULES: tuple[Rule, ...] = (
    identifiers,
    card_record,
    card_status_mapping,
    knows_holder,
    card_apply,
    card_progress,
    card_enable,
    card_loss_report,
    card_replace,
    card_state_conflict,
    card_key_reused,
)
