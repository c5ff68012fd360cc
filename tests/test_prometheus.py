"""A real Prometheus server (Debian's ``prometheus``) scrapes a running hub and answers queries for its metrics.

It also loads ``deploy/prometheus/alerts.yml``, so the recording rules are evaluated on the hub's real series.
Without the binary the test is skipped, unless ``YIKATONG_REQUIRE_PROMETHEUS=1`` (CI sets it) makes that a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.domain import CardStatus
from tests.conftest import REGION_IDS, Federation, credential
from tests.test_deploy import dashboard, dashboard_targets
from yikatong.v1 import card_pb2, common_pb2

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"
VENUES = ("110105", "120103", "310104", "330100", "500103", "510100")
# Dashboard variables as Grafana would expand them with "All" selected.
VARIABLES = {"$__rate_interval": "1m", "$__range": "1m", "$job": "yikatong-hub", "$instance": ".+"}
VARIABLES |= {f"${v}": ".*" for v in ("method", "home_region", "venue_region", "region")}
FED_PANELS = {
    "Call rate by method",
    "Duration p99 by method",
    "Call rate by region pair",
    "Duration p99 by region pair",
    "Back-end calls by region and outcome",
    "Back-end call duration p99 by region",
    "Circuit breaker state",
    "Region health probe",
}
PATIENCE = 12.0  # seconds to wait for Prometheus to start, or to see a value; scrapes and rules run every second


@pytest.fixture
def prometheus_binary() -> str:
    """The server's path; checked before the federation starts."""
    found = shutil.which("prometheus")
    if found is not None:
        return found
    message = "no `prometheus` binary: install Debian's prometheus package (make rules-check does)"
    if os.environ.get("YIKATONG_REQUIRE_PROMETHEUS") == "1":
        pytest.fail(f"{message}; YIKATONG_REQUIRE_PROMETHEUS=1 does not allow skipping")
    pytest.skip(message)


def expand(expr: str) -> str:
    for variable in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, VARIABLES[variable])
    return expr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape_config(hub_admin: str) -> str:
    """Prometheus reads YAML, of which JSON is a subset."""
    return json.dumps(
        {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "yikatong-hub", "metrics_path": "/metrics", "static_configs": [{"targets": [hub_admin]}]}
            ],
        }
    )


@dataclass
class Prometheus:
    url: str
    session: aiohttp.ClientSession
    log: Path

    async def get(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.url}{path}", params=params) as answer:
            body = await answer.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, promql: str) -> dict[str, float]:
        """An instant query's samples, keyed by their labels other than ``__name__`` (``"{}"`` for none)."""
        result = await self.get("/api/v1/query", query=promql)
        return {
            json.dumps({k: v for k, v in s["metric"].items() if k != "__name__"}, sort_keys=True): float(s["value"][1])
            for s in result["result"]
        }

    async def until(self, promql: str, done: Callable[[dict[str, float]], bool]) -> dict[str, float]:
        """Query until ``done(samples)``; the last answer either way, for the caller to assert on."""
        deadline = time.monotonic() + PATIENCE
        samples = await self.query(promql)
        while not done(samples) and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            samples = await self.query(promql)
        return samples

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


async def wait_ready(process: asyncio.subprocess.Process, url: str, session: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise AssertionError(f"prometheus exited with {process.returncode}")
        try:
            async with session.get(f"{url}/-/ready") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"prometheus not ready at {url} within {PATIENCE} s")


