"""The adapter SDK: the interface a region adapter implements, its domain objects and errors."""

from adapters.domain import (
    Application,
    ApplyCard,
    Card,
    CardAction,
    CardCredential,
    CardRecord,
    CardStatus,
    ChangeCard,
    Delivery,
    Gender,
    Holder,
    Insurance,
    InsuranceType,
    ReplaceCard,
    ReplaceReason,
    Stage,
    StageEvent,
)
from adapters.interface import AdapterSettings, RegionAdapter
from adapters.registry import ENTRY_POINT_GROUP, AdapterRegistry, RegistryError

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterRegistry",
    "AdapterSettings",
    "Application",
    "ApplyCard",
    "Card",
    "CardAction",
    "CardCredential",
    "CardRecord",
    "CardStatus",
    "ChangeCard",
    "Delivery",
    "Gender",
    "Holder",
    "Insurance",
    "InsuranceType",
    "RegionAdapter",
    "RegistryError",
    "ReplaceCard",
    "ReplaceReason",
    "Stage",
    "StageEvent",
]
