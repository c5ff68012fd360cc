"""Resident services at the hub (DESIGN §4.7): agreements, a short-lived card-status cache, and stand-in.

``authorize`` answers whether a card may use a service kind at a venue:

1. The card's own province is always local; elsewhere the agreements must name (card province, venue province,
   kind), or the answer is a refusal ``SERVICE_NOT_AGREED`` — no region is asked.
2. The card's status comes from the issuing region, cached for ``cache_seconds`` and dropped when the region
   publishes an event for the card. Only NORMAL is authorised; other statuses are refused with ``CARD_<STATUS>``.
3. Stand-in: when the issuing region cannot be reached and the card's NORMAL status was confirmed less than
   ``stand_in_seconds`` ago, the service is granted with ``via_stand_in``, and an advice for the region goes into
   the durable outbox in the same step. An unseen card, or a status older than that, is not stood in for: the
   region's error is answered. Medical settlement never comes here.

The cache holds keyed hashes of card numbers and credentials, never the numbers themselves. A change heard of
(a card event, a change made through the hub) is broadcast to the other replicas (``gateway.services.broadcast``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from adapters import domain
from adapters.errors import AdapterError
from gateway.domain import Decision, PresentedCard
from gateway.errors import CallerOutOfScope
from gateway.ledger import ADVICE, LedgerStore
from gateway.metrics import Metrics
from gateway.periods import stamp
from gateway.services.audit import Auditor
from gateway.services.broadcast import LOST, Alone, Broadcast
from gateway.services.call import Call
from gateway.services.cards import Cards, status_refusal
from gateway.services.directory import HolderDirectory
from gateway.services.outbox import Outbox
from regions.agreements import Agreements


@dataclass(frozen=True)
class _Entry:
    fingerprint: bytes
    status: domain.CardStatus
    confirmed_at: float


class StatusCache:
    """Card statuses as their regions last confirmed them, bounded, by keyed hash of the card number.

    Args:
        key: the keyed-hash key (the holder directory's).
        max_entries: size bound; the least recently confirmed entries go first.
        clock: wall time.
    """

    def __init__(self, key: bytes, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self._key, self.max_entries, self.clock = key, max_entries, clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()

    def _hash(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x1f".join(parts).encode(), hashlib.sha256).digest()

    def _fingerprint(self, c: domain.CardCredential) -> bytes:
        return self._hash(c.social_security_number, c.card_number, c.card_identification_code, c.holder_name)

    def get(self, credential: domain.CardCredential, max_age: float) -> _Entry | None:
        """The status confirmed for exactly this credential less than ``max_age`` seconds ago."""
        entry = self._entries.get(self._hash(credential.card_number))
        if entry is None or entry.fingerprint != self._fingerprint(credential):
            return None
        return entry if self.clock() - entry.confirmed_at < max_age else None

    def put(self, credential: domain.CardCredential, status: domain.CardStatus) -> None:
        key = self._hash(credential.card_number)
        self._entries.pop(key, None)
        self._entries[key] = _Entry(self._fingerprint(credential), status, self.clock())
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def key_of(self, card_number: str) -> str:
        """The keyed hash a card is kept by, as hex (what replicas tell each other)."""
        return self._hash(card_number).hex()

    def forget(self, card_number: str) -> str:
        """Drop a card's status (its region published a change); the keyed hash it was kept by, as hex."""
        key = self._hash(card_number)
        self._entries.pop(key, None)
        return key.hex()

    def forget_hash(self, key: str) -> None:
        """Drop the status kept under a keyed hash (another replica heard of the change)."""
        self._entries.pop(bytes.fromhex(key), None)

    def clear(self) -> None:
        self._entries.clear()


class Resident:
    """Resident-service decisions (module docstring).

    Args:
        cards: card look-up at the issuing region.
        directory: the holder directory, taught by card events.
        agreements: returns the agreements in force (swapped whole on reload).
        cache: card statuses.
        ledger: where stand-in advices are queued.
        outbox: seals an advice's payload, and is woken when one is queued.
        metrics: status-cache lookups, stand-in grants.
        auditor: records stand-in grants and card events.
        cache_seconds: how long a confirmed status answers without asking the region.
        stand_in_seconds: how old a confirmed NORMAL status may be to stand in on.
        clock: wall time.
    """

    def __init__(
        self,
        cards: Cards,
        directory: HolderDirectory,
        agreements: Callable[[], Agreements],
        cache: StatusCache,
        ledger: LedgerStore,
        outbox: Outbox,
        metrics: Metrics,
        auditor: Auditor,
        *,
        cache_seconds: float,
        stand_in_seconds: float,
        broadcast: Broadcast | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cards, self.federation, self.directory = cards, cards.federation, directory
        self.agreements, self.cache, self.ledger, self.outbox, self.metrics = agreements, cache, ledger, outbox, metrics
        self.cache_seconds, self.stand_in_seconds, self.clock = cache_seconds, stand_in_seconds, clock
        self.auditor, self.broadcast = auditor, broadcast or Alone()

    async def authorize(
        self, call: Call, presented: PresentedCard, kind: domain.ServiceKind, venue_area: str
    ) -> Decision:
        """Whether the card may use the service kind at the venue (module docstring)."""
        if not call.caller.covers(venue_area):
            raise CallerOutOfScope(call.participant, "venue.area_code", venue_area)
        credential = await self.cards.credential(presented)
        region = self.federation.region_for_area(credential.issuing_area)
        self.federation.note_venue(call, venue_area)
        call.region = region  # named on the call even when the region is not asked
        local = credential.issuing_area[:2] == venue_area[:2]
        if not self.agreements().allows(credential.issuing_area[:2], venue_area[:2], kind):
            return Decision(False, "SERVICE_NOT_AGREED", region, None, local)
        cached = self.cache.get(credential, self.cache_seconds)
        self.metrics.status_cache_lookups.labels("hit" if cached else "miss").inc()
        if cached is not None:
            return _decide(cached.status, region, local)
        try:
            record = (await self.cards.record(call, credential)).record
        except AdapterError:
            stood_in = await self._stand_in(call, credential, kind, venue_area, region, local)
            if stood_in is None:
                raise
            return stood_in
        self.cache.put(credential, record.card.status)
        return _decide(record.card.status, region, local)

    async def _stand_in(
        self,
        call: Call,
        credential: domain.CardCredential,
        kind: domain.ServiceKind,
        venue_area: str,
        region: str,
        local: bool,
    ) -> Decision | None:
        seen = self.cache.get(credential, self.stand_in_seconds)
        if seen is None or seen.status is not domain.CardStatus.NORMAL:
            return None
        now = self.clock()
        advice = domain.StandInAdvice(
            advice_id=uuid.uuid4().hex,
            card_number=credential.card_number,
            issuing_area=credential.issuing_area,
            service_kind=kind,
            venue_area=venue_area,
            granted_at=stamp(now),
            status_confirmed_at=stamp(seen.confirmed_at),
        )
        entry = self.auditor.entry(
            call, "OK", "STAND_IN_GRANTED", objects={"region": region, "service_kind": kind.value},
            numbers=(credential.card_number,),
        )  # fmt: skip
        await self.ledger.enqueue(ADVICE, advice.advice_id, region, self.outbox.payload(advice), now, entry)
        self.outbox.wake()
        self.metrics.stand_in_grants.labels(region, kind.value).inc()
        return Decision(True, "", region, domain.CardStatus.NORMAL, local, via_stand_in=True)

    async def card_event(self, call: Call, event: domain.CardEvent) -> None:
        """A region published a card's status change: drop the cached status, learn who holds the card, record it.

        Raises:
            CallerOutOfScope: the card is not one of the publishing region's own provinces.
        """
        if not call.caller.covers(event.issuing_area):
            raise CallerOutOfScope(call.participant, "event.issuing_area", event.issuing_area)
        await self.card_changed(event.card_number)
        if event.social_security_number:
            self.directory.learn(event.social_security_number, event.region)
        self.metrics.card_events.labels(event.region, event.status.name).inc()
        numbers = (event.card_number, event.social_security_number)
        objects = {"region": event.region, "event_id": event.event_id}
        await self.auditor.append(
            self.auditor.entry(call, "OK", f"CARD_{event.status.name}", objects=objects, numbers=numbers)
        )

    async def card_changed(self, card_number: str) -> None:
        """A card's status changed: forget it here, and tell the other replicas to (DESIGN §8)."""
        key = self.cache.forget(card_number)
        self.cards.recent.forget_hash(key)
        await self.broadcast.publish("card", {"card": key})

    def hear(self, kind: str, fields: dict[str, str]) -> None:
        """What another replica learnt: a card whose status changed, or a person's region."""
        if kind == LOST:  # news may have been missed: nothing cached can be trusted to be current
            self.cache.clear()
            self.cards.recent.clear()
        elif kind == "card":
            self.cache.forget_hash(fields["card"])
            self.cards.recent.forget_hash(fields["card"])
        elif kind == "holder":
            self.directory.learn_hash(fields["holder"], fields["region"])


def _decide(status: domain.CardStatus, region: str, local: bool) -> Decision:
    refusal = status_refusal(status)
    if refusal is None:
        return Decision(True, "", region, status, local)
    return Decision(False, refusal.reason, region, status, local)