@pytest.fixture
async def prometheus(prometheus_binary: str, federation: Federation, tmp_path: Path) -> AsyncIterator[Prometheus]:
    """A Prometheus server on a free loopback port scraping the hub's admin port every second."""
    config, log = tmp_path / "prometheus.yml", tmp_path / "prometheus.log"
    await asyncio.to_thread(config.write_text, scrape_config(federation.hub.admin_url.removeprefix("http://")))
    url = f"http://127.0.0.1:{free_port()}"
    log_file = await asyncio.to_thread(log.open, "wb")
    try:
        process = await asyncio.create_subprocess_exec(
            prometheus_binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={url.removeprefix('http://')}",
            "--log.level=warn",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                server = Prometheus(url, session, log)
                try:
                    await wait_ready(process, url, session)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{server.log_tail()}") from exc
                yield server
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
    finally:
        log_file.close()


async def verify_cards(federation: Federation, count: int) -> None:
    person = federation.pick("sichuan-chongqing", lambda p: p.status is CardStatus.NORMAL)
    for i in range(count):
        request = card_pb2.VerifyCardRequest(
            card=credential(person), venue=common_pb2.Venue(area_code=VENUES[i % len(VENUES)])
        )
        await federation.cards.VerifyCard(request, timeout=5)


HANDLED_OK = 'grpc_server_handled_total{job="yikatong-hub", grpc_method="VerifyCard", grpc_code="OK"}'


@pytest.mark.slow
async def test_a_real_prometheus_scrapes_the_hub_and_answers_queries_for_its_metrics(
    federation: Federation, prometheus: Prometheus
) -> None:
    rpc = {"grpc_type": "unary", "grpc_service": "yikatong.v1.CardService", "grpc_method": "VerifyCard"}
    scraped = {"job": "yikatong-hub", "instance": federation.hub.admin_url.removeprefix("http://")}
    key = json.dumps({**rpc, "grpc_code": "OK", **scraped}, sort_keys=True)

    await verify_cards(federation, 4)
    seen = await prometheus.until(HANDLED_OK, lambda s: s.get(key) == 4)
    assert seen == {key: 4.0}, prometheus.log_tail()

    # A second batch once the first is stored, so that the series grows inside Prometheus and rate() sees it.
    await verify_cards(federation, 3)
    seen = await prometheus.until(HANDLED_OK, lambda s: s.get(key) == 7)
    assert seen == {key: 7.0}, prometheus.log_tail()
    assert federation.metric("grpc_server_handled_total", {**rpc, "grpc_code": "OK"}) == 7  # the hub's own count

    up = await prometheus.until("yikatong_region_up", lambda s: len(s) == len(REGION_IDS) and all(s.values()))
    assert sorted(json.loads(k)["region"] for k, v in up.items() if v == 1) == sorted(REGION_IDS)
    pairs = await prometheus.query(
        'sum by (home_region) (yikatong_region_pair_requests_total{grpc_method="VerifyCard", grpc_code="OK"})'
    )
    assert pairs == {'{"home_region": "sichuan-chongqing"}': 7.0}

    # The shipped rules load, and the recording rules evaluate on the hub's real labels.
    method = '{grpc_service="yikatong.v1.CardService", grpc_method="VerifyCard"}'
    rate = await prometheus.until(f"yikatong:grpc_server_handled:rate5m{method}", lambda s: sum(s.values()) > 0)
    assert len(rate) == 1 and next(iter(rate.values())) > 0, prometheus.log_tail()
    ratio = await prometheus.query(f"yikatong:grpc_server_error_ratio:rate5m{method}")
    assert list(ratio.values()) == [0.0]
    rules = await prometheus.get("/api/v1/rules")
    assert [g["name"] for g in rules["groups"]] == ["yikatong"]
    unhealthy = [(r["name"], r.get("lastError")) for r in rules["groups"][0]["rules"] if r["health"] != "ok"]
    assert unhealthy == []
    alerts = await prometheus.get("/api/v1/alerts")
    assert alerts["alerts"] == []  # nothing pending or firing on a healthy federation

    # Every dashboard query (panels and annotations) parses and runs; the panels the calls above feed show data.
    board = dashboard()
    for target in dashboard_targets(board):
        await prometheus.query(expand(target["expr"]))
    for panel in board["panels"]:
        if panel["title"] in FED_PANELS:
            assert await prometheus.query(expand(panel["targets"][0]["expr"])), panel["title"]
