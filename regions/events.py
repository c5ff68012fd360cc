"""A region's card events, published to the hub (DESIGN §4.7): every status change, wherever it was made.

The card system calls :meth:`EventPublisher.on_change` synchronously for each change — through the hub, at the
region's own counter (its admin endpoint), or when a temporary loss lapses. A background task delivers the
events in order to the hub's ``RegionEventService``, as the region's participant over mutual TLS (its client
certificate names it) or in plaintext to a development hub, retrying until the hub accepts each one (at least once;
the hub treats a repeat as harmless). With no hub to publish to yet, events
wait in the queue. The ``drop_events`` fault knob loses events on purpose, for tests of the hub's cache expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from pathlib import Path

import grpc

from adapters.domain import Card
from regions.faults import Faults
from yikatong.v1 import common_pb2, events_pb2, events_pb2_grpc

log = logging.getLogger("yikatong.sandbox.events")


Credentials = grpc.ChannelCredentials


def mutual_tls(ca: Path, cert: Path, key: Path) -> Credentials:
    """The credentials a region back-end publishes with: its participant's certificate, trusting the hub's CA."""
    return grpc.ssl_channel_credentials(ca.read_bytes(), key.read_bytes(), cert.read_bytes())


class EventPublisher:
    """Delivers a region's card events to a hub.

    Args:
        region_id: the publishing region.
        faults: the region's fault knobs (``drop_events``).
        retry_seconds: wait before resending an event the hub did not accept.
    """

    def __init__(self, region_id: str, faults: Faults, *, retry_seconds: float = 0.2) -> None:
        self.region_id, self.faults, self.retry_seconds = region_id, faults, retry_seconds
        self.hub: str | None = None
        self.credentials: grpc.ChannelCredentials | None = None
        self.delivered: list[str] = []  # event ids the hub accepted, in order
        self._queue: asyncio.Queue[events_pb2.CardEvent] = asyncio.Queue()
        self._hub_known = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def point_at(self, hub_address: str, credentials: grpc.ChannelCredentials | None = None) -> None:
        """Publish to this hub from now on (events queued before are delivered too): over mutual TLS with the
        region participant's ``credentials``, or in plaintext to a development hub without them."""
        self.hub, self.credentials = hub_address, credentials
        self._hub_known.set()

    def on_change(self, card: Card, social_security_number: str) -> None:
        """A card changed status: queue its event (called synchronously by the card system)."""
        if self.faults.drop_events:
            return
        status = common_pb2.CardStatus.Value(f"CARD_STATUS_{card.status.name}")
        self._queue.put_nowait(
            events_pb2.CardEvent(
                event_id=uuid.uuid4().hex,
                region=self.region_id,
                card_number=card.card_number,
                card_identification_code=card.card_identification_code,
                issuing_area=card.issuing_area,
                status=status,
                social_security_number=social_security_number,
                occurred_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            )
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        channel: grpc.aio.Channel | None = None
        target = None
        try:
            while True:
                event = await self._queue.get()
                attempts = 0
                while True:
                    await self._hub_known.wait()
                    if channel is None or target != self.hub:
                        if channel is not None:
                            await channel.close(None)
                        target, channel = self.hub, self._channel()
                    if await self._send(channel, event, quiet=attempts > 0):
                        break
                    attempts += 1
                    await asyncio.sleep(self.retry_seconds)
        finally:
            if channel is not None:
                await channel.close(None)

    def _channel(self) -> grpc.aio.Channel:
        if self.credentials is None:
            return grpc.aio.insecure_channel(self.hub or "")
        return grpc.aio.secure_channel(self.hub or "", self.credentials)

    async def _send(self, channel: grpc.aio.Channel, event: events_pb2.CardEvent, *, quiet: bool) -> bool:
        stub = events_pb2_grpc.RegionEventServiceStub(channel)
        try:
            await stub.PublishCardEvent(events_pb2.PublishCardEventRequest(event=event), timeout=2)
        except grpc.aio.AioRpcError as exc:
            if not quiet:
                log.warning("%s: event not accepted by the hub yet (%s); retrying", self.region_id, exc.code().name)
            return False
        self.delivered.append(event.event_id)
        return True
