"""The federation's participants (DESIGN §10): who may call the hub, in which roles, where, and how often.

``config/participants.toml`` lists every participant with an ``id`` (what its certificate names), a ``name``,
its ``roles`` and a scope: ``areas``, area-code prefixes (``"31"`` a province, ``"3101"`` a city, ``"310104"`` a
district), and for hospitals ``institutions``. An optional ``[participant.rate_limit]`` sets ``per_second``
and ``burst`` for that participant. The file is validated at start and on every reload (SIGHUP); a bad file is
refused with an error naming the file, the key and the value, and the table in force stays.

Roles (what each may call is the API layer's one table, ``gateway.api.authorization``):

========== ====================================================================================
role       acts
========== ====================================================================================
hospital   settlement at its own institutions in its areas; only its own settlements
card-service the card services (跨省通办) and card look-ups
venue      card verification and resident services at venues in its areas
region     card events for cards of its own provinces (a region's back-end)
clearing   clearing reports, closing periods, reconciliation and settlement look-up anywhere
operator   read-only: the regions and the clearing reports
========== ====================================================================================

The built-in :data:`DEV` participant holds every role everywhere; it is the caller of a hub serving plaintext on
loopback (``--insecure``), for demos and tests, and is never read from the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from regions.config import ConfigError, Table

PARTICIPANTS_FILE = Path(__file__).resolve().parent.parent / "config" / "participants.toml"

ROLES = ("hospital", "card-service", "venue", "region", "clearing", "operator")
SCOPED_ROLES = frozenset({"hospital", "card-service", "venue", "region"})  # need areas
EVERYWHERE = "*"

_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
_AREA_PREFIX = re.compile(r"[1-8][0-9](?:[0-9]{2}){0,2}")
_INSTITUTION = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``per_second`` calls on average, ``burst`` at once."""

    per_second: float
    burst: float


@dataclass(frozen=True)
class Participant:
    """One member of the federation.

    Attributes:
        id: the participant id its certificate names.
        name: for people reading logs and reports.
        roles: what it acts as.
        areas: area-code prefixes it acts in (``*`` everywhere, the dev participant only).
        institutions: for a hospital, the institution ids it settles for.
        rate_limit: its own limit, or None for no limit.
    """

    id: str
    name: str
    roles: frozenset[str]
    areas: tuple[str, ...] = ()
    institutions: tuple[str, ...] = ()
    rate_limit: RateLimit | None = None

    def has(self, role: str) -> bool:
        return role in self.roles

    def covers(self, area: str) -> bool:
        """Whether an area code lies in the participant's scope."""
        return any(prefix == EVERYWHERE or area.startswith(prefix) for prefix in self.areas)

    def runs(self, institution: str) -> bool:
        """Whether an institution is one of the participant's own."""
        return EVERYWHERE in self.areas or institution in self.institutions


DEV = Participant("dev", "development caller (plaintext on loopback)", frozenset(ROLES), (EVERYWHERE,))


@dataclass(frozen=True)
class Participants:
    """The participants in force, by id."""

    by_id: Mapping[str, Participant] = field(default_factory=dict)
    path: Path | None = None

    def get(self, participant_id: str) -> Participant | None:
        return self.by_id.get(participant_id)

    def __iter__(self) -> Iterator[Participant]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)


def load_participants(path: Path = PARTICIPANTS_FILE) -> Participants:
    """Read and validate a participants file.

    Raises:
        ConfigError: naming the file, the key and the bad value.
    """
    root = Table.load(path)
    entries = root.data.get("participant", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(path, "participant", entries, "must be an array of tables ([[participant]])")
    found: dict[str, Participant] = {}
    for i, entry in enumerate(entries):
        participant = _participant(Table(path, entry, f"participant[{i}]."))
        if participant.id in found or participant.id == DEV.id:
            raise ConfigError(path, f"participant[{i}].id", participant.id, "is listed twice (or is the built-in dev)")
        found[participant.id] = participant
    return Participants(found, path)


def _participant(t: Table) -> Participant:
    pid = t.get("id", str)
    if not _ID.fullmatch(pid):
        raise ConfigError(
            t.path, t.prefix + "id", pid, "must be 2 to 63 of a-z 0-9 - (starting with a letter or digit)"
        )
    roles = _strings(t, "roles")
    for role in roles:
        if role not in ROLES:
            raise ConfigError(t.path, t.prefix + "roles", role, f"is not a role; roles are {', '.join(ROLES)}")
    if not roles:
        raise ConfigError(t.path, t.prefix + "roles", [], "must name at least one role")
    areas = _strings(t, "areas")
    for area in areas:
        if not _AREA_PREFIX.fullmatch(area):
            raise ConfigError(t.path, t.prefix + "areas", area, "must be an area-code prefix of 2, 4 or 6 digits")
    if SCOPED_ROLES & set(roles) and not areas:
        raise ConfigError(
            t.path, t.prefix + "areas", [], "is required for the roles hospital, card-service, venue, region"
        )
    institutions = _strings(t, "institutions")
    for institution in institutions:
        if not _INSTITUTION.fullmatch(institution):
            raise ConfigError(t.path, t.prefix + "institutions", institution, "must be 1 to 64 of 0-9 A-Z a-z _ -")
    if "hospital" in roles and not institutions:
        raise ConfigError(t.path, t.prefix + "institutions", [], "is required for a hospital")
    return Participant(
        id=pid,
        name=t.get("name", str),
        roles=frozenset(roles),
        areas=tuple(areas),
        institutions=tuple(institutions),
        rate_limit=_rate_limit(t.table("rate_limit")) if "rate_limit" in t.data else None,
    )


def _strings(t: Table, key: str) -> list[str]:
    values = t.data.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(t.path, t.prefix + key, values, "must be a list of strings")
    return values


def _rate_limit(t: Table) -> RateLimit:
    per_second = t.positive("per_second", float, 1.0)
    burst = t.positive("burst", float, per_second)
    return RateLimit(per_second, burst)
