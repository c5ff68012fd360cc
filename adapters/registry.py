"""The adapter registry: adapter classes by name, loaded from the ``yikatong.adapters`` entry points.

Built-in adapters register exactly as a partner's do, through ``pyproject.toml``. A class is checked
when it registers; a second registration under a taken name is refused.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points

from adapters.interface import RegionAdapter

ENTRY_POINT_GROUP = "yikatong.adapters"


class RegistryError(Exception):
    """An adapter could not be registered or found."""


class AdapterRegistry:
    """Adapter classes by name."""

    def __init__(self) -> None:
        self._classes: dict[str, type[RegionAdapter]] = {}

    def register(self, name: str, cls: object) -> None:
        """Add an adapter class; refuse non-adapters, abstract classes and taken names."""
        if not (inspect.isclass(cls) and issubclass(cls, RegionAdapter)):
            raise RegistryError(f"adapter {name!r}: {cls!r} is not a RegionAdapter subclass")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
            raise RegistryError(f"adapter {name!r}: {cls.__name__} does not implement {missing}")
        if name in self._classes:
            raise RegistryError(f"adapter {name!r} is already registered by {self._classes[name].__module__}")
        self._classes[name] = cls

    def get(self, name: str) -> type[RegionAdapter]:
        try:
            return self._classes[name]
        except KeyError:
            known = ", ".join(sorted(self._classes)) or "none"
            raise RegistryError(f"no adapter named {name!r} is installed (installed: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    @classmethod
    def from_entry_points(cls) -> AdapterRegistry:
        """A registry of every installed adapter."""
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            registry.register(ep.name, ep.load())
        return registry
