"""One region down or slow: its calls fail fast with its name, the other two keep answering."""

from __future__ import annotations

import time

import aiohttp
import grpc
import pytest

from adapters.domain import CardStatus
from gateway.api.status import error_reason
from tests.conftest import REGION_IDS, Federation, credential
from yikatong.v1 import card_pb2, common_pb2


def verify(federation: Federation, region: str) -> card_pb2.VerifyCardRequest:
    person = federation.pick(region, lambda p: p.status is CardStatus.NORMAL)
    return card_pb2.VerifyCardRequest(card=credential(person), venue=common_pb2.Venue(area_code="310104"))


async def set_faults(federation: Federation, region: str, change: dict[str, object]) -> None:
    async with aiohttp.ClientSession() as http:
        url = federation.sandboxes[region].admin_url + "/admin/faults"
        async with http.post(url, json=change) as reply:
            assert reply.status == 200


async def assert_others_answer(federation: Federation, down: str) -> None:
    for region in REGION_IDS:
        if region != down:
            answer = await federation.cards.VerifyCard(verify(federation, region), timeout=5)
            assert answer.issuing_region == region


async def refused_within(federation: Federation, region: str, deadline: float) -> tuple[grpc.aio.AioRpcError, float]:
    request = verify(federation, region)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await federation.cards.VerifyCard(request, timeout=deadline)
    return refused.value, time.monotonic() - started


@pytest.mark.parametrize("region", REGION_IDS)
async def test_a_region_switched_down_is_unavailable_by_name_and_the_others_answer(
    federation: Federation, region: str
) -> None:
    await set_faults(federation, region, {"down": True})
    error, took = await refused_within(federation, region, 2.0)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert error_reason(error) == "REGION_UNAVAILABLE"
    assert region in (error.details() or "")
    assert took < 2.0
    await assert_others_answer(federation, region)
    await set_faults(federation, region, {"clear": True})
    assert (await federation.cards.VerifyCard(verify(federation, region), timeout=5)).issuing_region == region


@pytest.mark.parametrize("region", REGION_IDS)
async def test_a_stopped_region_is_unavailable_by_name_and_the_others_answer(
    federation: Federation, region: str
) -> None:
    await federation.sandboxes[region].server.stop()
    error, took = await refused_within(federation, region, 2.0)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert error_reason(error) == "REGION_UNAVAILABLE"
    assert region in (error.details() or "")
    assert took < 2.0
    await assert_others_answer(federation, region)


async def test_a_slow_region_times_out_within_the_callers_deadline(federation: Federation) -> None:
    await set_faults(federation, "sichuan-chongqing", {"latency_ms": 3000})
    error, took = await refused_within(federation, "sichuan-chongqing", 0.5)
    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert error_reason(error) == "REGION_TIMEOUT"
    assert "sichuan-chongqing" in (error.details() or "")
    assert took < 0.5
    await assert_others_answer(federation, "sichuan-chongqing")
