"""The hub's conformance suite, one test per rule, as a partner runs it in its own CI.

Each rule starts a fresh sandbox of the region through the ``yikatong.sandboxes`` entry point, so these tests
need the package installed (``pip install -e .``, or ``--target`` a folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import pytest
from conftest import REGION_FILE
from yikatong_ggh import GuangdongGuangxiHainanAdapter

from adapters.conformance import Rule, check_rule, rules


@pytest.mark.parametrize("rule", rules(), ids=str)
async def test_conformance(rule: Rule) -> None:
    await check_rule(rule, adapter_class=GuangdongGuangxiHainanAdapter, region=REGION_FILE)
