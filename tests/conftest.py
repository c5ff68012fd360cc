"""Shared fixtures: real sandboxes (and, in later modules, a real hub) on loopback port 0."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from regions.config import RegionConfig, load_regions
from regions.sandbox import RunningSandbox, start_sandbox

REGION_IDS = ("yangtze-delta", "sichuan-chongqing", "beijing-tianjin-hebei")

StartSandbox = Callable[[str], Awaitable[RunningSandbox]]


@pytest.fixture(scope="session")
def region_configs() -> dict[str, RegionConfig]:
    return {c.region_id: c for c in load_regions()}


@pytest.fixture
async def start_region(region_configs: dict[str, RegionConfig]) -> AsyncIterator[StartSandbox]:
    """Start a region's sandbox on free ports; every sandbox started is stopped after the test."""
    started: list[RunningSandbox] = []

    async def start(region_id: str) -> RunningSandbox:
        sandbox = await start_sandbox(region_configs[region_id], port=0, admin_port=0)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        await sandbox.stop()
