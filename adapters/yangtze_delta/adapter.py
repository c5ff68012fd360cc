"""The 长三角 Yangtze River Delta adapter: the hub's card calls in the region's envelope protocol."""

from __future__ import annotations

import uuid

from adapters.domain import Application, ApplyCard, Card, CardCredential, CardRecord, ChangeCard, ReplaceCard
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.yangtze_delta import codec
from adapters.yangtze_delta.client import EnvelopeClient

QUERY_CARD = "1101"
QUERY_PERSON = "1161"
APPLY = "2801"
CHANGE = "2802"
REPLACE = "2803"
PROGRESS = "2804"
HEARTBEAT = "9001"


def _read_msgid() -> str:
    """A fresh message id for a read; writes use the caller's ``request_id`` instead."""
    return uuid.uuid4().hex


class YangtzeDeltaAdapter(RegionAdapter):
    """Speaks to the 长三角 card system through its HTTP/JSON envelope endpoint.

    Every call is one ``POST`` of an envelope (``infno``, ``msgid``, ``input``); writes send the caller's
    ``request_id`` as ``msgid`` so that the region deduplicates a retried write.

    Args:
        settings: ``endpoint`` is the region's base URL (``http://host:port``); the option ``hub_area``
            (default ``"000000"``) is sent as ``mdtrtarea_admvs``.
    """

    def __init__(self, settings: AdapterSettings) -> None:
        super().__init__(settings)
        hub_area = settings.options.get("hub_area", "000000")
        self._client = EnvelopeClient(settings.region_id, settings.endpoint, hub_area)

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

    async def check_health(self, *, timeout: float) -> None:
        """Send a heartbeat (service 9001); return when the region answers it.

        Raises:
            RegionUnavailable: the region is down, busy or unreachable.
            RegionTimeout: no answer within ``timeout``.
            RegionProtocolError: the answer was not a heartbeat reply.
        """
        await self._client.call(HEARTBEAT, {}, codec.ignore_output, msgid=_read_msgid(), timeout=timeout)
