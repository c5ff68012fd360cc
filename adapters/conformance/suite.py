"""Running the rules: one rule (:func:`check_rule`, for a partner's pytest) or all of them (:func:`run`).

Each rule runs against a fresh sandbox of the region (:func:`~adapters.conformance.target.open_target`), so
no rule sees another's changes and any order gives the same verdicts. Any error a check did not expect —
``NotImplementedError`` from a scaffolded method, a foreign exception an adapter let through — is reported
as that rule failing, never as a crash of the suite.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from adapters.conformance import card_rules, link_rules, settlement_rules, wire_rules
from adapters.conformance.rule import Rule, RuleViolation, Unmet, describe
from adapters.conformance.target import open_target, resolve_region
from adapters.interface import RegionAdapter
from adapters.registry import AdapterRegistry
from regions.config import RegionConfig

RULE_SECONDS = 30.0  # a rule still running after this long fails (an adapter that hangs)

_RULES: tuple[Rule, ...] = card_rules.RULES + settlement_rules.RULES + wire_rules.RULES + link_rules.RULES


def rules(*ids: str) -> list[Rule]:
    """Every rule of the suite in its fixed order, or those named by ``ids``.

    Raises:
        KeyError: an id names no rule.
    """
    if not ids:
        return list(_RULES)
    by_id = {r.id: r for r in _RULES}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise KeyError(f"no conformance rule {', '.join(unknown)} (rules: {', '.join(by_id)})")
    return [by_id[i] for i in ids]


def adapter_class_of(config: RegionConfig) -> type[RegionAdapter]:
    """The adapter class the region's configuration names, from the installed ``yikatong.adapters``."""
    return AdapterRegistry.from_entry_points().get(config.adapter)


@dataclass(frozen=True)
class RuleResult:
    """One rule's verdict.

    Attributes:
        rule: the rule.
        violation: why it failed; ``None`` when it passed.
        seconds: how long the rule took, sandbox start and stop included.
    """

    rule: Rule
    violation: RuleViolation | None
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether the adapter kept the rule."""
        return self.violation is None

    def line(self) -> str:
        """``PASS  RULE-ID  statement`` or ``FAIL  [RULE-ID] statement: expected …, got …``."""
        if self.violation is None:
            return f"PASS  {self.rule.id}  {self.rule.statement}"
        return f"FAIL  {self.violation}"


@dataclass(frozen=True)
class Report:
    """The suite's verdicts on one adapter against one region.

    Attributes:
        region_id: the region the suite ran against.
        adapter: the adapter class, ``module:Class``.
        results: one per rule, in the order run.
    """

    region_id: str
    adapter: str
    results: tuple[RuleResult, ...]

    @property
    def passed(self) -> bool:
        """Whether every rule run passed."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RuleViolation]:
        """The violations, in the order the rules ran."""
        return [r.violation for r in self.results if r.violation is not None]

    def lines(self) -> list[str]:
        """One ``PASS``/``FAIL`` line per rule (:meth:`RuleResult.line`)."""
        return [r.line() for r in self.results]


async def _verdict(rule: Rule, adapter_class: type[RegionAdapter], config: RegionConfig) -> RuleViolation | None:
    cutoff = asyncio.timeout(RULE_SECONDS)
    try:
        async with cutoff, open_target(adapter_class, config) as target:
            await rule.check(target)
    except RuleViolation as violation:
        return violation
    except Unmet as unmet:
        return rule.violation(unmet)
    except Exception as exc:
        if isinstance(exc, TimeoutError) and cutoff.expired():
            return rule.violation(Unmet(f"the rule's checks to finish within {RULE_SECONDS:.0f} s", "still running"))
        return rule.violation(Unmet("the rule's checks to run without an unexpected error", describe(exc)))
    return None


async def check_rule(
    rule: Rule,
    *,
    region: str | Path | RegionConfig,
    adapter_class: type[RegionAdapter] | None = None,
) -> None:
    """Check one rule; raise :class:`RuleViolation` when the adapter breaks it.

    Written for a partner's pytest::

        @pytest.mark.parametrize("rule", rules(), ids=str)
        async def test_conformance(rule: Rule) -> None:
            await check_rule(rule, adapter_class=MyAdapter, region="my-region")

    Args:
        rule: one of :func:`rules`.
        region: a configured region id (``$YIKATONG_REGIONS_DIR`` is honoured), a region file, or a config.
        adapter_class: the adapter under test; default: the installed adapter the region's file names.
    """
    config = resolve_region(region)
    violation = await _verdict(rule, adapter_class or adapter_class_of(config), config)
    if violation is not None:
        raise violation


async def run(
    *,
    region: str | Path | RegionConfig,
    adapter_class: type[RegionAdapter] | None = None,
    only: Iterable[Rule] | None = None,
    on_result: Callable[[RuleResult], None] | None = None,
) -> Report:
    """Run every rule (or ``only`` these) and report each verdict; never raises for a broken adapter.

    Args:
        region: a configured region id, a region file, or a config.
        adapter_class: the adapter under test; default: the installed adapter the region's file names.
        only: the rules to run, default :func:`rules`.
        on_result: called with each rule's result as soon as it is known (to print progress).
    """
    config = resolve_region(region)
    cls = adapter_class or adapter_class_of(config)
    results = []
    for rule in only if only is not None else rules():
        started = time.monotonic()
        violation = await _verdict(rule, cls, config)
        results.append(RuleResult(rule, violation, time.monotonic() - started))
        if on_result is not None:
            on_result(results[-1])
    return Report(config.region_id, f"{cls.__module__}:{cls.__qualname__}", tuple(results))
