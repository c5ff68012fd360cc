"""SIGTERM under load (DESIGN §7): health turns NOT_SERVING first, calls keep being answered while the hub
drains, in-flight calls finish, new calls are refused once it stops, the ledger is closed cleanly, exit 0.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from adapters.domain import CardStatus
from regions.seed import generate
from tests.conftest import YIKATONG, StartSandbox, credential
from yikatong.v1 import card_pb2, card_pb2_grpc, common_pb2

DRAIN = 1.0  # config/hub.toml's drain_seconds


async def start_hub(data_dir: Path, endpoint: str) -> tuple[asyncio.subprocess.Process, str, str]:
    process = await asyncio.create_subprocess_exec(
        YIKATONG, "serve", "--data-dir", str(data_dir), "--port", "0", "--admin-port", "0", "--insecure", "--dev",
        "--endpoint", f"yangtze-delta={endpoint}", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode().split()
    assert line[:2] == ["hub", "gRPC"], line
    return process, line[2], line[4]


async def watch_health(channel: grpc.aio.Channel, seen: list[str]) -> None:
    stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
    try:
        async for answer in stream:
            seen.append(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
    except grpc.aio.AioRpcError:
        pass  # the stream ends with the server


@pytest.mark.slow
async def test_sigterm_under_load_drains_without_breaking_a_call(start_region: StartSandbox, tmp_path: Path) -> None:
    sandbox = await start_region("yangtze-delta")
    config = sandbox.config
    people = [p for p in generate(config.region_id, config.provinces) if p.status is CardStatus.NORMAL]
    sandbox.faults.update({"latency_ms": 300})
    hub, address, admin = await start_hub(tmp_path, sandbox.address)
    channel = grpc.aio.insecure_channel(address)
    stub = card_pb2_grpc.CardServiceStub(channel)
    seen: list[str] = []
    watcher = asyncio.create_task(watch_health(channel, seen))

    async def call(i: int) -> str:
        request = card_pb2.VerifyCardRequest(
            card=credential(people[i % len(people)]), venue=common_pb2.Venue(area_code="110105")
        )
        answer = await stub.VerifyCard(request, timeout=10)
        return answer.issuing_region

    calls = []
    for i in range(40):  # a call every 25 ms for 1 s: before, at and during the drain
        calls.append(asyncio.create_task(call(i)))
        if i == 10:
            hub.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.025)
    async with aiohttp.ClientSession() as session, session.get(admin + "/readyz") as ready:
        draining = (ready.status, (await ready.json())["checks"]["not_draining"])

    answers = await asyncio.gather(*calls, return_exceptions=True)
    assert await asyncio.wait_for(hub.wait(), 20) == 0
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(0)
    await watcher
    await channel.close()

    assert answers == ["yangtze-delta"] * 40  # no call ended with a transport error
    assert seen[0] == "SERVING" and "NOT_SERVING" in seen
    assert draining == (503, False)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    assert (tmp_path / "ledger.sqlite3").exists()
    assert not (tmp_path / "ledger.sqlite3-wal").exists()  # SQLite removes the WAL on a clean close
