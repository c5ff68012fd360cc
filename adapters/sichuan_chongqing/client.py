"""The 川渝 Sichuan–Chongqing adapter: signed resource-style REST over one aiohttp session.

Only this module sees aiohttp and the region's error codes; what goes on the wire is written in
:mod:`adapters.sichuan_chongqing.protocol` and :mod:`adapters.sichuan_chongqing.codec`, which the region's
server shares. Every failure of aiohttp, asyncio and the region's error codes becomes an ``adapters.errors``
class in one place, :func:`translated_errors`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from yarl import URL

from adapters import http
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
    OutcomeState,
    RegionSettlement,
    ReplaceCard,
    Reversal,
    SettlementOutcome,
    Split,
    StandInAdvice,
)
from adapters.errors import (
    CardStateConflict,
    HolderNotFound,
    IdempotencyKeyReused,
    Refusal,
    RegionProtocolError,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotFound,
    SettlementNotSettled,
    YikatongError,
)
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.jsonwire import ErrorAnswer, Fields, WireError, dumps
from adapters.sichuan_chongqing import codec, protocol
from adapters.sichuan_chongqing.signing import signed_headers
from adapters.tls import ClientTls

T = TypeVar("T")


def _refusal(cls: type[Refusal], reply: ErrorAnswer, request_id: str) -> Refusal:
    """The refusal of a refusal code, with what the reply's data says of it."""
    details = reply.details
    if cls is CardStateConflict:
        return CardStateConflict(details.value("action", str), details.coded("status", protocol.STATUSES))
    if cls is SettlementNotSettled:
        state = details.coded("state", protocol.SETTLEMENT_STATES)
        return SettlementNotSettled(details.value("requestId", str), state.value)
    if cls is IdempotencyKeyReused:
        return IdempotencyKeyReused(request_id)
    if cls in (SettlementNotFound, SettlementCorrected):  # named by the reply's requestId, else the write's own
        named = reply.data.get("requestId") if isinstance(reply.data, dict) else None
        return cls(reply.message, metadata={"request_id": named if isinstance(named, str) else request_id})
    return cls(reply.message)


def _from_reply(region: str, request_id: str, reply: ErrorAnswer) -> YikatongError:
    if reply.status == 503:
        return RegionUnavailable(
            region, f"the region is down or busy ({reply.code} {reply.message})", may_have_reached=True
        )
    refusal = protocol.REFUSALS.refusal(reply.code) if 400 <= reply.status < 500 else None
    if refusal is None:  # includes 401: our signature was refused, a configuration fault
        return RegionProtocolError(region, f"unexpected reply: {reply}")
    try:
        return _refusal(refusal, reply, request_id)
    except WireError as exc:
        return RegionProtocolError(region, f"malformed refusal {reply.code}: {exc}")


@contextlib.contextmanager
def translated_errors(region: str, request_id: str = "") -> Iterator[None]:
    """The one place where aiohttp, asyncio and the region's error replies become ``adapters.errors``.

    Args:
        region: the region id, named in every error raised.
        request_id: the write's request id, named in ``IdempotencyKeyReused``.

    Raises:
        Refusal: a subclass matching the region's refusal code.
        RegionUnavailable: the connection failed, or the region answered 503 (down or busy).
        RegionTimeout: no answer in time.
        RegionProtocolError: a dropped connection, a reply that is not the protocol, or an unexpected code.
    """
    with http.translated_errors(region, partial(_from_reply, region, request_id)):
        yield


def _option(settings: AdapterSettings, key: str) -> str:
    value = settings.options.get(key, "")
    if not value:
        raise ValueError(f"region {settings.region_id}: adapter option {key!r} is required")
    return value


