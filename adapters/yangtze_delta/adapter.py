"""The 长三角 Yangtze River Delta adapter: the hub's card, settlement and advice calls in the envelope protocol."""

from __future__ import annotations

import uuid
from functools import partial

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
from adapters.tls import ClientTls
from adapters.yangtze_delta import codec
from adapters.yangtze_delta.client import EnvelopeClient
from adapters.yangtze_delta.protocol import (
    APPLY,
    CHANGE,
    CORRECT,
    FILE_REMOTE_CARE,
    HEARTBEAT,
    OUTCOME,
    PRE_SETTLE,
    PROGRESS,
    QUERY_CARD,
    QUERY_PERSON,
    REPLACE,
    REVERSE,
    SETTLE,
    STAND_IN_ADVICE,
)


def _read_msgid() -> str:
    """A fresh message id for a read; writes use the caller's ``request_id`` instead."""
    return uuid.uuid4().hex


class YangtzeDeltaAdapter(RegionAdapter):
    """Speaks to the 长三角 card and medical-insurance systems through their HTTP/JSON envelope endpoint.

    Every call is one ``POST`` of an envelope (``infno``, ``msgid``, ``input``); writes send the caller's
    ``request_id`` (a stand-in advice its ``advice_id``) as ``msgid`` so that the region deduplicates a retried
    write. Calls about an earlier settlement (correction, outcome query, reversal) name its ``request_id`` as
    ``omsgid``. Amounts travel as yuan strings with two decimals and are converted exactly to and from integer
    fen.

    Args:
        settings: ``endpoint`` is the region's base URL (``https://host:port``); the option ``hub_area``
            (default ``"000000"``) is sent as ``mdtrtarea_admvs``; ``tls_ca``, ``tls_cert`` and ``tls_key``
            (:mod:`adapters.tls`) secure the link: the region asks for the hub's client certificate.

    Raises:
        ValueError: only one of ``tls_cert`` and ``tls_key`` is given.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        hub_area = settings.options.get("hub_area", "000000")
        tls = ClientTls.from_options(settings.options, settings.region_id)
        self._client = EnvelopeClient(settings.region_id, settings.endpoint, hub_area, tls)

    async def start(self) -> None:
        """Open the HTTP session used by every call."""
        await self._client.start()

    async def close(self) -> None:
        """Close the HTTP session."""
        await self._client.close()

    async def get_card(self, credential: CardCredential, *, timeout: float) -> CardRecord:
        """Look a card up with its holder and insurances (service 1101), whatever its status.

        Raises:
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the SSN, name or identification code does not belong to that card.
        """
        data = codec.card_data(credential)
        return await self._client.call(QUERY_CARD, data, codec.decode_record, msgid=_read_msgid(), timeout=timeout)

    async def knows_holder(self, social_security_number: str, *, timeout: float) -> bool:
        """Whether the region holds a record of this person (service 1161)."""
        data = codec.person_data(social_security_number)
        return await self._client.call(QUERY_PERSON, data, codec.decode_known, msgid=_read_msgid(), timeout=timeout)

    async def apply_card(self, request: ApplyCard, *, timeout: float) -> Application:
        """申领 (service 2801): submit an application for a new card.

        Raises:
            HolderNotFound: the region has no record of the person.
            HolderMismatch: the name does not match the record.
            CardAlreadyHeld: the person already holds a card that is not cancelled.
            IdempotencyKeyReused: ``request_id`` was used for a different request.
        """
        return await self._client.call(
            APPLY,
            codec.apply_data(request),
            codec.decode_application,
            msgid=request.request_id,
            timeout=timeout,
            insured_area=request.insured_area,
        )

    async def change_card(self, request: ChangeCard, *, timeout: float) -> Card:
        """Enable, report a temporary loss, or cancel that report (service 2802).

        Raises:
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the credential's fields do not belong to that card.
            CardStateConflict: the action is not allowed from the card's current status.
            IdempotencyKeyReused: ``request_id`` was used for a different request.
        """
        return await self._client.call(
            CHANGE,
            codec.change_data(request),
            codec.decode_card_output,
            msgid=request.request_id,
            timeout=timeout,
        )

    async def replace_card(self, request: ReplaceCard, *, timeout: float) -> Application:
        """补换 (service 2803): cancel the card and start production of its replacement.

        Raises:
            CardNotFound: the region issued no card with that number.
            HolderMismatch: the credential's fields do not belong to that card.
            CardStateConflict: the card is already cancelled.
            IdempotencyKeyReused: ``request_id`` was used for a different request.
        """
        return await self._client.call(
            REPLACE,
            codec.replace_data(request),
            codec.decode_application,
            msgid=request.request_id,
            timeout=timeout,
        )

    async def get_application(self, social_security_number: str, holder_name: str, *, timeout: float) -> Application:
        """The person's latest application with its stage history (service 2804).

        Raises:
            HolderNotFound: the region has no record of the person.
            HolderMismatch: the name does not match the record.
            ApplicationNotFound: the person has no application.
        """
        data = codec.person_data(social_security_number, holder_name)
        return await self._client.call(PROGRESS, data, codec.decode_application, msgid=_read_msgid(), timeout=timeout)

    async def file_remote_care(self, request: FileRemoteCare, *, timeout: float) -> Filing:
        """备案 (service 2501): record that the insured person will be treated in another area.

        Sends ``request.request_id`` as ``msgid``; a retry returns the same filing.

        Args:
            request: the person, the treatment area (a province when it ends in ``0000``), the filing type
                and the validity dates.
            timeout: seconds the call may take in total.

        Returns:
            The filing as the region recorded it, with the region's filing id.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``; the filing may have been recorded.
            RegionProtocolError: the answer was not in the region's protocol.
        """
        return await self._client.call(
            FILE_REMOTE_CARE,
            codec.filing_data(request),
            codec.decode_filing,
            msgid=request.request_id,
            timeout=timeout,
            treatment_area=request.treatment_area,
        )

    async def pre_settle(self, bill: Bill, *, timeout: float) -> Split:
        """预结算 (service 2206): the split the insured place's policy gives the bill now, with no side effects.

        Args:
            bill: the bill, its lines classed against the treatment place's catalogue.
            timeout: seconds the call may take in total.

        Returns:
            The split in fen; the hub checks its invariants.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``.
            RegionProtocolError: the answer was not in the region's protocol.
        """
        return await self._client.call(
            PRE_SETTLE,
            codec.bill_data(bill),
            codec.decode_pre_settlement,
            msgid=_read_msgid(),
            timeout=timeout,
            insured_area=bill.insured_area,
            treatment_area=bill.treatment_area,
        )

    async def settle(self, bill: Bill, *, timeout: float) -> RegionSettlement:
        """结算 (service 2207): compute the split, add it to the accumulators and debit the personal account.

        Sends ``bill.request_id`` as ``msgid``; the region settles once per msgid, so the same id with the same
        bill replays the first settlement.

        Args:
            bill: the bill, its lines classed against the treatment place's catalogue.
            timeout: seconds the call may take in total.

        Returns:
            The settlement with the region's settlement id and the split in fen; the hub checks its invariants.

        Raises:
            NotInsured: the person has no medical insurance in this region.
            HolderMismatch: the name does not match the insured person's record.
            SettlementCorrected: the request id was corrected before; it can never settle.
            IdempotencyKeyReused: the request id was used for another bill.
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``; the bill may have been settled (ask
                :meth:`settlement_outcome`, then correct).
            RegionProtocolError: the answer was not in the region's protocol, or was another msgid's settlement.
        """
        return await self._client.call(
            SETTLE,
            codec.bill_data(bill),
            partial(codec.decode_settlement, request_id=bill.request_id),
            msgid=bill.request_id,
            timeout=timeout,
            insured_area=bill.insured_area,
            treatment_area=bill.treatment_area,
        )

    async def settlement_outcome(self, request_id: str, *, timeout: float) -> SettlementOutcome:
        """What the region knows of a settlement request id (service 5201, ``omsgid`` = ``request_id``).

        Args:
            request_id: the request id the settlement was sent with.
            timeout: seconds the call may take in total.

        Returns:
            ``SETTLED``, ``REVERSED`` or ``CORRECTED`` with the settlement when the region booked one;
            ``CORRECTED`` without one when the id was corrected before it arrived; ``NOT_FOUND`` when the
            region never saw it.

        Raises:
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``.
            RegionProtocolError: the answer was not in the region's protocol.
        """
        return await self._client.call(
            OUTCOME,
            codec.outcome_data(request_id),
            partial(codec.decode_outcome, request_id=request_id),
            msgid=_read_msgid(),
            timeout=timeout,
        )

    async def correct_settlement(self, request_id: str, *, timeout: float) -> None:
        """冲正 (service 2601, ``omsgid`` = ``request_id``, ``oinfno`` 2207): void that settlement.

        Applied → the region restores its accumulators and account debit; not seen → the region marks the id
        so that a late arrival is refused with ``SettlementCorrected``. Repeating a correction is harmless,
        so each attempt goes out under a fresh msgid.

        Args:
            request_id: the request id the settlement was (or may have been) sent with.
            timeout: seconds the call may take in total.

        Raises:
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``; the correction may have been applied (send it again).
            RegionProtocolError: the answer was not in the region's protocol.
        """
        await self._client.call(
            CORRECT, codec.correction_data(request_id), codec.ignore_output, msgid=_read_msgid(), timeout=timeout
        )

    async def reverse_settlement(self, request: Reversal, *, timeout: float) -> None:
        """撤销 (service 2208): undo a settled bill once, restoring accumulators and account exactly.

        Sends ``request.request_id`` (the reversal's own id) as ``msgid`` and the settlement's request id as
        ``omsgid``; a retry of the same reversal answers as the first did.

        Args:
            request: the reversal's id, the settlement's request id, the person's SSN and the reason.
            timeout: seconds the call may take in total.

        Raises:
            SettlementNotFound: the region has no settlement of that request id for this person.
            SettlementNotSettled: it was reversed or corrected already.
            IdempotencyKeyReused: the reversal's request id was used for another reversal.
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``; the reversal may have been applied.
            RegionProtocolError: the answer was not in the region's protocol.
        """
        await self._client.call(
            REVERSE, codec.reversal_data(request), codec.ignore_output, msgid=request.request_id, timeout=timeout
        )

    async def send_stand_in_advice(self, advice: StandInAdvice, *, timeout: float) -> None:
        """Tell the region of a resident service granted in stand-in (service 9102, ``msgid`` = ``advice_id``).

        The region records the advice once per msgid, so the hub may resend it until it is acknowledged.

        Args:
            advice: the card, the service kind, the venue's area, when it was granted and when the region last
                confirmed the NORMAL status the grant relied on.
            timeout: seconds the call may take in total.

        Raises:
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``; the advice may have been recorded (send it again).
            RegionProtocolError: the answer was not in the region's protocol, or acknowledged another advice;
                also the region's ``BAD_INPUT`` for an advice it cannot read.
        """
        await self._client.call(
            STAND_IN_ADVICE,
            codec.advice_data(advice),
            partial(codec.decode_advice_ack, advice_id=advice.advice_id),
            msgid=advice.advice_id,
            timeout=timeout,
        )

    async def check_health(self, *, timeout: float) -> None:
        """Send a heartbeat (service 9001); return when the region answers it.

        Raises:
            RegionUnavailable: the region is down, busy or unreachable.
            RegionTimeout: no answer within ``timeout``.
            RegionProtocolError: the answer was not a heartbeat reply.
        """
        await self._client.call(HEARTBEAT, {}, codec.ignore_output, msgid=_read_msgid(), timeout=timeout)
