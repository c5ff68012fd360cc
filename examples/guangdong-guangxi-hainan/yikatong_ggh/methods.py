"""The 粤桂琼 sandbox's JSON-RPC methods: each reads its params, calls the card or medical system once and
returns its result object. :mod:`yikatong_ggh.sandbox` describes the protocol and runs them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from adapters.domain import Reversal
from regions.backend import Backend
from yikatong_ggh import wire
from yikatong_ggh.dialect import CARD_OP, DELIVERY, REPLACE_REASON, Method
from yikatong_ggh.wire import Params

Handler = Callable[[Params, str], Any]
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

    def ping(self, _: Params, __: str) -> Any:
        return {"region": self.cards.region_id, "time": int(self.now())}

    def person_exists(self, params: Params, _: str) -> Any:
        return {"exists": self.cards.knows(params.text("ssn"))}

    def card_get(self, params: Params, _: str) -> Any:
        record = self.cards.record(
            params.text("ssn"), params.text("card_no"), params.optional("chip_code"), params.optional("name")
        )
        return wire.record_json(record)

    def card_apply(self, params: Params, message_id: str) -> Any:
        application = self.cards.apply(
            message_id,
            params.text("ssn"),
            params.text("name"),
            params.area("insured_area"),
            params.coded("delivery", DELIVERY),
        )
        return wire.application_json(application)

    def card_change(self, params: Params, message_id: str) -> Any:
        ssn, card_no, chip_code, name = self._card_holder(params)
        card = self.cards.change(message_id, ssn, card_no, chip_code, name, params.coded("op", CARD_OP))
        return wire.card_json(card)

    def card_replace(self, params: Params, message_id: str) -> Any:
        ssn, card_no, chip_code, name = self._card_holder(params)
        reason = params.coded("reason", REPLACE_REASON)
        return wire.application_json(self.cards.replace_card(message_id, ssn, card_no, chip_code, name, reason.value))

    def card_progress(self, params: Params, _: str) -> Any:
        return wire.application_json(self.cards.application(params.text("ssn"), params.text("name")))

    @staticmethod
    def _card_holder(params: Params) -> tuple[str, str, str, str]:
        """A card write's ``person``: SSN, card number and name required, identification code checked if given."""
        block = params.nested("person")
        return block.text("ssn"), block.text("card_no"), block.optional("chip_code"), block.text("name")

    # --- the medical-insurance system ---------------------------------------------------------------------------

    def care_file(self, params: Params, message_id: str) -> Any:
        return wire.filing_json(self.medical.file(message_id, wire.filing_request(params, message_id)))

    def bill_preview(self, params: Params, message_id: str) -> Any:
        return {"split": wire.split_json(self.medical.pre_settle(wire.bill(params, message_id)))}

    def bill_settle(self, params: Params, message_id: str) -> Any:
        return wire.settlement_json(self.medical.settle(wire.bill(params, message_id)))

    def bill_outcome(self, params: Params, _: str) -> Any:
        msg_id = params.message_id("msg_id")
        return wire.outcome_json(msg_id, self.medical.outcome(msg_id))

    def bill_correct(self, params: Params, _: str) -> Any:
        msg_id = params.message_id("msg_id")
        self.medical.correct(msg_id)
        return wire.outcome_json(msg_id, self.medical.outcome(msg_id))

    def bill_reverse(self, params: Params, message_id: str) -> Any:
        msg_id = params.message_id("msg_id")
        reversal = Reversal(message_id, msg_id, params.text("ssn"), params.optional("reason"))
        self.medical.reverse(reversal)
        return wire.outcome_json(msg_id, self.medical.outcome(msg_id))

    # --- resident services --------------------------------------------------------------------------------------

    def standin_advise(self, params: Params, message_id: str) -> Any:
        advice = wire.advice(params, message_id)
        repeat = advice.advice_id in self.cards.advices
        self.cards.record_advice(advice)
        return {**wire.advice_json(self.cards.advices[advice.advice_id]), "repeat": repeat}
