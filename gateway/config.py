"""Hub configuration (``config/hub.toml``), validated once at start-up into frozen dataclasses."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.participants import PARTICIPANTS_FILE
from regions.agreements import AGREEMENTS_FILE
from regions.config import ConfigError, RegionConfig, Table, load_regions
from regions.secrets import is_reference, resolve, resolve_region

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "config" / "hub.toml"

__all__ = ["ConfigError", "HubConfig", "ServerLimits", "TlsFiles", "is_loopback", "load_hub_config"]


@dataclass(frozen=True)
class TlsFiles:
    """The hub's mutual-TLS files (PEM).

    Attributes:
        ca: the federation CA; client certificates must chain to it.
        cert: the hub's server certificate.
        key: its private key.
    """

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class ServerLimits:
    """Limits of the gRPC server (``[server]``).

    Attributes:
        max_receive_message_bytes: the largest request accepted; a larger one is ``RESOURCE_EXHAUSTED``.
        max_concurrent_rpcs: calls served at once; more are refused with ``RESOURCE_EXHAUSTED``.
        keepalive_min_ping_interval_seconds: clients pinging more often than this are disconnected.
        max_connection_age_seconds: a connection is closed (GOAWAY) after this long, so load balancers can
            spread clients again; in-flight calls get ``max_connection_age_grace_seconds`` to finish.
        max_connection_age_grace_seconds: see above.
    """

    max_receive_message_bytes: int = 1024 * 1024
    max_concurrent_rpcs: int = 1000
    keepalive_min_ping_interval_seconds: float = 10.0
    max_connection_age_seconds: float = 300.0
    max_connection_age_grace_seconds: float = 30.0


@dataclass(frozen=True)
class HubConfig:
    """Everything the hub needs to start.

    Attributes:
        host: address the gRPC and admin servers bind.
        port: gRPC port (0 = any free port).
        admin_port: admin HTTP port for /healthz, /readyz, /metrics (0 = any free port).
        default_deadline_seconds: deadline applied when a caller sends none.
        drain_seconds: on shutdown, how long health reports NOT_SERVING while calls are still accepted, so
            that load balancers stop sending before the port closes.
        shutdown_grace_seconds: on shutdown, how long in-flight calls may take to finish.
        data_dir: folder for the ledger and the directory key.
        ledger_path: the SQLite ledger file (the embedded store, the default for one process).
        ledger_url: a PostgreSQL URL (``postgresql://…``) for a ledger several replicas share; "" for SQLite.
        ledger_password: the PostgreSQL password when the URL holds none, resolved from its ``env:``/``file:``
            reference (``[ledger] password``); "" to leave it to the URL or libpq (``PGPASSWORD``, ``~/.pgpass``).
        idempotency_lease_seconds: age after which an unfinished idempotency record may be taken over.
        ledger_busy_timeout_ms: how long a ledger statement waits for another process's lock on the file before
            the call is answered ``UNAVAILABLE`` / ``LEDGER_UNAVAILABLE``.
        directory_key_file: key of the holder directory's keyed hash (also the audit chain's and the ledger's).
        ledger_key_file: the key that seals (AES-GCM) the personal numbers the ledger must keep.
        ledger_old_key_files: keys of earlier rotations, to open what they sealed.
        audit_key_file: the hub's Ed25519 key that signs the audit chain's checkpoints.
        directory_ttl_seconds: how long a learned SSN → region entry is trusted.
        directory_max_entries: size bound of the directory cache.
        call_timeout_seconds: cap of one call to a region.
        deadline_margin_seconds: kept back from the caller's remaining time.
        probe_interval_seconds: how often the regions' back-ends are probed.
        regions: the federated regions, their references resolved (``repr`` shows no secret).
        agreements_file: the resident-service agreements (reloaded on SIGHUP).
        status_cache_seconds: how long a card status confirmed by its region answers resident services.
        settlement_card_reuse_seconds: how long a settlement may reuse the card record its issuing region just
            answered for the same credential (``[settlement] card_reuse_seconds``; 0, the default: never —
            ``gateway.services.cards`` says why).
        status_cache_max_entries: size bound of that cache.
        stand_in_seconds: how old a confirmed NORMAL status may be for a stand-in grant while the card's region
            is unreachable.
        ecard_keys: the e-card platform's Ed25519 public keys by key id (``[ecard.keys]``, references resolved);
            none = no e-card token is accepted.
        ecard_clock_skew_seconds: how far the e-card platform's clock may be off from the hub's.
        ecard_max_ttl_seconds: longest lifetime an e-card token may have been issued with (at most 60).
        insecure: serve plaintext with every caller the ``dev`` participant; refused unless ``host`` is loopback.
        dev: development mode (``yikatong serve --dev``, ``yikatong up``): sandbox keys and secrets are accepted,
            which :func:`gateway.hub.check_secrets` refuses otherwise.
        source: the hub file it was read from.
        tls: the mutual-TLS files (used unless ``insecure``).
        participants_file: the participants (reloaded on SIGHUP).
        limits: the gRPC server's limits.
        directory_fanout_limit: SSN-only look-ups asking every region at once; more are ``DIRECTORY_BUSY``.
        directory_negative_seconds: how long "no region knows this person" is remembered.
        sweep_lease_seconds: how long a settlement may stay PENDING or REVERSING before the sweeper resolves it.
        sweep_seconds: how often the sweeper looks.
        idempotency_retention_days: how long finished idempotency records (answers, refusals) are kept.
        outbox_retention_days: how long delivered outbox items are kept.
    """

    host: str = "127.0.0.1"
    port: int = 7100
    admin_port: int = 7180
    default_deadline_seconds: float = 5.0
    drain_seconds: float = 1.0
    shutdown_grace_seconds: float = 10.0
    data_dir: Path = Path("var")
    ledger_path: Path = Path("var/ledger.sqlite3")
    ledger_url: str = ""
    ledger_password: str = ""
    idempotency_lease_seconds: float = 60.0
    ledger_busy_timeout_ms: int = 5000
    directory_key_file: Path = Path("var/directory.key")
    ledger_key_file: Path = Path("var/ledger.key")
    ledger_old_key_files: tuple[Path, ...] = ()
    audit_key_file: Path = Path("var/audit.key")
    directory_ttl_seconds: float = 86400.0
    directory_max_entries: int = 200_000
    call_timeout_seconds: float = 3.0
    deadline_margin_seconds: float = 0.05
    probe_interval_seconds: float = 5.0
    regions: tuple[RegionConfig, ...] = field(default_factory=tuple)
    agreements_file: Path = AGREEMENTS_FILE
    status_cache_seconds: float = 5.0
    settlement_card_reuse_seconds: float = 0.0
    status_cache_max_entries: int = 200_000
    stand_in_seconds: float = 1800.0
    ecard_keys: Mapping[str, Ed25519PublicKey] = field(default_factory=dict)
    ecard_clock_skew_seconds: float = 5.0
    ecard_max_ttl_seconds: float = 60.0
    insecure: bool = False
    dev: bool = False
    source: Path = DEFAULT_FILE
    tls: TlsFiles = TlsFiles(Path("var/pki/ca.pem"), Path("var/pki/hub.pem"), Path("var/pki/hub.key"))
    participants_file: Path = PARTICIPANTS_FILE
    limits: ServerLimits = ServerLimits()
    directory_fanout_limit: int = 32
    directory_negative_seconds: float = 30.0
    sweep_lease_seconds: float = 60.0
    sweep_seconds: float = 5.0
    idempotency_retention_days: float = 30.0
    outbox_retention_days: float = 30.0

    def with_endpoints(self, endpoints: dict[str, str]) -> HubConfig:
        """A copy whose regions point at other back-end endpoints (e.g. sandboxes on free ports)."""
        regions = tuple(replace(r, endpoint=endpoints.get(r.region_id, r.endpoint)) for r in self.regions)
        return replace(self, regions=regions)


def _ledger_url(t: Table) -> str:
    url = t.get("url", str, "")
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(t.path, t.prefix + "url", url, "must be a postgresql:// URL (SQLite is the [ledger] path)")
    return url


def _password(t: Table, data_dir: Path) -> str:
    value = t.get("password", str, "")
    if value and not is_reference(value):
        raise ConfigError(t.path, t.prefix + "password", "***", "must be an env: or file: reference, not the password")
    return resolve(value, data_dir=data_dir, source=t.path, key=t.prefix + "password") if value else ""


def with_ledger(config: HubConfig, url: str) -> HubConfig:
    """A copy using the ledger at ``url``: ``sqlite:///path`` (relative) or ``sqlite:////abs`` (absolute), or a
    ``postgresql://`` URL.

    Raises:
        ConfigError: the URL is neither.
    """
    if url.startswith("sqlite:///"):
        return replace(config, ledger_path=Path(url.removeprefix("sqlite:///")), ledger_url="")
    if url.startswith(("postgresql://", "postgres://")):
        return replace(config, ledger_url=url)
    raise ConfigError("--ledger", "ledger", url, "must be sqlite:///PATH or postgresql://…")


def _strings(t: Table, key: str) -> list[str]:
    values = t.data.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(t.path, t.prefix + key, values, "must be a list of strings")
    return values


def _port(t: Table, key: str, default: int) -> int:
    value = t.get(key, int, default)
    if not 0 <= value <= 65535:
        raise ConfigError(t.path, t.prefix + key, value, "must be a port from 0 to 65535")
    return value


def _non_negative(t: Table, key: str, default: float) -> float:
    value = t.get(key, float, default)
    if value < 0:
        raise ConfigError(t.path, t.prefix + key, value, "must be ≥ 0")
    return value


ECARD_MAX_TTL_SECONDS = 60.0  # DESIGN §4.8: a token is valid for at most 60 seconds
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _ecard_keys(t: Table, data_dir: Path) -> dict[str, Ed25519PublicKey]:
    """``[ecard.keys]``: key id → standard base64 of a raw 32-byte Ed25519 public key, or a reference to it."""
    keys: dict[str, Ed25519PublicKey] = {}
    for kid, value in t.data.items():
        if not _KEY_ID.fullmatch(kid):
            raise ConfigError(t.path, t.prefix + kid, value, "key id must be 1 to 64 of A-Z a-z 0-9 . _ -")
        if not isinstance(value, str):
            raise ConfigError(t.path, t.prefix + kid, value, "must be a string")
        text = resolve(value, data_dir=data_dir, source=t.path, key=t.prefix + kid).strip()
        try:
            keys[kid] = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
        except (TypeError, ValueError):  # binascii.Error is a ValueError
            raise ConfigError(
                t.path, t.prefix + kid, value, "must be the base64 of a 32-byte Ed25519 public key"
            ) from None
    return keys


def _at_most(t: Table, key: str, value: float, limit: float) -> float:
    if value > limit:
        raise ConfigError(t.path, t.prefix + key, value, f"must be at most {limit:g}")
    return value


def load_hub_config(
    path: Path = DEFAULT_FILE, *, data_dir: Path = Path("var"), regions_dir: Path | None = None
) -> HubConfig:
    """Read and validate the hub file and every region file, and resolve their references.

    Args:
        path: the hub file.
        data_dir: the data directory: the hub's paths, and relative ``file:`` references (:mod:`regions.secrets`),
            are read from it.
        regions_dir: the folder of region files (default: :func:`regions.config.config_dirs`).

    Raises:
        ConfigError: a bad value, or a reference that names nothing (the error names the file, key and reference).
    """
    root = Table.load(path)
    server, ledger, directory, regions = (root.table(k) for k in ("server", "ledger", "directory", "regions"))
    ecard, resident, tls, retention = (root.table(k) for k in ("ecard", "resident", "tls", "retention"))
    settlement = root.table("settlement")
    agreements = resident.get("agreements_file", str, "")
    participants = root.table("participants").get("file", str, "")
    return HubConfig(
        host=server.get("host", str, "127.0.0.1"),
        port=_port(server, "port", 7100),
        admin_port=_port(server, "admin_port", 7180),
        default_deadline_seconds=server.positive("default_deadline_seconds", float, 5.0),
        drain_seconds=_non_negative(server, "drain_seconds", 1.0),
        shutdown_grace_seconds=server.positive("shutdown_grace_seconds", float, 10.0),
        data_dir=data_dir,
        ledger_path=data_dir / ledger.get("path", str, "ledger.sqlite3"),
        ledger_url=_ledger_url(ledger),
        ledger_password=_password(ledger, data_dir),
        idempotency_lease_seconds=ledger.positive("idempotency_lease_seconds", float, 60.0),
        ledger_busy_timeout_ms=ledger.positive("busy_timeout_ms", int, 5000),
        directory_key_file=data_dir / directory.get("key_file", str, "directory.key"),
        ledger_key_file=data_dir / ledger.get("key_file", str, "ledger.key"),
        ledger_old_key_files=tuple(data_dir / f for f in _strings(ledger, "old_key_files")),
        audit_key_file=data_dir / ledger.get("audit_key_file", str, "audit.key"),
        directory_ttl_seconds=directory.positive("ttl_seconds", float, 86400.0),
        directory_max_entries=directory.positive("max_entries", int, 200_000),
        call_timeout_seconds=regions.positive("call_timeout_seconds", float, 3.0),
        deadline_margin_seconds=regions.get("deadline_margin_seconds", float, 0.05),
        probe_interval_seconds=regions.positive("probe_interval_seconds", float, 5.0),
        regions=tuple(
            resolve_region(r, data_dir) for r in (load_regions(regions_dir) if regions_dir else load_regions())
        ),
        agreements_file=(path.parent / agreements).resolve() if agreements else AGREEMENTS_FILE,
        status_cache_seconds=_non_negative(resident, "status_cache_seconds", 5.0),
        settlement_card_reuse_seconds=_at_most(
            settlement, "card_reuse_seconds", _non_negative(settlement, "card_reuse_seconds", 0.0), 60.0
        ),
        status_cache_max_entries=resident.positive("status_cache_max_entries", int, 200_000),
        stand_in_seconds=_non_negative(resident, "stand_in_seconds", 1800.0),
        ecard_keys=_ecard_keys(ecard.table("keys"), data_dir),
        ecard_clock_skew_seconds=_at_most(
            ecard, "clock_skew_seconds", _non_negative(ecard, "clock_skew_seconds", 5.0), ECARD_MAX_TTL_SECONDS
        ),
        ecard_max_ttl_seconds=_at_most(
            ecard, "max_ttl_seconds", ecard.positive("max_ttl_seconds", float, 60.0), ECARD_MAX_TTL_SECONDS
        ),
        tls=TlsFiles(*(data_dir / tls.get(k, str, f"pki/{d}") for k, d in _TLS_FILES)),
        participants_file=(path.parent / participants).resolve() if participants else PARTICIPANTS_FILE,
        source=path,
        limits=ServerLimits(
            max_receive_message_bytes=server.positive("max_receive_message_bytes", int, 1024 * 1024),
            max_concurrent_rpcs=server.positive("max_concurrent_rpcs", int, 1000),
            keepalive_min_ping_interval_seconds=server.positive("keepalive_min_ping_interval_seconds", float, 10.0),
            max_connection_age_seconds=server.positive("max_connection_age_seconds", float, 300.0),
            max_connection_age_grace_seconds=server.positive("max_connection_age_grace_seconds", float, 30.0),
        ),
        directory_fanout_limit=directory.positive("fanout_limit", int, 32),
        directory_negative_seconds=_non_negative(directory, "negative_seconds", 30.0),
        sweep_lease_seconds=ledger.positive("sweep_lease_seconds", float, 60.0),
        sweep_seconds=ledger.positive("sweep_seconds", float, 5.0),
        idempotency_retention_days=retention.positive("idempotency_days", float, 30.0),
        outbox_retention_days=retention.positive("outbox_days", float, 30.0),
    )


_TLS_FILES = (("ca_file", "ca.pem"), ("cert_file", "hub.pem"), ("key_file", "hub.key"))


def is_loopback(host: str) -> bool:
    """Whether a bind address is a loopback address (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
