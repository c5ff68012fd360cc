"""The card-management system a sandbox stands in for: people, cards, the status machine and applications.

Protocol servers (one per region) translate their wire format to these calls; the behaviour is the same in
every region, so the hub sees the same card rules through three different protocols. Writes are idempotent on
the caller's message id, as a real region's front end is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from adapters.domain import (
    Application,
    Card,
    CardAction,
    CardRecord,
    CardStatus,
    Delivery,
    Holder,
    Insurance,
    Stage,
    StageEvent,
    StandInAdvice,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
)
from regions.seed import SeededPerson, make_card_number, make_identification_code

T = TypeVar("T")

PIPELINE = (Stage.SUBMITTED, Stage.BANK_ACCOUNT_OPENED, Stage.AT_CARD_FACTORY, Stage.KEYS_LOADED)
PRODUCTION_FAILURE = "photo rejected at the card factory"


class SandboxClock:
    """Wall time plus an offset that tests and demos advance to speed the application pipeline up."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self.offset = 0.0

    def now(self) -> float:
        return self._now() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class CardRow:
    card: Card
    ssn: str
    status_before_loss: CardStatus = CardStatus.NORMAL
    loss_reported_at: float = 0.0


@dataclass
class PersonRow:
    holder: Holder
    insurance: Insurance | None
    fails_production: bool
    card_numbers: list[str] = field(default_factory=list)
    applications: list[ApplicationRow] = field(default_factory=list)


@dataclass
class ApplicationRow:
    application_id: str
    ssn: str
    issuing_area: str
    delivery: Delivery
    submitted_at: float
    fails: bool
    card: Card


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


