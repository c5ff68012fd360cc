"""The package is found the way the hub finds a partner's region: through its two entry points.

These tests need the package installed (``pip install -e .``, or ``--target`` a folder on ``PYTHONPATH``).
"""

from __future__ import annotations

from conftest import REGION, installed_entry_point
from yikatong_ggh import GuangdongGuangxiHainanAdapter, serve

from adapters.registry import ENTRY_POINT_GROUP, AdapterRegistry
from regions.config import RegionConfig
from regions.sandbox import SANDBOX_ENTRY_POINTS, protocol_server


def test_the_adapter_is_registered_under_the_name_the_region_file_gives(config: RegionConfig) -> None:
    entry = installed_entry_point(ENTRY_POINT_GROUP)

    assert config.adapter == REGION
    assert entry.load() is GuangdongGuangxiHainanAdapter
    assert AdapterRegistry.from_entry_points().get(config.adapter) is GuangdongGuangxiHainanAdapter


def test_the_sandbox_is_found_by_the_adapter_name(config: RegionConfig) -> None:
    entry = installed_entry_point(SANDBOX_ENTRY_POINTS)

    assert entry.load() is serve
    assert protocol_server(config) is serve
