"""The hub's application services, on the canonical domain; the API layer (``gateway.api``) calls them.

One service per concern — cards, card affairs, settlement, clearing, resident services — over the federation
(routing and the guarded region calls), the holder directory, idempotency, the outbox and the ledger.
:func:`assemble` builds them all from the configuration; tests build them with fakes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from adapters.registry import AdapterRegistry
from gateway.config import HubConfig
from gateway.ledger import LedgerStore
from gateway.metrics import Metrics
from gateway.personal import KeyedHash, Sealer, load_key
from gateway.services.affairs import CardAffairs
from gateway.services.audit import Auditor, load_signing_key
from gateway.services.broadcast import Alone, Broadcast
from gateway.services.cards import Cards, RecentRecords
from gateway.services.clearing import Clearing
from gateway.services.directory import HolderDirectory
from gateway.services.ecard import TokenVerifier
from gateway.services.federation import Federation
from gateway.services.idempotency import Idempotency
from gateway.services.outbox import Outbox
from gateway.services.resident import Resident, StatusCache
from gateway.services.reversal import Reversals
from gateway.services.settlement import Settlements
from gateway.services.sweeper import Sweeper
from regions.agreements import Agreements

__all__ = ["Services", "assemble"]


@dataclass
class Services:
    """Every application service of one hub."""

    federation: Federation
    directory: HolderDirectory
    cards: Cards
    affairs: CardAffairs
    settlements: Settlements
    reversals: Reversals
    clearing: Clearing
    resident: Resident
    outbox: Outbox
    sweeper: Sweeper
    auditor: Auditor


def assemble(
    config: HubConfig,
    ledger: LedgerStore,
    registry: AdapterRegistry,
    metrics: Metrics,
    agreements: Callable[[], Agreements],
    clock: Callable[[], float] = time.time,
    broadcast: Broadcast | None = None,
) -> Services:
    """The services of a hub with this configuration, over this ledger and these adapters; ``broadcast`` tells
    the other replicas what their caches must learn (none: one process)."""
    broadcast = broadcast or Alone()
    told: set[asyncio.Task[None]] = set()

    def tell(kind: str, fields: dict[str, str]) -> None:  # from synchronous code: a task of its own
        task = asyncio.get_running_loop().create_task(broadcast.publish(kind, fields))
        told.add(task)
        task.add_done_callback(told.discard)

    federation = Federation(config, registry, metrics)
    key = load_key(config.directory_key_file)  # keys the hashes of SSNs and card numbers the hub keeps
    sealer = Sealer(load_key(config.ledger_key_file), [load_key(f) for f in config.ledger_old_key_files])
    auditor = Auditor(ledger, load_signing_key(config.audit_key_file), KeyedHash(key), metrics, clock)
    directory = HolderDirectory(
        key,
        metrics,
        ttl_seconds=config.directory_ttl_seconds,
        max_entries=config.directory_max_entries,
        fanout_limit=config.directory_fanout_limit,
        negative_seconds=config.directory_negative_seconds,
        on_learn=lambda holder, region: tell("holder", {"holder": holder, "region": region}),
    )
    tokens = TokenVerifier(
        config.ecard_keys,
        ledger,
        clock=clock,
        skew_seconds=config.ecard_clock_skew_seconds,
        max_ttl_seconds=config.ecard_max_ttl_seconds,
    )
    statuses = StatusCache(key, config.status_cache_max_entries, clock)
    cards = Cards(
        federation,
        directory,
        tokens,
        metrics,
        RecentRecords(config.settlement_card_reuse_seconds, statuses.key_of, clock=clock),
    )
    idempotency = Idempotency(ledger, sealer, auditor)
    outbox = Outbox(ledger, federation, metrics, sealer, auditor, clock)
    resident = Resident(
        cards,
        directory,
        agreements,
        statuses,
        ledger,
        outbox,
        metrics,
        auditor,
        cache_seconds=config.status_cache_seconds,
        stand_in_seconds=config.stand_in_seconds,
        broadcast=broadcast,
        clock=clock,
    )
    settlements = Settlements(cards, ledger, idempotency, outbox, metrics, auditor, sealer, clock)
    reversals = Reversals(settlements, ledger, idempotency, outbox, metrics, clock)
    sweeper = Sweeper(
        settlements,
        reversals,
        ledger,
        clock,
        lease_seconds=config.sweep_lease_seconds,
        sweep_seconds=config.sweep_seconds,
        idempotency_days=config.idempotency_retention_days,
        outbox_days=config.outbox_retention_days,
    )
    return Services(
        federation=federation,
        directory=directory,
        cards=cards,
        affairs=CardAffairs(cards, idempotency, resident.card_changed),
        settlements=settlements,
        reversals=reversals,
        clearing=Clearing(ledger, idempotency, auditor, federation.region_of_province, clock),
        resident=resident,
        outbox=outbox,
        sweeper=sweeper,
        auditor=auditor,
    )
