"""Secrets in configuration: references instead of values, resolved once at start-up, never printed.

A region file's ``[options]`` and ``[sandbox]`` TLS keys, and the hub file's ``[ecard.keys]``, may hold a
reference where a value is expected:

=====================  ==========================================================================================
``env:NAME``           the environment variable ``NAME`` (set and not empty)
``file:PATH``          the contents of the file ``PATH`` without trailing line breaks; a relative ``PATH`` is read
                       from the data directory (``--data-dir``), an absolute one as it is
anything else          the value itself
=====================  ==========================================================================================

:func:`resolve_region` (and, for the hub file, :func:`gateway.config.load_hub_config`) replaces every reference by
what it names, or raises :class:`~regions.config.ConfigError` naming the file, the key and the reference. What a
reference resolved to is a :class:`Secret`: a ``str`` whose ``repr`` is ``Secret('***')``, so that a configuration
object, a log line or an error message that shows it with ``%r`` shows no secret.

The values published with this repository — the sandbox secrets its region files once held — are
:data:`PUBLISHED`: anybody can read them, so ``yikatong serve`` refuses them unless ``--dev`` is given
(:func:`gateway.hub.check_secrets`). ``yikatong up`` writes fresh random ones instead (:func:`generate_secret`,
through :mod:`regions.provisioning`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import fields, replace
from pathlib import Path

from regions.config import REFERENCE_PREFIXES, ConfigError, RegionConfig, SandboxSettings

ENV, FILE = REFERENCE_PREFIXES

PUBLISHED = frozenset(
    {
        "sandbox-shared-secret-chuanyu",  # the 川渝 signing secret regions/config/sichuan-chongqing.toml once held
        "sandbox-channel-key-yueguiqiong",  # the 粤桂琼 channel key of the example fourth region
    }
)
"""Secret values that were published with this repository: development only, never a real deployment's."""


class Secret(str):
    """A value a reference resolved to: a plain ``str`` to use, ``Secret('***')`` to print with ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"


def is_reference(value: str) -> bool:
    """Whether a configured value is an ``env:`` or ``file:`` reference."""
    return value.startswith(REFERENCE_PREFIXES)


def reference_path(value: str, data_dir: Path) -> Path | None:
    """The file a ``file:`` reference names (relative paths from ``data_dir``); None for any other value."""
    if not value.startswith(FILE):
        return None
    path = Path(value[len(FILE) :]).expanduser()
    return path if path.is_absolute() else data_dir / path


def resolve(value: str, *, data_dir: Path, source: Path | str, key: str) -> str:
    """What one configured value stands for: a reference's target as a :class:`Secret`, anything else as it is.

    Args:
        value: the configured value.
        data_dir: where relative ``file:`` paths are read from.
        source: the configuration file, named in errors.
        key: the key, named in errors (``options.secret``).

    Raises:
        ConfigError: the variable is unset or empty, or the file is missing, unreadable or empty.
    """
    if value.startswith(ENV):
        name = value[len(ENV) :]
        found = os.environ.get(name, "") if name else ""
        if not found:
            raise ConfigError(source, key, value, f"the environment variable {name or '(no name)'} is not set")
        return Secret(found)
    path = reference_path(value, data_dir)
    if path is None:
        return value
    try:
        found = path.read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise ConfigError(source, key, value, f"{path} not found{_hint(path, data_dir)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, key, value, f"{path} cannot be read: {exc}") from None
    if not found.strip():
        raise ConfigError(source, key, value, f"{path} is empty")
    return Secret(found)


def _hint(path: Path, data_dir: Path) -> str:
    if path.is_relative_to(data_dir):
        return f" (`yikatong up --data-dir {data_dir}` generates the sandbox's)"
    return ""


def resolve_options(options: Mapping[str, str], *, data_dir: Path, source: Path | str) -> dict[str, str]:
    """Every value of a region's ``[options]`` resolved (:func:`resolve`)."""
    return {k: resolve(v, data_dir=data_dir, source=source, key=f"options.{k}") for k, v in options.items()}


def resolve_region(config: RegionConfig, data_dir: Path) -> RegionConfig:
    """A copy of the region's configuration with its options' and sandbox TLS keys' references resolved.

    Raises:
        ConfigError: a reference names nothing (the error names the region file, the key and the reference).
    """
    sandbox = config.sandbox

    def tls(name: str, value: str) -> str:
        return resolve(value, data_dir=data_dir, source=config.source, key=f"sandbox.{name}")

    return replace(
        config,
        options=resolve_options(config.options, data_dir=data_dir, source=config.source),
        sandbox=replace(
            sandbox,
            tls_cert=tls("tls_cert", sandbox.tls_cert),
            tls_key=tls("tls_key", sandbox.tls_key),
            tls_client_ca=tls("tls_client_ca", sandbox.tls_client_ca),
        ),
    )


def unresolved(config: RegionConfig) -> tuple[str, str] | None:
    """The key and value of the first reference left in a region's configuration, None when none is."""
    for key, value in config.options.items():
        if is_reference(value):
            return f"options.{key}", value
    for f in fields(SandboxSettings):
        value = getattr(config.sandbox, f.name)
        if isinstance(value, str) and is_reference(value):
            return f"sandbox.{f.name}", value
    return None


def generate_secret(path: Path) -> bool:
    """Write 256 random bits (base64url) to ``path``, owner-only, unless the file exists.

    Returns:
        True when the file was written.
    """
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new folder is the owner's alone
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return True
