"""The 粤桂琼 sandbox's JSON-RPC methods: each reads its params, calls the card or medical system once and
returns its result object, written and read by :mod:`yikatong_ggh.codec` (which the adapter shares).
:mod:`yikatong_ggh.sandbox` describes the protocol and runs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters.domain import CardCredential
from adapters.jsonwire import Fields
from regions.backend import Backend
from yikatong_ggh import codec
from yikatong_ggh.dialect import Method

Handler = Callable[[Fields, str], Any]
"""A method: its params and the call's message id (``""`` when the call carries none) → its result."""


class Methods:
    """The region's methods over its back-end systems.

    Args:
        backend: the region's card and medical systems.
        now: unix time, reported by ``system.ping``.
    """

    def __init__(self, backend: Backend, now: Callable[[], float] = time.time) -> None:
        self.cards, self.medical, self.now = backend.cards, backend.medical, now
        self.table: dict[Method, Handler] = {
            Method.PING: self.ping,
            Method.PERSON_EXISTS: self.person_exists,
            Method.CARD_GET: self.card_get,
            Method.CARD_APPLY: self.card_apply,
            Method.CARD_CHANGE: self.card_change,
            Method.CARD_REPLACE: self.card_replace,
            Method.CARD_PROGRESS: self.card_progress,
            Method.CARE_FILE: self.care_file,
            Method.BILL_PREVIEW: self.bill_preview,
            Method.BILL_SETTLE: self.bill_settle,
            Method.BILL_OUTCOME: self.bill_outcome,
            Method.BILL_CORRECT: self.bill_correct,
            Method.BILL_REVERSE: self.bill_reverse,
            Method.STANDIN_ADVISE: self.standin_advise,
        }

    # --- the card system ----------------------------------------------------------------------------------------

    def ping(self, _: Fields, __: str) -> Any:
        return {"region": self.cards.region_id, "time": int(self.now())}

    def person_exists(self, params: Fields, _: str) -> Any:
        return {"exists": self.cards.knows(params.text("ssn"))}

    def card_get(self, params: Fields, _: str) -> Any:
        c = codec.card_query(params)
        record = self.cards.record(c.social_security_number, c.card_number, c.card_identification_code, c.holder_name)
        return codec.record_json(record)

    def card_apply(self, params: Fields, message_id: str) -> Any:
        a = codec.apply(params, message_id)
        holder = (a.social_security_number, a.holder_name)
        return codec.application_json(self.cards.apply(a.request_id, *holder, a.insured_area, a.delivery))

    def card_change(self, params: Fields, message_id: str) -> Any:
        change = codec.change(params, message_id)
        card = self.cards.change(change.request_id, *self._holder(change.credential), change.action)
        return codec.card_json(card)

    def card_replace(self, params: Fields, message_id: str) -> Any:
        replacement = codec.replacement(params, message_id)
        holder = self._holder(replacement.credential)
        application = self.cards.replace_card(replacement.request_id, *holder, replacement.reason.value)
        return codec.application_json(application)

    def card_progress(self, params: Fields, _: str) -> Any:
        return codec.application_json(self.cards.application(params.text("ssn"), params.text("name")))

    @staticmethod
    def _holder(credential: CardCredential) -> tuple[str, str, str, str]:
        """A card write's SSN, card number, identification code and name, as the card system takes them."""
        c = credential
        return c.social_security_number, c.card_number, c.card_identification_code, c.holder_name

    # --- the medical-insurance system ---------------------------------------------------------------------------

    def care_file(self, params: Fields, message_id: str) -> Any:
        return codec.filing_json(self.medical.file(message_id, codec.filing_request(params, message_id)))

    def bill_preview(self, params: Fields, message_id: str) -> Any:
        return {"split": codec.split_json(self.medical.pre_settle(codec.bill(params, message_id)))}

    def bill_settle(self, params: Fields, message_id: str) -> Any:
        return codec.settlement_json(self.medical.settle(codec.bill(params, message_id)))

    def bill_outcome(self, params: Fields, _: str) -> Any:
        msg_id = params.message_id("msg_id")
        return codec.outcome_json(msg_id, self.medical.outcome(msg_id))

    def bill_correct(self, params: Fields, _: str) -> Any:
        msg_id = params.message_id("msg_id")
        self.medical.correct(msg_id)
        return codec.outcome_json(msg_id, self.medical.outcome(msg_id))

    def bill_reverse(self, params: Fields, message_id: str) -> Any:
        reversal = codec.reversal(params, message_id)
        self.medical.reverse(reversal)
        msg_id = reversal.settlement_request_id
        return codec.outcome_json(msg_id, self.medical.outcome(msg_id))

    # --- resident services --------------------------------------------------------------------------------------

    def standin_advise(self, params: Fields, message_id: str) -> Any:
        advice = codec.advice(params, message_id)
        repeat = advice.advice_id in self.cards.advices
        self.cards.record_advice(advice)
        recorded = self.cards.advices[advice.advice_id]
        return {"advice_id": recorded.advice_id, **codec.advice_json(recorded), "repeat": repeat}
