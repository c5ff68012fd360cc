"""Every metric the hub exposes, defined in one place on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


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
        self.settlements = Counter(
            "yikatong_settlements",
            "Settlement outcomes by insured and treatment region "
            "(settled, refused, outcome_unknown, split_invalid, reversed).",
            ["insured_region", "treatment_region", "outcome"],
            registry=self.registry,
        )
        self.settlement_fund_pay = Counter(
            "yikatong_settlement_fund_pay_fen",
            "Fund payments settled, in fen, by insured and treatment region.",
            ["insured_region", "treatment_region"],
            registry=self.registry,
        )
        self.outbox_depth = Gauge(
            "yikatong_outbox_depth", "Outbox items waiting for their region's acknowledgement.", registry=self.registry
        )
        self.outbox_oldest_age = Gauge(
            "yikatong_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox item (0 when empty).",
            registry=self.registry,
        )
        self.outbox_deliveries = Counter(
            "yikatong_outbox_deliveries",
            "Outbox delivery attempts by kind, region and result (delivered, failed).",
            ["kind", "region", "result"],
            registry=self.registry,
        )
