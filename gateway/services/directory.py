"""The holder directory (DESIGN §4.2): which region issued a person's card, by a keyed hash of the SSN.

Learned from verified cards; filled on a miss by asking every region in parallel (first positive answer wins,
all negative → ``HolderNotFound``). The SSN itself is never stored. At most ``fanout_limit`` look-ups ask the
regions at once (one more is ``DIRECTORY_BUSY`` at once), and "no region knows this person" is remembered for
``negative_seconds``, so that random numbers cannot fill the regions' bulkheads.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable

from adapters.errors import AdapterError, HolderNotFound, RegionUnavailable
from gateway.errors import DirectoryBusy
from gateway.metrics import Metrics


class HolderDirectory:
    """SSN (keyed hash) → region id, bounded and expiring."""

    def __init__(
        self,
        key: bytes,
        metrics: Metrics,
        *,
        ttl_seconds: float = 86400.0,
        max_entries: int = 200_000,
        fanout_limit: int = 32,
        negative_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_learn: Callable[[str, str], None] = lambda key, region: None,
    ) -> None:
        self._key, self._metrics = key, metrics
        self._ttl, self._max, self._clock = ttl_seconds, max_entries, clock
        self.fanout_limit, self._negative_seconds = fanout_limit, negative_seconds
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()  # region "" = known to no region
        self._fanning = 0
        self.on_learn = on_learn  # told (keyed hash, region) of each person newly learnt, for the other replicas

    def _hash(self, ssn: str) -> str:
        return hmac.new(self._key, ssn.encode(), hashlib.sha256).hexdigest()

    def learn(self, ssn: str, region_id: str) -> None:
        key = self._hash(ssn)
        known = self._entries.get(key)
        self._put(key, region_id, self._ttl)
        if known is None or known[0] != region_id:
            self.on_learn(key, region_id)

    def learn_hash(self, key: str, region_id: str) -> None:
        """Learn a person by the keyed hash another replica learnt them by."""
        self._put(key, region_id, self._ttl)

    def _remember(self, ssn: str, region_id: str, seconds: float) -> None:
        self._put(self._hash(ssn), region_id, seconds)

    def _put(self, key: str, region_id: str, seconds: float) -> None:
        self._entries[key] = (region_id, self._clock() + seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def forget(self, ssn: str) -> None:
        self._entries.pop(self._hash(ssn), None)

    def cached(self, ssn: str) -> str | None:
        """The person's region as remembered ("" = no region knows them), None when not remembered."""
        found = self._entries.get(self._hash(ssn))
        if found is None or found[1] < self._clock():
            return None
        return found[0]

    async def resolve(self, ssn: str, regions: Iterable[str], ask: Callable[[str, str], Awaitable[bool]]) -> str:
        """The person's region: from the cache, or by asking every region at once."""
        region = self.cached(ssn)
        if region == "":
            self._metrics.directory_lookups.labels("negative").inc()
            raise HolderNotFound("no federated region knows this person")
        if region is not None:
            self._metrics.directory_lookups.labels("hit").inc()
            return region
        if self._fanning >= self.fanout_limit:
            self._metrics.directory_lookups.labels("busy").inc()
            raise DirectoryBusy(self.fanout_limit)
        self._metrics.directory_lookups.labels("miss").inc()
        self._fanning += 1
        try:
            region = await self._fan_out(ssn, list(regions), ask)
        except HolderNotFound:
            self._remember(ssn, "", self._negative_seconds)
            raise
        finally:
            self._fanning -= 1
        self.learn(ssn, region)
        return region

    async def _fan_out(self, ssn: str, regions: list[str], ask: Callable[[str, str], Awaitable[bool]]) -> str:
        async def one(region_id: str) -> str | None:
            self._metrics.directory_fanout_calls.labels(region_id).inc()
            return region_id if await ask(region_id, ssn) else None

        tasks = [asyncio.create_task(one(r)) for r in regions]
        failed: list[str] = []
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    found = await next_done
                except AdapterError as exc:
                    failed.append(exc.region)
                    continue
                if found is not None:
                    return found
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if failed:
            raise RegionUnavailable(",".join(sorted(failed)), "could not be asked whether it knows the person")
        raise HolderNotFound("no federated region knows this person")
