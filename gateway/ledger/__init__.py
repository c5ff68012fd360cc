"""The hub's ledger: records, the store protocol, and the embedded SQLite store."""

from gateway.ledger.records import (
    ADVICE,
    CORRECTION,
    REVERSAL,
    Booking,
    Claim,
    ClaimResult,
    OutboxItem,
    RequestKey,
    SettlementRecord,
    SettlementState,
    Started,
)
from gateway.ledger.sqlite import SqliteLedger
from gateway.ledger.store import Ledger, LedgerConflict, LedgerStore

__all__ = [
    "ADVICE",
    "CORRECTION",
    "REVERSAL",
    "Booking",
    "Claim",
    "ClaimResult",
    "Ledger",
    "LedgerConflict",
    "LedgerStore",
    "OutboxItem",
    "RequestKey",
    "SettlementRecord",
    "SettlementState",
    "SqliteLedger",
    "Started",
]
