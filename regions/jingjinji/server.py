"""The Beijing–Tianjin–Hebei sandbox: the card centre's native gRPC API (``jingjinji.v1``) on a CardSystem.

Business outcomes travel in each response's ``Result``: code 0 OK, 1000 bad input, 1001–1009 refusals (see
the proto). Only injected faults end a call with a gRPC status, ``UNAVAILABLE``. On this wire dates are
``YYYYMMDD``, card states the numeric ``kzt`` codes and insurance types the ``xzlx`` codes 310 and 390.

A state conflict (1003) says what was asked and what was found in a fixed form, ``action=ENABLE kzt=1``,
so that a client can rebuild it; ``ChangeCardState`` also carries the card as it is.
"""

from __future__ import annotations

from typing import Any

import grpc

from adapters.domain import (
    Application,
    Card,
    CardAction,
    CardStatus,
    Delivery,
    Holder,
    Insurance,
    InsuranceType,
    ReplaceReason,
)
from adapters.errors import (
    ApplicationNotFound,
    CardAlreadyHeld,
    CardNotFound,
    CardStateConflict,
    HolderMismatch,
    HolderNotFound,
    IdempotencyKeyReused,
    Refusal,
)
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1.card_center_pb2_grpc import (
    CardCenterServiceServicer,
    add_CardCenterServiceServicer_to_server,
)
from regions.cardsystem import CardSystem
from regions.backend import Backend
from regions.config import RegionConfig
from regions.faults import Faults

Context = grpc.aio.ServicerContext[Any, Any]

BAD_INPUT = 1000
STATE_CONFLICT = 1003
REFUSAL_CODES: dict[type[Refusal], int] = {
    CardNotFound: 1001,
    HolderMismatch: 1002,
    CardStateConflict: STATE_CONFLICT,
    HolderNotFound: 1004,
    ApplicationNotFound: 1005,
    CardAlreadyHeld: 1006,
    IdempotencyKeyReused: 1009,
}
XZLX = {InsuranceType.EMPLOYEE: "310", InsuranceType.RESIDENT: "390"}
FAULT_DETAILS = {"down": "card centre is down", "busy": "card centre is busy, try again"}
STOP_GRACE_SECONDS = 0.5
MAX_MSGID_LENGTH = 64


class BadInput(Exception):
    """A request field this card centre cannot read (answered with result code 1000)."""


# --- domain → wire ------------------------------------------------------------------------------


def wire_date(iso_date: str) -> str:
    """``YYYY-MM-DD`` → ``YYYYMMDD``."""
    return iso_date.replace("-", "")


def card_info(card: Card) -> pb.CardInfo:
    """The card as this wire carries it."""
    return pb.CardInfo(
        kh=card.card_number,
        sbm=card.card_identification_code,
        fkd=card.issuing_area,
        kzt=card.status.value,
        generation=card.generation,
        yxq=wire_date(card.valid_until),
    )


def person_info(holder: Holder) -> pb.PersonInfo:
    """The holder as this wire carries them."""
    return pb.PersonInfo(
        sfzh=holder.social_security_number,
        xm=holder.name,
        xb=holder.gender.value,
        csrq=wire_date(holder.birth_date),
    )


def insurance_info(insurance: Insurance) -> pb.InsuranceInfo:
    """An insurance as this wire carries it."""
    return pb.InsuranceInfo(cbd=insurance.insured_area, xzlx=XZLX[insurance.insurance_type])


def application_info(application: Application) -> pb.ApplicationInfo:
    """An application, its history and (once issued) its card as this wire carries them."""
    return pb.ApplicationInfo(
        sqbh=application.application_id,
        jd=application.stage.value,
        history=[pb.StageRecord(jd=e.stage.value, sj=e.at) for e in application.history],
        failure_reason=application.failure_reason,
        card=card_info(application.card) if application.card else None,
    )


def ok() -> pb.Result:
    """The result of a call that succeeded."""
    return pb.Result(code=0, message="OK")


def outcome(exc: Refusal | BadInput) -> pb.Result:
    """The result code and message for a refusal or unreadable input."""
    if isinstance(exc, BadInput):
        return pb.Result(code=BAD_INPUT, message=f"bad input: {exc}")
    if isinstance(exc, CardStateConflict):
        action, status = exc.metadata["action"], CardStatus[exc.metadata["status"]]
        return pb.Result(code=STATE_CONFLICT, message=f"action={action} kzt={status.value}: {exc.message}")
    return pb.Result(code=REFUSAL_CODES.get(type(exc), BAD_INPUT), message=exc.message)


# --- wire → domain ------------------------------------------------------------------------------


def parse_msgid(msgid: str) -> str:
    """The message id of a write; the centre deduplicates on it, so it must be present."""
    if not 1 <= len(msgid) <= MAX_MSGID_LENGTH or not msgid.isprintable() or not msgid.isascii():
        raise BadInput("msgid must be 1-64 printable ASCII characters")
    return msgid


def parse_action(action: str) -> CardAction:
    """``ENABLE``, ``REPORT_LOSS`` or ``CANCEL_LOSS``."""
    try:
        return CardAction(action)
    except ValueError:
        raise BadInput(f"unknown action {action!r}") from None


