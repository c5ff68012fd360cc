"""The Beijing–Tianjin–Hebei sandbox: the region's native gRPC API (``jingjinji.v1``) on one port.

Two services share the server: the card centre (``CardCenterService``, on a CardSystem, here) and the
medical-insurance centre (``MedicalInsuranceService``, on a MedicalSystem, in ``regions.jingjinji.medical``).

Business outcomes travel in each response's ``Result``: code 0 OK, 1000 bad input, 1001–1013 refusals (see
the proto). Only injected faults end a call with a gRPC status, ``UNAVAILABLE``; they are applied to every
call of both services by :class:`FaultGate`, which also holds back the answer of a processed call when the
fault knobs ask for it. On this wire dates are ``YYYYMMDD``, card states the numeric ``kzt`` codes and
insurance types the ``xzlx`` codes 310 and 390.

A state conflict (1003) says what was asked and what was found in a fixed form, ``action=ENABLE kzt=1``,
so that a client can rebuild it; ``ChangeCardState`` also carries the card as it is. A reversal of a
settlement that is no longer settled (1012) names the state it is in the same way, ``state=REVERSED``.

``RecordStandInAdvice`` (DESIGN §4.7) keeps the hub's report of a resident service it granted on a cached
card state while the centre was unreachable; its ``msgid`` is the advice id, so a resend is acknowledged
again and records nothing new. Its times are RFC 3339 with an offset, kept as sent. It is a card-centre call:
an answer delay scoped to settlement calls does not hold it back.
"""

from __future__ import annotations

from typing import Any

import grpc

from adapters.domain import StandInAdvice
from adapters.errors import (
    CardStateConflict,
    Refusal,
)
from adapters.jingjinji.protocol import SERVICE_KINDS
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1.card_center_pb2_grpc import (
    CardCenterServiceServicer,
    add_CardCenterServiceServicer_to_server,
)
from jingjinji.v1.medical_insurance_pb2_grpc import add_MedicalInsuranceServiceServicer_to_server
from regions.backend import Backend
from regions.cardsystem import CardSystem
from regions.config import RegionConfig
from regions.faults import Faults
from regions.jingjinji.medical import MedicalInsurance
from regions.jingjinji.wire import (
    BadInput,
    Context,
    application_info,
    card_info,
    insurance_info,
    ok,
    outcome,
    parse_action,
    parse_area,
    parse_card_number,
    parse_delivery,
    parse_enum,
    parse_msgid,
    parse_reason,
    parse_time,
    person_info,
)
from regions.unary import Unary, UnaryInterceptor
from regions.wiretap import Wiretap

FAULT_DETAILS = {"down": "centre is down", "busy": "centre is busy, try again"}
STOP_GRACE_SECONDS = 0.5


class FaultGate(UnaryInterceptor):
    """Applies the sandbox's fault knobs around every unary call of every service on the server.

    Before the call: added latency, then "down" or "busy" end it with ``UNAVAILABLE`` unprocessed. After
    the call is processed: the answer delay, so that a caller may give up on a request the region did act on.

    Args:
        faults: the region's fault knobs.
    """

    def __init__(self, faults: Faults) -> None:
        self._faults = faults

    def wrap(self, inner: Unary, details: grpc.HandlerCallDetails) -> Unary:
        settlement = "MedicalInsuranceService" in details.method

        async def gated(request: Any, context: Context) -> Any:
            fault = await self._faults.before_call()
            if fault is not None:
                await context.abort(grpc.StatusCode.UNAVAILABLE, FAULT_DETAILS.get(fault, fault))
            response = await inner(request, context)
            await self._faults.after_call(settlement=settlement)
            return response

        return gated


# --- the card centre ------------------------------------------------------------------------------


def parse_advice(request: pb.RecordStandInAdviceRequest) -> StandInAdvice:
    """A stand-in advice under its advice id, ``msgid``."""
    return StandInAdvice(
        advice_id=parse_msgid(request.msgid),
        card_number=parse_card_number(request.kh),
        issuing_area=parse_area(request.fkd, "fkd"),
        service_kind=parse_enum(SERVICE_KINDS, request.service_kind, "service_kind"),
        venue_area=parse_area(request.venue_area, "venue_area"),
        granted_at=parse_time(request.granted_at, "granted_at"),
        status_confirmed_at=parse_time(request.state_confirmed_at, "state_confirmed_at"),
    )


