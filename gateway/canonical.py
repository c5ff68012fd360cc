"""The canonical JSON of domain values: what the ledger stores and what idempotency fingerprints.

A frozen dataclass becomes an object of its fields, an enum its member's name, a tuple a list; the encoding
sorts keys and has no white space, so equal values encode to equal bytes. :func:`decode` reads it back into
the type named, guided by the dataclasses' type hints.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_json(value: Any) -> Any:
    """A domain value as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def encode(value: Any) -> bytes:
    """The canonical encoding of a domain value."""
    return json.dumps(to_json(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode(kind: type[T], data: bytes | str) -> T:
    """The value of type ``kind`` that :func:`encode` encoded."""
    return typing.cast(T, from_json(kind, json.loads(data)))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_json(kind: Any, value: Any) -> Any:
    """Plain JSON values as the type ``kind`` (a dataclass, enum, tuple, optional, dict or scalar)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return None if value is None else from_json(options[0], value)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(from_json(item, v) for v in value)
    if origin is dict or kind is dict:
        args = typing.get_args(kind)
        return {k: from_json(args[1], v) for k, v in value.items()} if args else dict(value)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return kind[value]
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{f.name: from_json(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)})
    if kind is float and isinstance(value, int):
        return float(value)
    return value
