"""The 粤桂琼 Guangdong–Guangxi–Hainan adapter: the hub's calls as JSON-RPC 2.0 methods of the region.

Registered under the entry-point group ``yikatong.adapters`` as ``guangdong-guangxi-hainan`` (see this
package's ``pyproject.toml``); the hub builds it from a region file whose ``adapter`` names it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

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
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.jsonwire import Fields
from adapters.tls import ClientTls
from yikatong_ggh import codec
from yikatong_ggh.client import RpcClient
from yikatong_ggh.dialect import Method

T = TypeVar("T")


class GuangdongGuangxiHainanAdapter(RegionAdapter):
    """Speaks to the 粤桂琼 card and medical-insurance systems through their JSON-RPC 2.0 endpoint.

    Every call is one ``POST <endpoint>/rpc`` carrying the channel key. Writes send the caller's ``request_id``
    (a stand-in advice its ``advice_id``) as the ``Idempotency-Key`` header, the region's message id, so that
    the region deduplicates a retried write. Calls about an earlier settlement (outcome, correction, reversal)
    name its ``request_id`` as ``msg_id``. Money is integer fen; dates are ``YYYYMMDD`` on the wire.

    Args:
        settings: ``endpoint`` is the region's base URL (``https://host:port``); ``options`` must hold
            ``api_key``, the channel key the region issued to the hub, and may hold ``tls_ca``, ``tls_cert`` and
            ``tls_key`` (:mod:`adapters.tls`: the region requires the hub's client certificate too).

    Raises:
        ValueError: ``api_key`` is missing from the options, or only one of ``tls_cert`` and ``tls_key`` is given.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        api_key = settings.options.get("api_key", "")
        if not api_key:
            raise ValueError(f"region {settings.region_id}: adapter option 'api_key' is required")
        tls = ClientTls.from_options(settings.options, settings.region_id)
        self._rpc = RpcClient(settings.region_id, settings.endpoint, api_key, tls)

    async def start(self) -> None:
        """Open the HTTP session every call shares."""
        await self._rpc.start()

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        await self._rpc.close()

    # --- cards ------------------------------------------------------------------------------------------------

    async def get_card(self, credential: CardCredential, *, timeout: float) -> CardRecord:
        """Look a card up with its holder and insurances, whatever its status (``card.get``).

        The identification code and the name are checked by the region when the credential carries them; the
        issuing area is not needed.

        Raises:
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the SSN, name or identification code does not belong to that card.
            RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`yikatong_ggh.client.translated_errors`.
        """
        return await self._rpc.call(
            Method.CARD_GET, codec.card_query_json(credential), codec.card_record, timeout=timeout
        )

    async def knows_holder(self, social_security_number: str, *, timeout: float) -> bool:
        """Whether the region holds a record of this person (``person.exists``)."""
        params = {"ssn": social_security_number}
        return await self._rpc.call(Method.PERSON_EXISTS, params, codec.exists, timeout=timeout)

    async def apply_card(self, request: ApplyCard, *, timeout: float) -> Application:
        """申领: submit an application for a new card (``card.apply``, keyed on ``request.request_id``).

        Raises:
            HolderNotFound: the region has no record of the person.
            HolderMismatch: the name does not match the record.
            CardAlreadyHeld: the person already holds a card that is not cancelled, or one is in production.
            IdempotencyKeyReused: the request id was used for another request.
        """
        params = codec.apply_json(request)
        return await self._write(Method.CARD_APPLY, params, codec.application, request.request_id, timeout)

    async def change_card(self, request: ChangeCard, *, timeout: float) -> Card:
        """Enable (启用), report a temporary loss (临时挂失) or cancel it (解挂) (``card.change``).

        Raises:
            CardStateConflict: the action is not allowed from the card's current status.
            CardNotFound, HolderMismatch: the credential does not name one of the region's cards.
            IdempotencyKeyReused: the request id was used for another request.
        """
        params = codec.change_json(request)
        return await self._write(Method.CARD_CHANGE, params, codec.card, request.request_id, timeout)

    async def replace_card(self, request: ReplaceCard, *, timeout: float) -> Application:
        """补换: cancel the card and start production of its replacement (``card.replace``).

        Raises:
            CardStateConflict: the card is cancelled already.
            CardNotFound, HolderMismatch: the credential does not name one of the region's cards.
            IdempotencyKeyReused: the request id was used for another request.
        """
        params = codec.replace_json(request)
        return await self._write(Method.CARD_REPLACE, params, codec.application, request.request_id, timeout)

    async def get_application(self, social_security_number: str, holder_name: str, *, timeout: float) -> Application:
        """The person's latest application with its stage history (``card.progress``).

        Raises:
            ApplicationNotFound: the person has no application.
            HolderNotFound, HolderMismatch: the region does not know the person under that name.
        """
        params = {"ssn": social_security_number, "name": holder_name}
        return await self._rpc.call(Method.CARD_PROGRESS, params, codec.application, timeout=timeout)

    # --- medical settlement at the insured place (DESIGN §4.5) --------------------------------------------------

    async def file_remote_care(self, request: FileRemoteCare, *, timeout: float) -> Filing:
        """备案: record that the insured person will be treated in another area (``care.file``).

        Idempotent on ``request.request_id``: a repeat returns the same filing.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            IdempotencyKeyReused: the request id was used for another filing.
        """
        params = codec.filing_request_json(request)
        return await self._write(Method.CARE_FILE, params, codec.filing, request.request_id, timeout)

    async def pre_settle(self, bill: Bill, *, timeout: float) -> Split:
        """预结算: the split the insured place's policy gives the bill now (``bill.preview``); changes nothing.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
        """
        return await self._rpc.call(Method.BILL_PREVIEW, codec.bill_json(bill), codec.preview, timeout=timeout)

    async def settle(self, bill: Bill, *, timeout: float) -> RegionSettlement:
        """结算: settle the bill at the insured place (``bill.settle``, message id ``bill.request_id``).

        The same id with the same bill replays the first settlement, so a resend never settles twice.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            SettlementCorrected: the request id was corrected before; it can never settle.
            IdempotencyKeyReused: the request id was used for another bill.
            RegionTimeout: no answer in time; the settlement may have been applied.
        """
        params = codec.bill_json(bill)
        return await self._write(Method.BILL_SETTLE, params, codec.settlement, bill.request_id, timeout)

    async def settlement_outcome(self, request_id: str, *, timeout: float) -> SettlementOutcome:
        """What the region knows of a settlement request id (``bill.outcome``).

        Returns:
            ``SETTLED``, ``REVERSED`` or ``CORRECTED`` with the settlement when one was booked (none for an id
            corrected before it arrived); ``NOT_FOUND`` (state ``N``) when the region never saw the id.
        """
        params = {"msg_id": request_id}
        return await self._rpc.call(Method.BILL_OUTCOME, params, codec.outcome, timeout=timeout)

    async def correct_settlement(self, request_id: str, *, timeout: float) -> None:
        """冲正: void the settlement of ``request_id`` whether or not it was applied (``bill.correct``).

        Applied → the region restores accumulators and account; not seen → the id is marked so that a late
        ``bill.settle`` is refused with ``SettlementCorrected``. Repeating a correction is harmless.

        Raises:
            RegionUnavailable, RegionTimeout, RegionProtocolError: send it again until the region acknowledges.
        """
        params = {"msg_id": request_id}
        await self._rpc.call(Method.BILL_CORRECT, params, codec.nothing, timeout=timeout)

    async def reverse_settlement(self, request: Reversal, *, timeout: float) -> None:
        """撤销: undo a settled bill once (``bill.reverse``), restoring accumulators and account exactly.

        ``request.request_id`` is the reversal's own message id: a repeat answers as the first time did.

        Raises:
            SettlementNotFound: the region has no settlement of that request id for the person.
            SettlementNotSettled: it was reversed or corrected already.
            IdempotencyKeyReused: the reversal's id was used for another reversal.
        """
        params = codec.reversal_json(request)
        await self._write(Method.BILL_REVERSE, params, codec.nothing, request.request_id, timeout)

    # --- resident services (DESIGN §4.7) ------------------------------------------------------------------------

    async def send_stand_in_advice(self, advice: StandInAdvice, *, timeout: float) -> None:
        """Tell the region of a service granted in stand-in while it was unreachable (``standin.advise``).

        Idempotent on ``advice.advice_id``, sent as the message id: the region records a resend once.

        Raises:
            RegionProtocolError: the region could not read the advice (it will not accept it as it is).
        """

        def recorded(result: Fields) -> None:
            codec.advice_recorded(result, advice.advice_id)

        params = codec.advice_json(advice)
        await self._write(Method.STANDIN_ADVISE, params, recorded, advice.advice_id, timeout)

    async def check_health(self, *, timeout: float) -> None:
        """Return when the region answers ``system.ping``; raise an ``AdapterError`` when it does not."""
        await self._rpc.call(Method.PING, {}, codec.nothing, timeout=timeout)

    async def _write(
        self, method: Method, params: Mapping[str, Any], decode: Callable[[Fields], T], message_id: str, timeout: float
    ) -> T:
        """Call a write, its message id sent as ``Idempotency-Key``."""
        return await self._rpc.call(method, params, decode, timeout=timeout, message_id=message_id)