class CardCenter(CardCenterServiceServicer):
    """``jingjinji.v1.CardCenterService`` on a card system.

    Args:
        system: the region's people, cards and card applications.
    """

    def __init__(self, system: CardSystem) -> None:
        self._system = system

    async def QueryCard(self, request: pb.QueryCardRequest, context: Context) -> pb.QueryCardResponse:
        """A card with its holder and insurances, whatever its status."""
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
        return pb.QueryPersonResponse(result=ok(), known=self._system.knows(request.sfzh))

    async def SubmitApplication(
        self, request: pb.SubmitApplicationRequest, context: Context
    ) -> pb.SubmitApplicationResponse:
        """申领: a new card for a person who holds none."""
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
        try:
            application = self._system.application(request.sfzh, request.xm)
        except Refusal as exc:
            return pb.QueryApplicationResponse(result=outcome(exc))
        return pb.QueryApplicationResponse(result=ok(), application=application_info(application))

    async def ChangeCardState(self, request: pb.ChangeCardStateRequest, context: Context) -> pb.ChangeCardStateResponse:
        """Enable the card, report it temporarily lost, or cancel that report."""
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
        try:
            msgid, reason = parse_msgid(request.msgid), parse_reason(request.reason)
            application = self._system.replace_card(msgid, request.sfzh, request.kh, request.sbm, request.xm, reason)
        except (Refusal, BadInput) as exc:
            return pb.ReplaceCardResponse(result=outcome(exc))
        return pb.ReplaceCardResponse(result=ok(), application=application_info(application))

    async def RecordStandInAdvice(
        self, request: pb.RecordStandInAdviceRequest, context: Context
    ) -> pb.RecordStandInAdviceResponse:
        """同城待遇 stand-in advice; a repeat of the advice id records nothing new."""
        try:
            self._system.record_advice(parse_advice(request))
        except BadInput as exc:
            return pb.RecordStandInAdviceResponse(result=outcome(exc))
        return pb.RecordStandInAdviceResponse(result=ok())

    def _current(self, card_number: str) -> pb.CardInfo | None:
        row = self._system.cards.get(card_number)
        return card_info(row.card) if row else None


class JingjinjiServer:
    """A running card-centre server.

    Attributes:
        address: ``host:port`` it listens on, what the adapter's endpoint setting should be.
        wiretap: every call that reached it, as received (:mod:`regions.wiretap`).
    """

    def __init__(self, server: grpc.aio.Server, address: str, wiretap: Wiretap) -> None:
        self._server = server
        self.address = address
        self.wiretap = wiretap

    async def stop(self) -> None:
        """Stop accepting calls and give those in flight a short grace to finish."""
        await self._server.stop(grace=STOP_GRACE_SECONDS)


async def serve(backend: Backend, config: RegionConfig, host: str, port: int) -> JingjinjiServer:
    """Start the card centre and the medical-insurance centre on ``host:port`` (0 picks a free port).

    Args:
        backend: the region's card and medical systems and its fault knobs.
        config: the region's configuration (resolved): ``sandbox.tls_cert`` and ``sandbox.tls_key`` make the port
            TLS, ``sandbox.tls_client_ca`` names the CA whose client certificate it requires (its only
            authentication of callers); without a certificate the port is plaintext.
        host: interface to listen on.
        port: port to listen on; 0 picks a free one.

    Returns:
        The running server; ``address`` names the port actually bound.
    """
    wiretap = Wiretap()
    server = grpc.aio.server(interceptors=[wiretap.interceptor(), FaultGate(backend.faults)])
    add_CardCenterServiceServicer_to_server(CardCenter(backend.cards), server)
    add_MedicalInsuranceServiceServicer_to_server(MedicalInsurance(backend.medical), server)
    tls = config.sandbox
    if tls.tls_cert:
        credentials = grpc.ssl_server_credentials(
            [(tls.tls_key.encode(), tls.tls_cert.encode())],
            root_certificates=tls.tls_client_ca.encode() or None,
            require_client_auth=bool(tls.tls_client_ca),
        )
        bound = server.add_secure_port(f"{host}:{port}", credentials)
    else:
        bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return JingjinjiServer(server, f"{host}:{bound}", wiretap)
