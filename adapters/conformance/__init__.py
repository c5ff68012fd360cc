"""The adapter conformance suite: the rules every region adapter, ours or a partner's, must keep.

Each :class:`Rule` runs against the adapter under test and a fresh sandbox of its region, started from the
region's configuration on free ports; a broken rule raises :class:`RuleViolation` naming the rule, what it
expected and what it got. From a partner's pytest::

    import pytest
    from adapters.conformance import Rule, check_rule, rules
    from my_region.adapter import MyAdapter

    @pytest.mark.parametrize("rule", rules(), ids=str)
    async def test_conformance(rule: Rule) -> None:
        await check_rule(rule, adapter_class=MyAdapter, region="my-region")

or from the command line: ``yikatong adapter check --region my-region``; or in code: ``await run(region=...)``
returns a :class:`Report` of every rule.
"""

from adapters.conformance.rule import Rule, RuleViolation, Unmet
from adapters.conformance.suite import Report, RuleResult, adapter_class_of, check_rule, rules, run
from adapters.conformance.target import Samples, Target, open_target, pick_samples, resolve_region

__all__ = [
    "Report",
    "Rule",
    "RuleResult",
    "RuleViolation",
    "Samples",
    "Target",
    "Unmet",
    "adapter_class_of",
    "check_rule",
    "open_target",
    "pick_samples",
    "resolve_region",
    "rules",
    "run",
]
