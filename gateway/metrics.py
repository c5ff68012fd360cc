"""Every metric the hub exposes, defined in one place on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class Metrics:
    """The hub's metrics. Labels never carry personal numbers or other unbounded values."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.directory_lookups = Counter(
            "yikatong_directory_lookups",
            "Holder-directory lookups by result (hit: answered from the cache; miss: fanned out to regions).",
            ["result"],
            registry=self.registry,
        )
        self.directory_fanout_calls = Counter(
            "yikatong_directory_fanout_calls",
            "Calls made to regions while fanning out a directory miss.",
            ["region"],
            registry=self.registry,
        )