class SichuanChongqingAdapter(RegionAdapter):
    """Speaks the 川渝 region's signed REST protocol.

    Settings: ``endpoint`` is the region's base URL (``https://host:port``); ``options`` must hold
    ``paas_id`` (the hub's platform id at the region) and ``secret`` (the shared signing secret), and may hold
    ``tls_ca``, ``tls_cert`` and ``tls_key`` (:mod:`adapters.tls`; the region authenticates the hub by its
    signatures and asks for no client certificate).

    Args:
        settings: what the hub gives every adapter.
        clock: unix time in seconds, used to timestamp signatures; injectable for tests.

    Raises:
        ValueError: ``paas_id`` or ``secret`` is missing from the options, or only one of ``tls_cert`` and
            ``tls_key`` is given.
    """

    def __init__(self, settings: AdapterSettings, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(settings)
        self._paas_id = _option(settings, "paas_id")
        self._secret = _option(settings, "secret")
        self._base = settings.endpoint.rstrip("/")
        self._clock = clock
        self._http = http.HttpSession(settings.region_id, ClientTls.from_options(settings.options, settings.region_id))

    async def start(self) -> None:
        """Open the HTTP session every call shares."""
        await self._http.start()

    async def close(self) -> None:
        """Close the HTTP session and its connections."""
        await self._http.close()

    async def get_card(self, credential: CardCredential, *, timeout: float) -> CardRecord:
        """Look a card up with its holder and insurances; see :meth:`RegionAdapter.get_card`."""
        params = {
            "idNo": credential.social_security_number,
            "name": credential.holder_name,
            "cardSn": credential.card_identification_code,
        }
        path = protocol.path(protocol.CARD, cardNo=credential.card_number)
        return await self._call("GET", path, codec.card_record, timeout=timeout, params=params)

    async def knows_holder(self, social_security_number: str, *, timeout: float) -> bool:
        """Whether the region knows the person; see :meth:`RegionAdapter.knows_holder`."""
        path = protocol.path(protocol.PERSON, idNo=social_security_number)
        try:
            await self._call("GET", path, codec.nothing, timeout=timeout)
        except HolderNotFound:
            return False
        return True

    async def apply_card(self, request: ApplyCard, *, timeout: float) -> Application:
        """申领: submit an application; see :meth:`RegionAdapter.apply_card`."""
        body = codec.apply_json(request)
        return await self._call("POST", protocol.APPLICATIONS, codec.application, timeout=timeout, body=body)

    async def change_card(self, request: ChangeCard, *, timeout: float) -> Card:
        """Enable, report a temporary loss or cancel it; see :meth:`RegionAdapter.change_card`."""
        path = protocol.path(protocol.STATUS_CHANGES, cardNo=request.credential.card_number)
        return await self._call("POST", path, codec.card, timeout=timeout, body=codec.change_json(request))

    async def replace_card(self, request: ReplaceCard, *, timeout: float) -> Application:
        """补换: cancel the card and start its replacement; see :meth:`RegionAdapter.replace_card`."""
        path = protocol.path(protocol.REPLACEMENTS, cardNo=request.credential.card_number)
        return await self._call("POST", path, codec.application, timeout=timeout, body=codec.replacement_json(request))

    async def get_application(self, social_security_number: str, holder_name: str, *, timeout: float) -> Application:
        """The person's latest application; see :meth:`RegionAdapter.get_application`."""
        params = {"idNo": social_security_number, "name": holder_name}
        path = protocol.LATEST_APPLICATION
        return await self._call("GET", path, codec.application, timeout=timeout, params=params)

    async def file_remote_care(self, request: FileRemoteCare, *, timeout: float) -> Filing:
        """备案: record that the insured person will be treated in another area (``POST /v2/filings``).

        ``request.request_id`` travels as the region's ``requestId``; a repeat returns the same filing.

        Args:
            request: the filing, with the person's credential, the treatment area, type and validity.
            timeout: seconds the call may take in total.

        Returns:
            The filing as the region recorded it, with the region's filing id.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`.
        """
        body = codec.filing_request_json(request)
        return await self._call("POST", protocol.FILINGS, codec.filing, timeout=timeout, body=body)

    async def pre_settle(self, bill: Bill, *, timeout: float) -> Split:
        """预结算: the split the insured place's policy gives the bill now (``POST /v2/settlement-previews``).

        The region changes nothing: no accumulator, account or settlement record.

        Args:
            bill: the bill, each line classed against the treatment place's catalogue.
            timeout: seconds the call may take in total.

        Returns:
            The split, every part in fen.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`.
        """
        body = codec.bill_json(bill)
        return await self._call("POST", protocol.SETTLEMENT_PREVIEWS, codec.preview, timeout=timeout, body=body)

    async def settle(self, bill: Bill, *, timeout: float) -> RegionSettlement:
        """结算: settle the bill at the insured place (``POST /v2/settlements``).

        ``bill.request_id`` travels as the region's ``requestId`` (its message id): the same id with the same
        bill replays the first settlement, so a retry after a timeout never settles twice.

        Args:
            bill: the bill, each line classed against the treatment place's catalogue.
            timeout: seconds the call may take in total.

        Returns:
            The settlement as the region booked it: its settlement id and split (the hub checks the split).

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            SettlementCorrected: the request id was corrected before; it can never settle.
            IdempotencyKeyReused: the request id was used for another bill.
            RegionTimeout: no answer in time; the settlement may have been applied.
            RegionUnavailable, RegionProtocolError: see :func:`translated_errors`.
        """
        body = codec.bill_json(bill)
        return await self._call("POST", protocol.SETTLEMENTS, codec.settlement, timeout=timeout, body=body)

    async def settlement_outcome(self, request_id: str, *, timeout: float) -> SettlementOutcome:
        """What the region knows of a settlement request id (``GET /v2/settlements/{msgId}``).

        Args:
            request_id: the settlement's request id, as sent to :meth:`settle`.
            timeout: seconds the call may take in total.

        Returns:
            ``SETTLED``, ``REVERSED`` or ``CORRECTED`` with the settlement when it was booked (none for an id
            corrected before it arrived); ``NOT_FOUND`` when the region never saw the id (its 404 ``4044``).

        Raises:
            RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`.
        """
        try:
            path = protocol.path(protocol.SETTLEMENT, msgId=request_id)
            return await self._call("GET", path, codec.outcome, timeout=timeout)
        except SettlementNotFound:
            return SettlementOutcome(OutcomeState.NOT_FOUND)

    async def correct_settlement(self, request_id: str, *, timeout: float) -> None:
        """冲正: void the settlement of ``request_id`` (``POST /v2/settlements/{msgId}/correction``).

        Applied → the region restores its accumulators and account debit; not seen → the region marks the id
        so that a late arrival is refused with ``SettlementCorrected``. Repeating a correction is harmless,
        and so is correcting a settlement that was reversed (it stays reversed).

        Args:
            request_id: the settlement's request id, as sent to :meth:`settle`.
            timeout: seconds the call may take in total.

        Raises:
            RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`; the
            correction must be sent again until the region acknowledges it.
        """
        path = protocol.path(protocol.CORRECTION, msgId=request_id)
        await self._call("POST", path, codec.nothing, timeout=timeout, body={})

    async def reverse_settlement(self, request: Reversal, *, timeout: float) -> None:
        """撤销: undo a settled bill once (``POST /v2/settlements/{msgId}/reversal``).

        The region restores the person's accumulators and account exactly. ``request.request_id`` is the
        reversal's own message id: a repeat answers as the first time did.

        Args:
            request: the reversal, naming the settlement by its request id and the insured person.
            timeout: seconds the call may take in total.

        Raises:
            SettlementNotFound: the region has no settlement of that request id for this person.
            SettlementNotSettled: it was reversed or corrected already.
            IdempotencyKeyReused: the reversal's request id was used for another reversal.
            RegionUnavailable, RegionTimeout, RegionProtocolError: see :func:`translated_errors`.
        """
        path = protocol.path(protocol.REVERSAL, msgId=request.settlement_request_id)
        await self._call("POST", path, codec.nothing, timeout=timeout, body=codec.reversal_json(request))

    async def send_stand_in_advice(self, advice: StandInAdvice, *, timeout: float) -> None:
        """Tell the region of a resident service granted in stand-in (``POST /v2/stand-in-advices``).

        ``advice.advice_id`` travels as the region's ``adviceId``, its message id: the region records the advice
        once (201) and answers a repeat with the same body (200), so the hub may resend until acknowledged.

        Args:
            advice: the card, the service kind, the venue's area, when it was granted and when the region last
                confirmed the NORMAL status the grant relied on.
            timeout: seconds the call may take in total.

        Raises:
            RegionTimeout: no answer in time; the advice may have been recorded (send it again).
            RegionProtocolError: the reply acknowledged another advice, or the region refused the advice as
                bad input (400 ``4000``).
            RegionUnavailable: see :func:`translated_errors`.
        """
        decode = partial(codec.advice_recorded, advice_id=advice.advice_id)
        await self._call("POST", protocol.STAND_IN_ADVICES, decode, timeout=timeout, body=codec.advice_json(advice))

    async def check_health(self, *, timeout: float) -> None:
        """Return when ``GET /v2/ping`` answers; raise an ``AdapterError`` when it does not."""
        await self._call("GET", protocol.PING, codec.nothing, timeout=timeout)

    async def _call(
        self,
        method: str,
        path: str,
        decode: Callable[[Fields], T],
        *,
        timeout: float,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> T:
        """Send one signed request and decode the ``data`` of its reply.

        The URL is sent as built (``encoded=True``), so the path the region reads is the path signed.
        """
        raw = b"" if body is None else dumps(body)
        url = URL(self._base + path, encoded=True)
        query = dict(params or {})
        headers = signed_headers(self._paas_id, self._secret, method, url.raw_path, query, raw, self._clock())
        if body is not None:
            headers["Content-Type"] = "application/json"
        request_id = str(body.get("requestId", "")) if body else ""
        with translated_errors(self.region_id, request_id):
            status, payload = await self._http.exchange(
                method,
                url,
                timeout=timeout,
                params=query or None,
                data=raw if body is not None else None,
                headers=headers,
            )
            return decode(Fields(protocol.envelope_data(status, payload), "data"))
