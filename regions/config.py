"""Region configuration files (``regions/config/<region-id>.toml``), validated once at start-up.

Every error names the file, the key and the bad value.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

CONFIG_DIR = Path(__file__).resolve().parent / "config"
REGIONS_DIR_VARIABLE = "YIKATONG_REGIONS_DIR"
REFERENCE_PREFIXES = ("env:", "file:")
"""A value starting so is a reference to a secret (:mod:`regions.secrets`), resolved at start-up."""
_REGION_ID = re.compile(r"[a-z][a-z0-9-]{1,40}")
_PROVINCE = re.compile(r"[1-8][0-9]")


class ConfigError(Exception):
    """A configuration file is missing, unreadable or has a bad value."""

    def __init__(self, path: Path | str, key: str, value: object, problem: str) -> None:
        super().__init__(f"{path}: {key} = {value!r}: {problem}")
        self.path, self.key, self.value = str(path), key, value


class Table:
    """Typed reads from one TOML table, raising ``ConfigError`` that names file and key."""

    def __init__(self, path: Path, data: Mapping[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    @classmethod
    def load(cls, path: Path) -> Table:
        try:
            return cls(path, tomllib.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ConfigError(path, "(file)", str(path), "file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(path, "(file)", "", f"not valid TOML: {exc}") from None

    def get(self, key: str, kind: type[T], default: T | None = None) -> T:
        value = self.data.get(key, default)
        if value is None:
            raise ConfigError(self.path, self.prefix + key, None, "is required")
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ConfigError(self.path, self.prefix + key, value, f"must be {kind.__name__}")
        return value

    def positive(self, key: str, kind: type[T], default: T) -> T:
        value = self.get(key, kind, default)
        if not value > 0:  # type: ignore[operator]
            raise ConfigError(self.path, self.prefix + key, value, "must be greater than 0")
        return value

    def table(self, key: str) -> Table:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise ConfigError(self.path, self.prefix + key, value, "must be a table")
        return Table(self.path, value, f"{self.prefix}{key}.")


@dataclass(frozen=True)
class SandboxSettings:
    """How the region's sandbox back-end runs.

    Attributes:
        port: protocol port of the sandbox (0 = any free port).
        admin_port: admin HTTP port (fault knobs, clock) of the sandbox (0 = any free port).
        stage_seconds: seconds each card-production stage takes on the sandbox clock.
        temporary_loss_days: days after which a temporary loss report lapses.
        cities: city area codes of each province for the seeded people (default: ``regions.seed.CITIES``,
            which knows the built-in regions' provinces).
        policies_file: the insured places' policy table (default: ``regions/policies.toml``), absolute.
        tls_cert: the sandbox's server certificate (PEM, usually a ``file:`` reference); empty: plaintext.
        tls_key: its private key (PEM).
        tls_client_ca: the CA whose client certificates the sandbox requires (mutual TLS); empty: none asked for.
    """

    port: int = 0
    admin_port: int = 0
    stage_seconds: float = 60.0
    temporary_loss_days: int = 15
    cities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    policies_file: str = ""
    tls_cert: str = field(default="", repr=False)
    tls_key: str = field(default="", repr=False)
    tls_client_ca: str = field(default="", repr=False)


@dataclass(frozen=True)
class ResilienceSettings:
    """How the hub protects itself and the region when calling it (``[resilience]``; every key optional).

    Attributes:
        call_timeout_seconds: cap of one attempt (default: the hub's ``regions.call_timeout_seconds``).
        max_attempts: attempts of one call, the first included, where a retry is safe.
        backoff_initial_seconds: base of the jittered exponential backoff between attempts.
        backoff_max_seconds: longest wait between attempts.
        retry_budget_ratio: retry tokens each call adds; retries stay below this share of calls.
        retry_budget_tokens: most retry tokens saved up (also the burst of retries allowed).
        breaker_consecutive_failures: failures in a row that open the circuit.
        breaker_failure_ratio: share of failures over the window that opens the circuit.
        breaker_window: how many recent calls the ratio looks at (and at least how many it needs).
        breaker_cooldown_seconds: how long the circuit stays open before a half-open trial call.
        max_in_flight: calls to the region at once; more are refused with ``RESOURCE_EXHAUSTED``.
    """

    call_timeout_seconds: float = 0.0
    max_attempts: int = 3
    backoff_initial_seconds: float = 0.05
    backoff_max_seconds: float = 1.0
    retry_budget_ratio: float = 0.2
    retry_budget_tokens: float = 10.0
    breaker_consecutive_failures: int = 5
    breaker_failure_ratio: float = 0.5
    breaker_window: int = 20
    breaker_cooldown_seconds: float = 5.0
    max_in_flight: int = 64


def load_resilience(t: Table) -> ResilienceSettings:
    """The ``[resilience]`` table, defaults for what it leaves out; every value checked."""
    d = ResilienceSettings()
    settings = ResilienceSettings(
        call_timeout_seconds=t.get("call_timeout_seconds", float, d.call_timeout_seconds),
        max_attempts=t.positive("max_attempts", int, d.max_attempts),
        backoff_initial_seconds=t.positive("backoff_initial_seconds", float, d.backoff_initial_seconds),
        backoff_max_seconds=t.positive("backoff_max_seconds", float, d.backoff_max_seconds),
        retry_budget_ratio=t.get("retry_budget_ratio", float, d.retry_budget_ratio),
        retry_budget_tokens=t.positive("retry_budget_tokens", float, d.retry_budget_tokens),
        breaker_consecutive_failures=t.positive("breaker_consecutive_failures", int, d.breaker_consecutive_failures),
        breaker_failure_ratio=t.positive("breaker_failure_ratio", float, d.breaker_failure_ratio),
        breaker_window=t.positive("breaker_window", int, d.breaker_window),
        breaker_cooldown_seconds=t.positive("breaker_cooldown_seconds", float, d.breaker_cooldown_seconds),
        max_in_flight=t.positive("max_in_flight", int, d.max_in_flight),
    )
    if settings.call_timeout_seconds < 0:
        raise ConfigError(t.path, t.prefix + "call_timeout_seconds", settings.call_timeout_seconds, "must be ≥ 0")
    if not 0 <= settings.retry_budget_ratio <= 1:
        raise ConfigError(t.path, t.prefix + "retry_budget_ratio", settings.retry_budget_ratio, "must be 0 to 1")
    if settings.breaker_failure_ratio > 1:
        raise ConfigError(t.path, t.prefix + "breaker_failure_ratio", settings.breaker_failure_ratio, "must be ≤ 1")
    return settings


@dataclass(frozen=True)
class RegionConfig:
    """One federated region.

    Attributes:
        region_id: the region id, e.g. ``sichuan-chongqing``.
        name: display name.
        provinces: two-digit GB/T 2260 province codes the region serves.
        adapter: entry-point name of the adapter (``yikatong.adapters`` group).
        endpoint: where the region's back-end listens.
        options: adapter-specific strings (credentials, ids, the TLS options ``tls_ca``, ``tls_cert``,
            ``tls_key``); any may be a reference (:mod:`regions.secrets`). ``repr`` shows references, never values.
        sandbox: settings of the sandbox that stands in for the region's back-end.
        resilience: deadline cap, retries, circuit breaker and bulkhead of the hub's calls to the region.
        source: the file it was read from.
    """

    region_id: str
    name: str
    provinces: tuple[str, ...]
    adapter: str
    endpoint: str
    options: Mapping[str, str] = field(default_factory=dict)
    sandbox: SandboxSettings = SandboxSettings()
    resilience: ResilienceSettings = ResilienceSettings()
    source: str = ""

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["options"] = masked(self.options)
        return f"RegionConfig({', '.join(f'{name}={value!r}' for name, value in shown.items())})"


def masked(options: Mapping[str, str]) -> dict[str, str]:
    """Options fit to print: references as they are, every value ``'***'`` (it may be a secret)."""
    return {k: v if v.startswith(REFERENCE_PREFIXES) else "***" for k, v in options.items()}


def _cities(t: Table) -> dict[str, tuple[str, ...]]:
    cities: dict[str, tuple[str, ...]] = {}
    for province, codes in t.data.items():
        if not _PROVINCE.fullmatch(province) or not isinstance(codes, list) or not codes:
            raise ConfigError(t.path, t.prefix + province, codes, "must map a province code to a list of area codes")
        for code in codes:
            if not (isinstance(code, str) and len(code) == 6 and code.isdigit() and code.startswith(province)):
                raise ConfigError(t.path, t.prefix + province, code, "must be 6-digit area codes of that province")
        cities[province] = tuple(codes)
    return cities


def load_region(path: Path) -> RegionConfig:
    t = Table.load(path)
    region_id = t.get("id", str)
    if not _REGION_ID.fullmatch(region_id):
        raise ConfigError(path, "id", region_id, "must be lower-case letters, digits and dashes")
    provinces = t.get("provinces", list)
    for i, p in enumerate(provinces):
        if not isinstance(p, str) or not _PROVINCE.fullmatch(p):
            raise ConfigError(path, f"provinces[{i}]", p, "must be a two-digit province code string")
    if not provinces:
        raise ConfigError(path, "provinces", provinces, "must name at least one province")
    options = t.table("options")
    for key, value in options.data.items():
        if not isinstance(value, str):
            raise ConfigError(path, f"options.{key}", value, "must be a string")
    s = t.table("sandbox")
    sandbox = SandboxSettings(
        port=s.get("port", int, 0),
        admin_port=s.get("admin_port", int, 0),
        stage_seconds=s.positive("stage_seconds", float, 60.0),
        temporary_loss_days=s.positive("temporary_loss_days", int, 15),
        cities=_cities(s.table("cities")),
        policies_file=str((path.parent / s.get("policies_file", str)).resolve()) if "policies_file" in s.data else "",
        tls_cert=s.get("tls_cert", str, ""),
        tls_key=s.get("tls_key", str, ""),
        tls_client_ca=s.get("tls_client_ca", str, ""),
    )
    if bool(sandbox.tls_cert) != bool(sandbox.tls_key):
        raise ConfigError(path, "sandbox.tls_key", sandbox.tls_key, "tls_cert and tls_key go together")
    if sandbox.tls_client_ca and not sandbox.tls_cert:
        raise ConfigError(path, "sandbox.tls_client_ca", sandbox.tls_client_ca, "needs tls_cert and tls_key")
    return RegionConfig(
        region_id=region_id,
        name=t.get("name", str),
        provinces=tuple(provinces),
        adapter=t.get("adapter", str),
        endpoint=t.get("endpoint", str),
        options=dict(options.data),
        sandbox=sandbox,
        resilience=load_resilience(t.table("resilience")),
        source=str(path),
    )


def config_dirs() -> list[Path]:
    """Where region files are read from: ``$YIKATONG_REGIONS_DIR`` (folders separated by ``os.pathsep``), or
    the built-in ``regions/config``. A partner's region is added by listing its folder beside the built-in one."""
    listed = os.environ.get(REGIONS_DIR_VARIABLE, "")
    return [Path(d) for d in listed.split(os.pathsep) if d] or [CONFIG_DIR]


def load_regions(directory: Path | None = None) -> list[RegionConfig]:
    """Every ``*.toml`` region file in ``directory`` (default: :func:`config_dirs`); a province served twice is
    refused."""
    folders = [directory] if directory is not None else config_dirs()
    regions = [load_region(p) for folder in folders for p in sorted(folder.glob("*.toml"))]
    owner: dict[str, str] = {}
    for region in regions:
        for province in region.provinces:
            if province in owner:
                raise ConfigError(region.source, "provinces", province, f"already served by {owner[province]}")
            owner[province] = region.region_id
    return regions
