"""Resident-service agreements (DESIGN §4.7): which kinds a card gets at local terms in which provinces.

Loaded from ``regions/agreements.toml`` and validated against the federated regions: every region id, province
and kind must be known, or the whole file is refused with a :class:`~regions.config.ConfigError` naming the key.
The table is immutable; a reload builds a new one and swaps it in whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.domain import ServiceKind
from regions.config import ConfigError, RegionConfig, Table

AGREEMENTS_FILE = Path(__file__).resolve().parent / "agreements.toml"

Grant = tuple[str, str, ServiceKind]  # (card province, venue province, kind)


@dataclass(frozen=True)
class Agreements:
    """The agreed (card province, venue province, kind) triples; own-province use is always local."""

    grants: frozenset[Grant]
    source: str = ""

    def allows(self, card_province: str, venue_province: str, kind: ServiceKind) -> bool:
        return card_province == venue_province or (card_province, venue_province, kind) in self.grants


def load_agreements(path: Path, regions: Sequence[RegionConfig]) -> Agreements:
    """Read and validate an agreements file against the federated regions."""
    root = Table.load(path)
    provinces = {r.region_id: r.provinces for r in regions}
    grants: set[Grant] = set()
    for i, row in enumerate(_rows(root, "alliance")):
        t = Table(path, row, f"alliance[{i}].")
        members = _side(t, "region", [t.get("region", str)], provinces)
        kinds = _kinds(t)
        grants |= {(c, v, k) for c in members for v in members if c != v for k in kinds}
    for i, row in enumerate(_rows(root, "cross")):
        t = Table(path, row, f"cross[{i}].")
        cards, venues = (_side(t, key, t.get(key, list), provinces) for key in ("cards", "venues"))
        kinds = _kinds(t)
        pairs = {(c, v) for c in cards for v in venues}
        if t.get("mutual", bool, False):
            pairs |= {(v, c) for c, v in pairs}
        grants |= {(c, v, k) for c, v in pairs if c != v for k in kinds}
    return Agreements(frozenset(grants), str(path))


def _rows(root: Table, key: str) -> list[Mapping[str, Any]]:
    rows = root.get(key, list, [])
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ConfigError(root.path, f"{key}[{i}]", row, "must be a table")
    return rows


def _side(t: Table, key: str, names: Iterable[object], provinces: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The provinces a list of region ids and province codes stands for."""
    served = {p for ps in provinces.values() for p in ps}
    found: set[str] = set()
    for name in names:
        if isinstance(name, str) and name in provinces:
            found |= set(provinces[name])
        elif isinstance(name, str) and name in served:
            found.add(name)
        else:
            raise ConfigError(t.path, t.prefix + key, name, "must be a federated region id or province code")
    if not found:
        raise ConfigError(t.path, t.prefix + key, [], "must name at least one region or province")
    return found


def _kinds(t: Table) -> set[ServiceKind]:
    kinds = t.get("kinds", list)
    if not kinds:
        raise ConfigError(t.path, t.prefix + "kinds", kinds, "must name at least one kind")
    try:
        return {ServiceKind(k) for k in kinds}
    except (ValueError, TypeError):
        allowed = ", ".join(k.value for k in ServiceKind)
        raise ConfigError(t.path, t.prefix + "kinds", kinds, f"each must be one of {allowed}") from None
