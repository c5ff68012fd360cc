"""The 京津冀 Beijing–Tianjin–Hebei adapter: the region's native gRPC API (``jingjinji.v1``).

The card centre (``CardCenterService``) and the medical-insurance centre (``MedicalInsuranceService``) are
served at the same address, so one TLS ``grpc.aio`` channel per adapter carries both stubs (its options: see
:class:`JingjinjiAdapter`); it is opened in ``start`` and closed in ``close``. Every call goes through
:meth:`JingjinjiAdapter._invoke`, the one place where gRPC errors, refusal codes and unreadable answers become
errors of ``adapters.errors``:

==========================  ==============================================
no connection in time       ``RegionUnavailable`` (not reached: the request was never written; retryable),
                            a failed TLS handshake (e.g. an untrusted certificate) included
gRPC ``UNAVAILABLE``        ``RegionUnavailable`` (connected, so it may have been reached; retryable)
gRPC ``DEADLINE_EXCEEDED``  ``RegionTimeout`` (may have reached the region)
any other gRPC status       ``RegionProtocolError``
``Result`` code 1001–1013   the matching ``Refusal``
unreadable answer           ``RegionProtocolError``
==========================  ==============================================
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import grpc

from adapters.domain import (
    Application,
    ApplyCard,
    Bill,
    Card,
    CardCredential,
    CardRecord,
    ChangeCard,
    FileRemoteCare,
    Filing,
    RegionSettlement,
    ReplaceCard,
    Reversal,
    SettlementOutcome,
    Split,
    StandInAdvice,
)
from adapters.errors import AdapterError, RegionProtocolError, RegionTimeout, RegionUnavailable
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.jingjinji import codec
from adapters.tls import ClientTls
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1 import medical_insurance_pb2 as mpb
from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceStub
from jingjinji.v1.medical_insurance_pb2_grpc import MedicalInsuranceServiceStub

if TYPE_CHECKING:
    from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceAsyncStub
    from jingjinji.v1.medical_insurance_pb2_grpc import MedicalInsuranceServiceAsyncStub


class _Answer(Protocol):
    @property
    def result(self) -> pb.Result: ...


Req = TypeVar("Req")
Resp = TypeVar("Resp", bound=_Answer)
T = TypeVar("T")


# Reconnect within a second once the region is back (grpc's default backoff grows to two minutes).
RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000))


def rpc_error(region: str, error: grpc.aio.AioRpcError) -> AdapterError:
    """The adapter error for a failed gRPC call.

    Args:
        region: the region id, named by the error.
        error: what grpc.aio raised.

    Returns:
        ``RegionUnavailable`` for ``UNAVAILABLE``, ``RegionTimeout`` for ``DEADLINE_EXCEEDED``,
        ``RegionProtocolError`` for any other status.
    """
    code = error.code()
    if code is grpc.StatusCode.UNAVAILABLE:  # the channel was connected (``connected``): it may have got the call
        return RegionUnavailable(region, f"region unavailable: {error.details()}", may_have_reached=True)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return RegionTimeout(region, "region did not answer in time")
    return RegionProtocolError(region, f"region call failed with {code.name}: {error.details()}")


class JingjinjiAdapter(RegionAdapter):
    """京津冀's card centre and medical-insurance centre, spoken to over their native gRPC API.

    The channel is TLS: ``tls_ca`` vouches for the centres' certificate (default: the system's roots), and
    ``tls_cert`` with ``tls_key`` is the hub's client certificate, which the centres require (:mod:`adapters.tls`).
    Only ``plaintext = "true"`` opens an unencrypted channel, for a sandbox without TLS.

    Args:
        settings: ``endpoint`` is the region's ``host:port``, where both centres answer; options as above.

    Raises:
        ValueError: only one of ``tls_cert`` and ``tls_key`` is given.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        self._tls = ClientTls.from_options(settings.options, settings.region_id)
        self._plaintext = settings.options.get("plaintext", "") == "true"
        self._channel: grpc.aio.Channel | None = None
        self._stub: CardCenterServiceAsyncStub | None = None
        self._medical: MedicalInsuranceServiceAsyncStub | None = None

    async def start(self) -> None:
        """Open the channel to the region (connecting lazily, on the first call)."""
        if self._channel is None:
            if self._plaintext:
                self._channel = grpc.aio.insecure_channel(self.settings.endpoint, options=RECONNECT)
            else:
                tls = self._tls
                credentials = grpc.ssl_channel_credentials(
                    tls.ca.encode() or None, tls.key.encode() or None, tls.cert.encode() or None
                )
                self._channel = grpc.aio.secure_channel(self.settings.endpoint, credentials, options=RECONNECT)
            self._stub = CardCenterServiceStub(self._channel)
            self._medical = MedicalInsuranceServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel, self._stub, self._medical = None, None, None

    @property
    def stub(self) -> CardCenterServiceAsyncStub:
        """The card centre's stub; only between ``start`` and ``close``."""
        if self._stub is None:
            raise RuntimeError(f"adapter for {self.region_id} used before start() or after close()")
        return self._stub

    @property
    def medical(self) -> MedicalInsuranceServiceAsyncStub:
        """The medical-insurance centre's stub, on the same channel; only between ``start`` and ``close``."""
        if self._medical is None:
            raise RuntimeError(f"adapter for {self.region_id} used before start() or after close()")
        return self._medical

    async def get_card(self, credential: CardCredential, *, timeout: float) -> CardRecord:
        """Look a card up with its holder and insurances, whatever its status.

        Raises:
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the SSN, name or identification code does not belong to that card.
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        request = codec.query_card(credential)
        return await self._invoke(self.stub.QueryCard, request, codec.card_record, timeout=timeout)

    async def knows_holder(self, social_security_number: str, *, timeout: float) -> bool:
        """Whether the card centre holds a record of this person.

        Raises:
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        request = pb.QueryPersonRequest(sfzh=social_security_number)
        return await self._invoke(self.stub.QueryPerson, request, _known, timeout=timeout)

    async def apply_card(self, request: ApplyCard, *, timeout: float) -> Application:
        """申领: submit an application for a new card; ``request_id`` travels as ``msgid``.

        Raises:
            HolderNotFound: the region has no record of the person.
            HolderMismatch: the name does not match the record.
            CardAlreadyHeld: the person already holds a card that is not cancelled.
            IdempotencyKeyReused: the request id was used before for another request.
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        wire = codec.submit_application(request)
        call = self.stub.SubmitApplication
        return await self._invoke(call, wire, _application, timeout=timeout, request_id=request.request_id)

    async def change_card(self, request: ChangeCard, *, timeout: float) -> Card:
        """Enable the social-security function, report a temporary loss, or cancel that report.

        Raises:
            CardStateConflict: the action is not allowed from the card's current status.
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the credential's fields do not belong to that card.
            IdempotencyKeyReused: the request id was used before for another request.
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        wire = codec.change_card_state(request)
        call = self.stub.ChangeCardState
        return await self._invoke(call, wire, codec.changed_card, timeout=timeout, request_id=request.request_id)

    async def replace_card(self, request: ReplaceCard, *, timeout: float) -> Application:
        """补换: cancel the card and start production of its replacement.

        Raises:
            CardStateConflict: the card is already cancelled.
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the credential's fields do not belong to that card.
            IdempotencyKeyReused: the request id was used before for another request.
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        wire = codec.replace_card(request)
        call = self.stub.ReplaceCard
        return await self._invoke(call, wire, _application, timeout=timeout, request_id=request.request_id)

    async def get_application(self, social_security_number: str, holder_name: str, *, timeout: float) -> Application:
        """The person's latest application.

        Raises:
            ApplicationNotFound: the person has no application.
            HolderNotFound: the region has no record of the person.
            HolderMismatch: the name does not match the record.
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        request = pb.QueryApplicationRequest(sfzh=social_security_number, xm=holder_name)
        return await self._invoke(self.stub.QueryApplication, request, _application, timeout=timeout)

    # --- medical settlement at the insured place (DESIGN §4.5) -------------------------------------

    async def file_remote_care(self, request: FileRemoteCare, *, timeout: float) -> Filing:
        """备案: record that the insured person will be treated in another area; ``request_id`` is ``msgid``.

        Args:
            request: the person's card, the treatment area (a province when it ends in ``0000``), the filing
                type and its validity period.
            timeout: seconds the call may take.

        Returns:
            The filing the region recorded; a repeat of the request id returns the same filing.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            AdapterError: the region could not be reached, was too slow, or answered nonsense.
        """
        wire = codec.file_remote_care(request)
        call = self.medical.FileRemoteCare
        return await self._invoke(call, wire, codec.filing, timeout=timeout, request_id=request.request_id)

    async def pre_settle(self, bill: Bill, *, timeout: float) -> Split:
        """预结算: the split the insured place's policy gives the bill now, with no side effects.

        Args:
            bill: the bill; its request id does not travel, as nothing is booked.
            timeout: seconds the call may take.

        Returns:
            The split, in fen, as the region computed it (the hub checks that it balances).

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            AdapterError: the region could not be reached, was too slow, or answered nonsense.
        """
        wire = mpb.PreSettleRequest(bill=codec.bill(bill))
        return await self._invoke(self.medical.PreSettle, wire, codec.pre_settled, timeout=timeout)

    async def settle(self, bill: Bill, *, timeout: float) -> RegionSettlement:
        """结算: split the bill and book it at the insured place, once per ``bill.request_id`` (sent as ``msgid``).

        Args:
            bill: the bill; the same request id with the same bill replays the first settlement.
            timeout: seconds the call may take; after it the settlement may or may not have been booked.

        Returns:
            The settlement as the region booked it, with the region's settlement number and the split in fen.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            SettlementCorrected: the request id was corrected before; it can never settle.
            IdempotencyKeyReused: the request id was used for another bill.
            RegionTimeout: no answer in time; ask :meth:`settlement_outcome`.
            AdapterError: the region could not be reached, or answered nonsense.
        """
        wire = mpb.SettleRequest(msgid=bill.request_id, bill=codec.bill(bill))

        def decode(response: mpb.SettleResponse) -> RegionSettlement:
            return codec.settled(response, bill.request_id)

        return await self._invoke(self.medical.Settle, wire, decode, timeout=timeout, request_id=bill.request_id)

    async def settlement_outcome(self, request_id: str, *, timeout: float) -> SettlementOutcome:
        """What the region knows of a settlement request id (QuerySettlement by ``omsgid``).

        Args:
            request_id: the settlement's request id.
            timeout: seconds the call may take.

        Returns:
            ``SETTLED``, ``REVERSED`` or ``CORRECTED`` with the settlement when it was booked; ``CORRECTED``
            without one when a correction arrived first; ``NOT_FOUND`` when the region never saw the id.

        Raises:
            AdapterError: the region could not be reached, was too slow, or answered nonsense.
        """
        wire = mpb.QuerySettlementRequest(omsgid=request_id)

        def decode(response: mpb.QuerySettlementResponse) -> SettlementOutcome:
            return codec.settlement_outcome(response, request_id)

        return await self._invoke(self.medical.QuerySettlement, wire, decode, timeout=timeout)

    async def correct_settlement(self, request_id: str, *, timeout: float) -> None:
        """冲正: void the settlement of ``request_id`` (sent as ``omsgid``) whether or not it was booked.

        A booked settlement has its accumulators and account debit restored; an id the region never saw is
        marked so that a late arrival is refused with ``SettlementCorrected``. Repeating it is harmless.

        Args:
            request_id: the settlement's request id.
            timeout: seconds the call may take.

        Raises:
            AdapterError: the region could not be reached, was too slow, or answered nonsense.
        """
        wire = mpb.CorrectSettlementRequest(omsgid=request_id)
        await self._invoke(self.medical.CorrectSettlement, wire, _nothing, timeout=timeout)

    async def reverse_settlement(self, request: Reversal, *, timeout: float) -> None:
        """撤销: undo a settled bill once, restoring accumulators and account exactly.

        Args:
            request: the reversal; its own request id travels as ``msgid`` (a repeat answers as the first
                did), the settlement's as ``omsgid``.
            timeout: seconds the call may take.

        Raises:
            SettlementNotFound: the region has no settlement of that request id for this person.
            SettlementNotSettled: it was reversed or corrected already.
            IdempotencyKeyReused: the reversal's request id was used for another reversal.
            AdapterError: the region could not be reached, was too slow, or answered nonsense.
        """
        await self._invoke(
            self.medical.ReverseSettlement,
            codec.reverse_settlement(request),
            _nothing,
            timeout=timeout,
            request_id=request.request_id,
            settlement_request_id=request.settlement_request_id,
        )

    # --- resident services (DESIGN §4.7) -------------------------------------------------------------

    async def send_stand_in_advice(self, advice: StandInAdvice, *, timeout: float) -> None:
        """Tell the card centre of a resident service granted in stand-in (RecordStandInAdvice).

        ``advice.advice_id`` travels as ``msgid``: the centre records the advice once and acknowledges a repeat
        again, so the hub may resend it until it is acknowledged.

        Args:
            advice: the card, the service kind, the venue's area, when it was granted and when the region last
                confirmed the NORMAL status the grant relied on.
            timeout: seconds the call may take; after it the advice may or may not have been recorded.

        Raises:
            RegionProtocolError: the centre could not read the advice (result code 1000) or answered nonsense.
            AdapterError: the card centre could not be reached or was too slow.
        """
        wire = codec.stand_in_advice(advice)
        call = self.stub.RecordStandInAdvice
        await self._invoke(call, wire, _nothing, timeout=timeout, request_id=advice.advice_id)

    async def check_health(self, *, timeout: float) -> None:
        """Return when the card centre answers a cheap query (QueryPerson for nobody).

        Raises:
            AdapterError: the card centre could not be reached, was too slow, or answered nonsense.
        """
        await self._invoke(self.stub.QueryPerson, pb.QueryPersonRequest(), _known, timeout=timeout)

    async def _invoke(
        self,
        call: grpc.aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        decode: Callable[[Resp], T],
        *,
        timeout: float,
        request_id: str = "",
        settlement_request_id: str = "",
    ) -> T:
        """Make one call and read its answer; the one place foreign errors are translated."""
        left = await self._connected(timeout)
        try:
            response = await call(request, timeout=left)
            codec.raise_for_result(response.result, self.region_id, request_id, settlement_request_id)
            return decode(response)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(self.region_id, exc) from exc
        except codec.WireError as exc:
            raise RegionProtocolError(self.region_id, str(exc)) from exc

    async def _connected(self, timeout: float) -> float:
        """Wait for the channel to be connected; the time left of ``timeout``.

        Only a call that never had a connection provably never reached the region, so the connection is made
        before the call is sent: a refused or unfinished connection is ``RegionUnavailable`` (not reached).
        """
        channel = self._channel
        if channel is None:
            raise RuntimeError(f"adapter for {self.region_id} used before start() or after close()")
        deadline = time.monotonic() + timeout
        state = channel.get_state(try_to_connect=True)
        while state is not grpc.ChannelConnectivity.READY:
            if state is grpc.ChannelConnectivity.TRANSIENT_FAILURE or time.monotonic() >= deadline:
                raise RegionUnavailable(self.region_id, f"could not connect ({state.name.lower()})")
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await channel.wait_for_state_change(state)
            except TimeoutError:
                raise RegionUnavailable(self.region_id, "could not connect in time") from None
            state = channel.get_state()
        return max(deadline - time.monotonic(), 0.001)


def _nothing(response: object) -> None:
    return None


def _known(response: pb.QueryPersonResponse) -> bool:
    return response.known


def _application(
    response: pb.SubmitApplicationResponse | pb.QueryApplicationResponse | pb.ReplaceCardResponse,
) -> Application:
    if not response.HasField("application"):
        raise codec.WireError("answered OK without the application")
    return codec.application(response.application)
