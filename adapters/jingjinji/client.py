"""The 京津冀 Beijing–Tianjin–Hebei adapter: the card centre's native gRPC API (``jingjinji.v1``).

One insecure ``grpc.aio`` channel per adapter, opened in ``start`` and closed in ``close``. Every call goes
through :meth:`JingjinjiAdapter._invoke`, the one place where gRPC errors, refusal codes and unreadable
answers become errors of ``adapters.errors``:

==========================  ==============================================
gRPC ``UNAVAILABLE``        ``RegionUnavailable`` (not reached; retryable)
gRPC ``DEADLINE_EXCEEDED``  ``RegionTimeout`` (may have reached the region)
any other gRPC status       ``RegionProtocolError``
``Result`` code 1001–1009   the matching ``Refusal``
unreadable answer           ``RegionProtocolError``
==========================  ==============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

import grpc

from adapters.domain import Application, ApplyCard, Card, CardCredential, CardRecord, ChangeCard, ReplaceCard
from adapters.errors import AdapterError, RegionProtocolError, RegionTimeout, RegionUnavailable
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.jingjinji import codec
from jingjinji.v1 import card_center_pb2 as pb
from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceStub

if TYPE_CHECKING:
    from jingjinji.v1.card_center_pb2_grpc import CardCenterServiceAsyncStub


class _Answer(Protocol):
    @property
    def result(self) -> pb.Result: ...


Req = TypeVar("Req")
Resp = TypeVar("Resp", bound=_Answer)
T = TypeVar("T")


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
    if code is grpc.StatusCode.UNAVAILABLE:
        return RegionUnavailable(region, f"card centre unavailable: {error.details()}")
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return RegionTimeout(region, "card centre did not answer in time")
    return RegionProtocolError(region, f"card centre call failed with {code.name}: {error.details()}")


class JingjinjiAdapter(RegionAdapter):
    """京津冀's card centre, spoken to over its native gRPC API.

    Args:
        settings: ``endpoint`` is the card centre's ``host:port``; no options are read.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        self._channel: grpc.aio.Channel | None = None
        self._stub: CardCenterServiceAsyncStub | None = None

    async def start(self) -> None:
        """Open the channel to the card centre (connecting lazily, on the first call)."""
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.settings.endpoint)
            self._stub = CardCenterServiceStub(self._channel)

    async def close(self) -> None:
        """Close the channel; calls in flight are cancelled."""
        if self._channel is not None:
            await self._channel.close(grace=None)
            self._channel, self._stub = None, None

    @property
    def stub(self) -> CardCenterServiceAsyncStub:
        """The card centre's stub; only between ``start`` and ``close``."""
        if self._stub is None:
            raise RuntimeError(f"adapter for {self.region_id} used before start() or after close()")
        return self._stub

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
    ) -> T:
        """Make one call and read its answer; the one place foreign errors are translated."""
        try:
            response = await call(request, timeout=timeout)
            codec.raise_for_result(response.result, self.region_id, request_id)
            return decode(response)
        except grpc.aio.AioRpcError as exc:
            raise rpc_error(self.region_id, exc) from exc
        except codec.WireError as exc:
            raise RegionProtocolError(self.region_id, str(exc)) from exc


def _known(response: pb.QueryPersonResponse) -> bool:
    return response.known


def _application(
    response: pb.SubmitApplicationResponse | pb.QueryApplicationResponse | pb.ReplaceCardResponse,
) -> Application:
    if not response.HasField("application"):
        raise codec.WireError("answered OK without the application")
    return codec.application(response.application)