def parse_delivery(lqfs: str) -> Delivery:
    """``OUTLET`` or ``MAIL``."""
    try:
        return Delivery(lqfs)
    except ValueError:
        raise BadInput(f"unknown lqfs {lqfs!r}") from None


def parse_reason(reason: str) -> str:
    """A replacement reason (``LOST``, ``DAMAGED``, ``EXPIRED``, ``INFORMATION_CHANGED``)."""
    try:
        return ReplaceReason(reason).value
    except ValueError:
        raise BadInput(f"unknown reason {reason!r}") from None


# --- the service --------------------------------------------------------------------------------


class CardCenter(CardCenterServiceServicer):
    """``jingjinji.v1.CardCenterService`` on a card system, with the sandbox's fault knobs in front.

    Args:
        backend: the region's card and medical systems and its fault knobs.
    """

    def __init__(self, system: CardSystem, faults: Faults) -> None:
        self._system = system
        self._faults = faults

    async def _admit(self, context: Context) -> None:
        fault = await self._faults.before_call()
        if fault is not None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, FAULT_DETAILS.get(fault, fault))

    async def QueryCard(self, request: pb.QueryCardRequest, context: Context) -> pb.QueryCardResponse:
        """A card with its holder and insurances, whatever its status."""
        await self._admit(context)
        try:
            record = self._system.record(request.sfzh, request.kh, request.sbm, request.xm)
        except Refusal as exc:
            return pb.QueryCardResponse(result=outcome(exc))
        return pb.QueryCardResponse(
            result=ok(),
            person=person_info(record.holder),
            card=card_info(record.card),
            insurances=[insurance_info(i) for i in record.insurances],
        )

    async def QueryPerson(self, request: pb.QueryPersonRequest, context: Context) -> pb.QueryPersonResponse:
        """Whether the centre holds a record of the person."""
        await self._admit(context)
        return pb.QueryPersonResponse(result=ok(), known=self._system.knows(request.sfzh))

    async def SubmitApplication(
        self, request: pb.SubmitApplicationRequest, context: Context
    ) -> pb.SubmitApplicationResponse:
        """申领: a new card for a person who holds none."""
        await self._admit(context)
        try:
            msgid, delivery = parse_msgid(request.msgid), parse_delivery(request.lqfs)
            application = self._system.apply(msgid, request.sfzh, request.xm, request.cbd, delivery)
        except (Refusal, BadInput) as exc:
            return pb.SubmitApplicationResponse(result=outcome(exc))
        return pb.SubmitApplicationResponse(result=ok(), application=application_info(application))

    async def QueryApplication(
        self, request: pb.QueryApplicationRequest, context: Context
    ) -> pb.QueryApplicationResponse:
        """制卡进度: the person's latest application."""
        await self._admit(context)
        try:
            application = self._system.application(request.sfzh, request.xm)
        except Refusal as exc:
            return pb.QueryApplicationResponse(result=outcome(exc))
        return pb.QueryApplicationResponse(result=ok(), application=application_info(application))

    async def ChangeCardState(self, request: pb.ChangeCardStateRequest, context: Context) -> pb.ChangeCardStateResponse:
        """Enable the card, report it temporarily lost, or cancel that report."""
        await self._admit(context)
        try:
            msgid, action = parse_msgid(request.msgid), parse_action(request.action)
            card = self._system.change(msgid, request.sfzh, request.kh, request.sbm, request.xm, action)
        except CardStateConflict as exc:
            return pb.ChangeCardStateResponse(result=outcome(exc), card=self._current(request.kh))
        except (Refusal, BadInput) as exc:
            return pb.ChangeCardStateResponse(result=outcome(exc))
        return pb.ChangeCardStateResponse(result=ok(), card=card_info(card))

    async def ReplaceCard(self, request: pb.ReplaceCardRequest, context: Context) -> pb.ReplaceCardResponse:
        """补换: cancel the card and start production of its replacement."""
        await self._admit(context)
        try:
            msgid, reason = parse_msgid(request.msgid), parse_reason(request.reason)
            application = self._system.replace_card(msgid, request.sfzh, request.kh, request.sbm, request.xm, reason)
        except (Refusal, BadInput) as exc:
            return pb.ReplaceCardResponse(result=outcome(exc))
        return pb.ReplaceCardResponse(result=ok(), application=application_info(application))

    def _current(self, card_number: str) -> pb.CardInfo | None:
        row = self._system.cards.get(card_number)
        return card_info(row.card) if row else None


class JingjinjiServer:
    """A running card-centre server.

    Attributes:
        address: ``host:port`` it listens on, what the adapter's endpoint setting should be.
    """

    def __init__(self, server: grpc.aio.Server, address: str) -> None:
        self._server = server
        self.address = address

    async def stop(self) -> None:
        """Stop accepting calls and give those in flight a short grace to finish."""
        await self._server.stop(grace=STOP_GRACE_SECONDS)


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> JingjinjiServer:
    """Start the card centre on ``host:port`` (0 picks a free port).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration (unused: the card centre needs nothing from it).
        host: interface to listen on.
        port: port to listen on; 0 picks a free one.

    Returns:
        The running server; ``address`` names the port actually bound.
    """
    server = grpc.aio.server()
    system, faults = backend.cards, backend.faults
    add_CardCenterServiceServicer_to_server(CardCenter(system, faults), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return JingjinjiServer(server, f"{host}:{bound}")
