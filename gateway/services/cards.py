"""Cards (DESIGN §4.2, §4.3, §4.8): a presented card resolved to its record at the issuing region, the NORMAL rule,
and a person's region through the holder directory.

Settlement asks the issuing region for the card every time by default (``[settlement]
card_reuse_seconds = 0``). DESIGN §4.3 makes the issuing region the authority on whether a card is NORMAL, and
§4.7 keeps cached statuses for resident services, where a stale answer lets someone into a museum; a settlement
moves insurance money, and a card reported lost at a region's own counter reaches the hub only as an event the
region pushes, which may be late. An operator who trusts that link may let a settlement reuse, for a few seconds,
the record the issuing region just answered for exactly the same credential (a hospital verifies the card, then
settles): one region call fewer per settlement (``make bench``: about a tenth of a settlement's CPU), forgotten
at once on any change the hub hears of — a card event, a change made through the hub, another replica's news.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from adapters import domain
from adapters.errors import NotInsured, YikatongError
from gateway.domain import ECardToken, PresentedCard, RegionCard
from gateway.errors import CallerOutOfScope, CardNotUsable, NotSupported
from gateway.metrics import Metrics
from gateway.services.call import Call
from gateway.services.directory import HolderDirectory
from gateway.services.federation import Federation


class TokenVerifier(Protocol):
    """Turns an e-card QR token into the card credential it stands for (``gateway.services.ecard``)."""

    async def credential(self, token: str, field: str = "card.ecard_token") -> domain.CardCredential: ...


def status_refusal(status: domain.CardStatus, card_number: str = "") -> CardNotUsable | None:
    """The refusal a card status gives, None for NORMAL: the one statement of the rule that only NORMAL cards are
    recognised (DESIGN §4.3)."""
    return None if status is domain.CardStatus.NORMAL else CardNotUsable(status, card_number)


def require_usable(card: domain.Card) -> None:
    """Raise :class:`CardNotUsable` unless the card is NORMAL."""
    if (refusal := status_refusal(card.status, card.card_number)) is not None:
        raise refusal


class RecentRecords:
    """Card records as the issuing regions just answered them, for settlement to reuse (module docstring).

    Args:
        seconds: how long a record may be reused; 0 keeps none.
        key_of: the keyed hash a card number is known by (the status cache's, so one change forgets both).
        max_entries: size bound; the oldest go first.
        clock: monotonic time.
    """

    def __init__(
        self,
        seconds: float,
        key_of: Callable[[str], str],
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds, self.key_of, self.max_entries, self.clock = seconds, key_of, max_entries, clock
        self._entries: OrderedDict[str, tuple[domain.CardCredential, domain.CardRecord, float]] = OrderedDict()

    def put(self, credential: domain.CardCredential, record: domain.CardRecord) -> None:
        if self.seconds <= 0:
            return
        key = self.key_of(credential.card_number)
        self._entries.pop(key, None)
        self._entries[key] = (credential, record, self.clock())
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, credential: domain.CardCredential) -> domain.CardRecord | None:
        """The record answered for exactly this credential less than ``seconds`` ago."""
        found = self._entries.get(self.key_of(credential.card_number)) if self._entries else None
        if found is None or found[0] != credential or self.clock() - found[2] >= self.seconds:
            return None
        return found[1]

    def forget_hash(self, key: str) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


class Cards:
    """Card look-ups at the issuing region.

    Args:
        federation: the regions.
        directory: the holder directory.
        tokens: verifies e-card tokens; without one, tokens are refused as unsupported.
        metrics: e-card token outcomes.
        recent: records a settlement may reuse (none by default).
    """

    def __init__(
        self,
        federation: Federation,
        directory: HolderDirectory,
        tokens: TokenVerifier | None,
        metrics: Metrics,
        recent: RecentRecords | None = None,
    ) -> None:
        self.federation, self.directory, self.tokens, self.metrics = federation, directory, tokens, metrics
        self.recent = recent or RecentRecords(0, str)

    async def credential(self, presented: PresentedCard) -> domain.CardCredential:
        """The credential of a presented card; an e-card token is verified and used up (DESIGN §4.8)."""
        if not isinstance(presented, ECardToken):
            return presented
        if self.tokens is None:
            raise NotSupported("this hub accepts no e-card tokens", metadata={"field": presented.field})
        try:
            credential = await self.tokens.credential(presented.token, presented.field)
        except YikatongError as exc:
            self.metrics.ecard_tokens.labels(exc.reason).inc()
            raise
        self.metrics.ecard_tokens.labels("accepted").inc()
        return credential

    async def record(self, call: Call, credential: domain.CardCredential) -> RegionCard:
        """The card's record at its issuing region, whatever its status; teaches the directory who holds it."""
        region = self.federation.region_for_area(credential.issuing_area)
        record = await self.federation.region(region, call).get_card(credential)
        self.directory.learn(credential.social_security_number, region)
        self.recent.put(credential, record)
        return RegionCard(region, record)

    async def verify(self, call: Call, presented: PresentedCard, venue_area: str) -> RegionCard:
        """A card recognised at a venue: its record, when the card is NORMAL.

        Raises:
            CardNotUsable: the card is not NORMAL.
        """
        if not call.caller.covers(venue_area):
            raise CallerOutOfScope(call.participant, "venue.area_code", venue_area)
        credential = await self.credential(presented)
        self.federation.note_venue(call, venue_area)
        found = await self.record(call, credential)
        require_usable(found.record.card)
        return found

    async def status(self, call: Call, presented: PresentedCard) -> RegionCard:
        """The card's record whatever its status."""
        return await self.record(call, await self.credential(presented))

    async def insurance(self, call: Call, credential: domain.CardCredential) -> tuple[domain.Insurance, str]:
        """The medical insurance of a NORMAL card's holder and the region of its insured place (DESIGN §4.2).

        Raises:
            CardNotUsable: the card is not NORMAL.
            NotInsured: the holder has no medical insurance.
            RegionNotFederated: no region serves the insured place.
        """
        record = self.recent.get(credential) or (await self.record(call, credential)).record
        require_usable(record.card)
        if not record.insurances:
            raise NotInsured("the card holder has no medical insurance", metadata={})
        insurance = record.insurances[0]
        return insurance, self.federation.region_for_area(insurance.insured_area)

    async def holder_region(self, call: Call, ssn: str) -> str:
        """The region that knows the person, through the holder directory."""

        async def ask(region: str, person: str) -> bool:
            return await self.federation.region(region, call).knows_holder(person)

        return await self.directory.resolve(ssn, list(self.federation.regions), ask)
