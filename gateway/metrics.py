"""Every metric the hub exposes, defined in one place on an injected registry (DESIGN §7).

Names follow Prometheus conventions: base units (``_seconds``; money in ``_fen``), counters end in ``_total``
once exposed. Labels carry only bounded values — method names, status codes, region ids, province codes,
participant ids of the participants file, outcomes — never a personal number or a request id.

==============================================  ======================================================
metric                                          labels
==============================================  ======================================================
grpc_server_started_total                       grpc_type, grpc_service, grpc_method
grpc_server_handled_total                       grpc_type, grpc_service, grpc_method, grpc_code
grpc_server_handling_seconds (histogram)        grpc_type, grpc_service, grpc_method
yikatong_region_pair_requests_total             grpc_method, home_region, venue_region, grpc_code
yikatong_region_pair_handling_seconds (hist.)   grpc_method, home_region, venue_region
yikatong_region_requests_total                  region, operation, outcome
yikatong_region_request_seconds (histogram)     region, operation
yikatong_region_in_flight                       region
yikatong_region_retries_total                   region, operation
yikatong_region_rejected_total                  region, reason (circuit_open, bulkhead_full)
yikatong_region_circuit_state                   region  (0 closed, 1 open, 2 half-open)
yikatong_region_up                              region  (1 when the last health probe passed)
yikatong_directory_lookups_total                result
yikatong_directory_fanout_calls_total           region
yikatong_settlements_total                      insured_region, treatment_region, outcome
yikatong_settlement_fund_pay_fen_total          insured_region, treatment_region
yikatong_outbox_depth                           region, kind (CORRECTION, REVERSAL, ADVICE)
yikatong_outbox_oldest_age_seconds              region, kind
yikatong_outbox_deliveries_total                kind, region, result
yikatong_status_cache_lookups_total             result (hit, miss)
yikatong_stand_in_grants_total                  region, service_kind
yikatong_card_events_total                      region, status
yikatong_ecard_tokens_total                     outcome (accepted, or the refusal reason)
yikatong_authz_decisions_total                  participant, grpc_method, decision (allowed, denied)
yikatong_audit_records_total                    (none)
yikatong_audit_last_checkpoint_age_seconds      (none)
yikatong_ledger_commits_total                   (none)
yikatong_ledger_writes_total                    (none)
==============================================  ======================================================

``home_region`` is the region the call was routed to (the card's issuing region, or the insured place's
for a settlement); ``venue_region`` the region of the venue or treatment place; either is ``none`` when the
call has none.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Fine buckets at the low end: a call refused inside the hub (open circuit, full bulkhead) takes well under 5 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CIRCUIT_STATES = {"closed": 0, "open": 1, "half_open": 2}


class Metrics:
    """The hub's metrics. Labels never carry personal numbers or other unbounded values."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        rpc = ["grpc_type", "grpc_service", "grpc_method"]
        self.rpc_started = Counter("grpc_server_started", "RPCs started on the server.", rpc, registry=r)
        self.rpc_handled = Counter(
            "grpc_server_handled", "RPCs completed on the server, by status code.", [*rpc, "grpc_code"], registry=r
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its answer, inside the hub.",
            rpc,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        pair = ["grpc_method", "home_region", "venue_region"]
        self.pair_requests = Counter(
            "yikatong_region_pair_requests",
            "RPCs by method, home region and venue region, and status code.",
            [*pair, "grpc_code"],
            registry=r,
        )
        self.pair_seconds = Histogram(
            "yikatong_region_pair_handling_seconds",
            "RPC handling time by method, home region and venue region.",
            pair,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.region_requests = Counter(
            "yikatong_region_requests",
            "Calls to a region's back-end by operation and outcome "
            "(ok, refused, unavailable, timeout, protocol_error, circuit_open, bulkhead_full, cancelled, error).",
            ["region", "operation", "outcome"],
            registry=r,
        )
        self.region_seconds = Histogram(
            "yikatong_region_request_seconds",
            "Time of one call to a region's back-end, all attempts included.",
            ["region", "operation"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.region_in_flight = Gauge(
            "yikatong_region_in_flight", "Calls to the region's back-end in progress.", ["region"], registry=r
        )
        self.region_retries = Counter(
            "yikatong_region_retries", "Retried attempts of calls to a region.", ["region", "operation"], registry=r
        )
        self.region_rejected = Counter(
            "yikatong_region_rejected",
            "Calls refused inside the hub without reaching the region (circuit_open, bulkhead_full).",
            ["region", "reason"],
            registry=r,
        )
        self.circuit_state = Gauge(
            "yikatong_region_circuit_state",
            "Circuit breaker state of the region: 0 closed, 1 open, 2 half-open.",
            ["region"],
            registry=r,
        )
        self.region_up = Gauge(
            "yikatong_region_up", "1 when the region's last health probe passed, else 0.", ["region"], registry=r
        )
        self.directory_lookups = Counter(
            "yikatong_directory_lookups",
            "Holder-directory lookups by result (hit: from the cache; negative: known to no region, from the cache; "
            "miss: fanned out to the regions; busy: refused, too many fanning out).",
            ["result"],
            registry=r,
        )
        self.directory_fanout_calls = Counter(
            "yikatong_directory_fanout_calls",
            "Calls made to regions while fanning out a directory miss.",
            ["region"],
            registry=r,
        )
        self.settlements = Counter(
            "yikatong_settlements",
            "Settlement outcomes by insured and treatment region "
            "(settled, refused, outcome_unknown, split_invalid, reversed).",
            ["insured_region", "treatment_region", "outcome"],
            registry=r,
        )
        self.settlement_fund_pay = Counter(
            "yikatong_settlement_fund_pay_fen",
            "Fund payments settled, in fen, by insured and treatment region.",
            ["insured_region", "treatment_region"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "yikatong_outbox_depth",
            "Outbox items waiting for their region's acknowledgement, by region and kind.",
            ["region", "kind"],
            registry=r,
        )
        self.outbox_oldest_age = Gauge(
            "yikatong_outbox_oldest_age_seconds",
            "Age of the oldest undelivered outbox item of the region and kind (0 when none waits).",
            ["region", "kind"],
            registry=r,
        )
        self.outbox_deliveries = Counter(
            "yikatong_outbox_deliveries",
            "Outbox delivery attempts by kind, region and result (delivered, failed).",
            ["kind", "region", "result"],
            registry=r,
        )
        self.status_cache_lookups = Counter(
            "yikatong_status_cache_lookups",
            "Card-status cache lookups of resident services (hit: answered without asking the region).",
            ["result"],
            registry=r,
        )
        self.stand_in_grants = Counter(
            "yikatong_stand_in_grants",
            "Resident services granted in stand-in while the issuing region was unreachable.",
            ["region", "service_kind"],
            registry=r,
        )
        self.card_events = Counter(
            "yikatong_card_events",
            "Card status events published by regions, by the status they report.",
            ["region", "status"],
            registry=r,
        )
        self.ecard_tokens = Counter(
            "yikatong_ecard_tokens",
            "E-card tokens presented, by outcome (accepted, or the reason they were refused).",
            ["outcome"],
            registry=r,
        )
        self.authz_decisions = Counter(
            "yikatong_authz_decisions",
            "Authorization decisions by participant (ids from the participants file), method and decision.",
            ["participant", "grpc_method", "decision"],
            registry=r,
        )
        self.audit_records = Counter(
            "yikatong_audit_records",
            "Records appended to the audit chain (as the auditor saw the head grow).",
            registry=r,
        )
        self.audit_checkpoint_age = Gauge(
            "yikatong_audit_last_checkpoint_age_seconds",
            "Seconds since the last signed checkpoint of the audit chain.",
            registry=r,
        )
        self.ledger_commits = Counter(
            "yikatong_ledger_commits", "Ledger transactions committed (each one disk sync).", registry=r
        )
        self.ledger_writes = Counter(
            "yikatong_ledger_writes",
            "Ledger write operations committed; several share a commit under load (group commit).",
            registry=r,
        )

    def ledger_commit(self, writes: int) -> None:
        """One ledger commit that carried ``writes`` write operations (called from the ledger's thread)."""
        self.ledger_commits.inc()
        self.ledger_writes.inc(writes)
