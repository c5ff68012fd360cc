"""The 长三角 HTTP/JSON envelope protocol: raw envelopes to the sandbox, and the adapter against broken servers.

What every region adapter does alike is tested in ``test_region_adapters.py``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from adapters import AdapterSettings, CardStatus
from adapters.errors import RegionProtocolError
from adapters.yangtze_delta import YangtzeDeltaAdapter
from regions.cardsystem import CardRow
from regions.sandbox import RunningSandbox
from regions.yangtze_delta import PATH

REGION = "yangtze-delta"
TIMEOUT = 5.0
UNKNOWN_SSN = "110101199001011237"  # well-formed, not seeded in this region


@pytest.fixture
async def sandbox(start_region: Callable[[str], Awaitable[RunningSandbox]]) -> RunningSandbox:
    return await start_region(REGION)


@contextlib.asynccontextmanager
async def _adapter(endpoint: str) -> AsyncIterator[YangtzeDeltaAdapter]:
    """A started adapter for ``endpoint``, closed on exit."""
    adapter = YangtzeDeltaAdapter(AdapterSettings(REGION, endpoint))
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.close()


def _card_row(sandbox: RunningSandbox, status: CardStatus) -> CardRow:
    return next(row for row in sandbox.system.cards.values() if row.card.status is status)


# --- the wire -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"infno": "7777", "msgid": "m1", "input": {}}',
        b'{"infno": "1101", "input": {"data": {}}}',
        b'{"infno": "1101", "msgid": "m1", "input": {"data": {"certno": 5}}}',
        b'{"infno": "2802", "msgid": "m1", "input": {"data": {"certno": "1", "mdtrt_cert_no": "2", "action": "X"}}}',
        b'{"infno": "1101", "msgid": "m1", "input": "data"}',
    ],
)
async def test_malformed_envelopes_are_bad_input_not_server_errors(sandbox: RunningSandbox, body: bytes) -> None:
    async with aiohttp.ClientSession() as session, session.post(sandbox.address + PATH, data=body) as response:
        reply = await response.json()

    assert response.status == 200
    assert reply["infcode"] == -1
    assert reply["err_code"] == "BAD_INPUT"
    assert reply["inf_refmsgid"]


async def test_a_successful_envelope_reply(sandbox: RunningSandbox) -> None:
    row = _card_row(sandbox, CardStatus.LOCKED)
    envelope = {
        "infno": "1101",
        "msgid": "m-1",
        "mdtrtarea_admvs": "310104",
        "insuplc_admdvs": "",
        "infver": "V1.0",
        "input": {"data": {"certno": row.ssn, "mdtrt_cert_no": row.card.card_number}},
    }
    async with aiohttp.ClientSession() as session, session.post(sandbox.address + PATH, json=envelope) as response:
        reply = await response.json()

    assert (response.status, reply["infcode"], reply["err_msg"]) == (200, 0, "")
    assert reply["output"]["cardinfo"]["card_stas"] == "3"
    assert reply["output"]["baseinfo"]["certno"] == row.ssn


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def fake_region() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start an in-process server on port 0 answering the envelope path with a given handler."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post(PATH, handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def _not_json(_: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>gateway error</html>", content_type="text/html")


async def _server_error(_: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "boom"}, status=500)


async def _hang_up(request: web.Request) -> web.StreamResponse:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def _unknown_code(_: web.Request) -> web.StreamResponse:
    return web.json_response({"infcode": -1, "err_code": "SOMETHING_NEW", "err_msg": "?", "output": {}})


async def _broken_output(_: web.Request) -> web.StreamResponse:
    return web.json_response({"infcode": 0, "err_msg": "", "output": {"psn_exist": "maybe"}})


@pytest.mark.parametrize("handler", [_not_json, _server_error, _hang_up, _unknown_code, _broken_output])
async def test_unreadable_answers_are_protocol_errors(
    fake_region: Callable[[Handler], Awaitable[str]], handler: Handler
) -> None:
    async with _adapter(await fake_region(handler)) as adapter:
        with pytest.raises(RegionProtocolError) as caught:
            await adapter.knows_holder(UNKNOWN_SSN, timeout=TIMEOUT)
    assert caught.value.may_have_reached and not caught.value.retryable