class CardSystem:
    """One region's card-management system, seeded with synthetic people.

    Args:
        region_id: the region's id (used in application ids).
        people: the seeded people.
        clock: the sandbox clock; applications advance one stage per ``stage_seconds`` of it.
        stage_seconds: how long each production stage takes.
        temporary_loss_days: after this many days a temporary loss report lapses and the card is usable again.
    """

    def __init__(
        self,
        region_id: str,
        people: list[SeededPerson],
        clock: SandboxClock | None = None,
        *,
        stage_seconds: float = 60.0,
        temporary_loss_days: int = 15,
    ) -> None:
        self.region_id = region_id
        self.clock = clock or SandboxClock()
        self.stage_seconds = stage_seconds
        self.temporary_loss_days = temporary_loss_days
        self.people: dict[str, PersonRow] = {}
        self.cards: dict[str, CardRow] = {}
        self._replies: dict[str, tuple[str, object]] = {}
        self._serial = 0
        self.listeners: list[Callable[[Card, str], None]] = []
        self.advices: dict[str, StandInAdvice] = {}  # stand-in grants the hub reported, by advice id
        for p in people:
            self._load(p)

    def _load(self, p: SeededPerson) -> None:
        holder = Holder(p.social_security_number, p.name, p.gender, p.birth_date)
        row = PersonRow(holder, p.insurance, p.fails_production)
        self.people[holder.social_security_number] = row
        if p.status is not None:
            card = Card(
                p.card_number,
                p.card_identification_code,
                p.issuing_area,
                p.status,
                p.generation,
                p.valid_until,
            )
            self.cards[card.card_number] = CardRow(
                card, holder.social_security_number, loss_reported_at=self.clock.now()
            )
            row.card_numbers.append(card.card_number)

    # --- reads -----------------------------------------------------------------------------------

    def find(self, ssn: str, card_number: str, code: str = "", name: str = "") -> CardRow:
        """The card row, after checking that every given field belongs to it."""
        row = self.cards.get(card_number)
        if row is None:
            raise CardNotFound(f"no card {card_number} in {self.region_id}", metadata={"card_number": card_number})
        person = self.people[row.ssn]
        if (
            row.ssn != ssn
            or (code and code != row.card.card_identification_code)
            or (name and name != person.holder.name)
        ):
            raise HolderMismatch(
                "the credential's fields do not belong to one card", metadata={"card_number": card_number}
            )
        self._lapse(row)
        return row

    def record(self, ssn: str, card_number: str, code: str = "", name: str = "") -> CardRecord:
        row = self.find(ssn, card_number, code, name)
        person = self.people[row.ssn]
        return CardRecord(person.holder, row.card, (person.insurance,) if person.insurance else ())

    def knows(self, ssn: str) -> bool:
        return ssn in self.people

    def application(self, ssn: str, name: str) -> Application:
        person = self._person(ssn, name)
        if not person.applications:
            raise ApplicationNotFound("no application for this person", metadata={})
        return self._view(person.applications[-1])

    # --- writes (idempotent on msgid) --------------------------------------------------------------

    def apply(self, msgid: str, ssn: str, name: str, insured_area: str, delivery: Delivery) -> Application:
        return self._once(msgid, ("apply", ssn, name, insured_area, delivery), lambda: self._apply(ssn, name, delivery))

    def change(self, msgid: str, ssn: str, card_number: str, code: str, name: str, action: CardAction) -> Card:
        key = ("change", ssn, card_number, code, name, action)
        return self._once(msgid, key, lambda: self._change(self.find(ssn, card_number, code, name), action))

    def replace_card(self, msgid: str, ssn: str, card_number: str, code: str, name: str, reason: str) -> Application:
        key = ("replace", ssn, card_number, code, name, reason)
        return self._once(msgid, key, lambda: self._replace(self.find(ssn, card_number, code, name)))

    def record_advice(self, advice: StandInAdvice) -> None:
        """Keep a stand-in advice from the hub; a repeat of the same advice id is harmless."""
        self.advices.setdefault(advice.advice_id, advice)

    def set_status(self, card_number: str, status: CardStatus) -> Card:
        """Change a card's status directly at the region (its own counter), not through the hub."""
        row = self.cards[card_number]
        return self._set(row, status)

    # --- internals ---------------------------------------------------------------------------------

    def _once(self, msgid: str, key: tuple[object, ...], action: Callable[[], T]) -> T:
        fingerprint = _fingerprint(*key)
        if msgid in self._replies:
            stored_fingerprint, reply = self._replies[msgid]
            if stored_fingerprint != fingerprint:
                raise IdempotencyKeyReused(msgid)
            if isinstance(reply, Exception):
                raise reply
            return reply  # type: ignore[return-value]
        try:
            result = action()
        except (CardStateConflict, CardAlreadyHeld, HolderMismatch, HolderNotFound, CardNotFound) as exc:
            self._replies[msgid] = (fingerprint, exc)
            raise
        self._replies[msgid] = (fingerprint, result)
        return result

    def _person(self, ssn: str, name: str) -> PersonRow:
        person = self.people.get(ssn)
        if person is None:
            raise HolderNotFound(f"{self.region_id} has no record of this person", metadata={})
        if person.holder.name != name:
            raise HolderMismatch("name does not match the person's record", metadata={})
        return person

    def _apply(self, ssn: str, name: str, delivery: Delivery) -> Application:
        person = self._person(ssn, name)
        for number in person.card_numbers:
            status = self.cards[number].card.status
            if status not in (CardStatus.CANCELLED, CardStatus.LOST):
                raise CardAlreadyHeld(
                    f"the person holds card {number} ({status.name})", metadata={"card_number": number}
                )
        if any(self._stage(a) not in (Stage.ISSUED, Stage.FAILED) for a in person.applications):
            raise CardAlreadyHeld("an application for this person is already in production", metadata={})
        area = self.cards[person.card_numbers[-1]].card.issuing_area if person.card_numbers else self._home_area(person)
        return self._view(self._new_application(person, area, delivery, generation=3))

    def _home_area(self, person: PersonRow) -> str:
        return person.insurance.insured_area if person.insurance else person.holder.social_security_number[:6]

    def _new_application(self, person: PersonRow, area: str, delivery: Delivery, generation: int) -> ApplicationRow:
        self._serial += 1
        now = self.clock.now()
        seed = _fingerprint(self.region_id, person.holder.social_security_number, self._serial)
        number = make_card_number(random.Random(seed))
        valid_until = (dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=3650)).isoformat()
        card = Card(
            number,
            make_identification_code(random.Random(seed[::-1]), area),
            area,
            CardStatus.SEALED,
            generation,
            valid_until,
        )
        app = ApplicationRow(
            f"{self.region_id}-{self._serial:06d}",
            person.holder.social_security_number,
            area,
            delivery,
            now,
            person.fails_production,
            card,
        )
        person.applications.append(app)
        return app

    def _stage(self, app: ApplicationRow) -> Stage:
        return self._history(app)[-1].stage

    def _history(self, app: ApplicationRow) -> list[StageEvent]:
        steps = int((self.clock.now() - app.submitted_at) // self.stage_seconds)
        final = Stage.MAILED if app.delivery is Delivery.MAIL else Stage.READY_AT_OUTLET
        path = [*PIPELINE[:3], Stage.FAILED] if app.fails else [*PIPELINE, final, Stage.ISSUED]
        return [
            StageEvent(s, _stamp(app.submitted_at + i * self.stage_seconds)) for i, s in enumerate(path[: steps + 1])
        ]

    def _view(self, app: ApplicationRow) -> Application:
        history = tuple(self._history(app))
        stage = history[-1].stage
        card = None
        if stage is Stage.ISSUED:
            card = self._issue(app)
        return Application(
            app.application_id, stage, history, PRODUCTION_FAILURE if stage is Stage.FAILED else "", card
        )

    def _issue(self, app: ApplicationRow) -> Card:
        if app.card.card_number not in self.cards:
            self.cards[app.card.card_number] = CardRow(app.card, app.ssn)
            self.people[app.ssn].card_numbers.append(app.card.card_number)
        return self.cards[app.card.card_number].card

    def _change(self, row: CardRow, action: CardAction) -> Card:
        status = row.card.status
        if action is CardAction.ENABLE and status is CardStatus.SEALED:
            return self._set(row, CardStatus.NORMAL)
        if action is CardAction.REPORT_LOSS and status in (
            CardStatus.NORMAL,
            CardStatus.SEALED,
            CardStatus.LOCKED,
        ):
            row.status_before_loss, row.loss_reported_at = status, self.clock.now()
            return self._set(row, CardStatus.TEMPORARILY_LOST)
        if action is CardAction.CANCEL_LOSS and status is CardStatus.TEMPORARILY_LOST:
            return self._set(row, row.status_before_loss)
        raise CardStateConflict(action.name, status)

    def _replace(self, row: CardRow) -> Application:
        if row.card.status is CardStatus.CANCELLED:
            raise CardStateConflict("REPLACE", row.card.status)
        self._set(row, CardStatus.CANCELLED)
        person = self.people[row.ssn]
        app = self._new_application(person, row.card.issuing_area, Delivery.OUTLET, row.card.generation)
        app.fails = False  # a replacement reuses the photo already on file
        return self._view(app)

    def _lapse(self, row: CardRow) -> None:
        expired = self.clock.now() - row.loss_reported_at > self.temporary_loss_days * 86400
        if row.card.status is CardStatus.TEMPORARILY_LOST and expired:
            self._set(row, row.status_before_loss)

    def _set(self, row: CardRow, status: CardStatus) -> Card:
        row.card = replace(row.card, status=status)
        for listener in self.listeners:
            listener(row.card, row.ssn)
        return row.card
