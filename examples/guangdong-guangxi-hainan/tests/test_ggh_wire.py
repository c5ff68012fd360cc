"""The 粤桂琼 wire itself: JSON-RPC 2.0 objects as they travel, the region's codes, and the one choke point
where the adapter translates foreign errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import aiohttp
import pytest
from conftest import bill, card_row, credential
from yikatong_ggh import codec, translated_errors
from yikatong_ggh.client import request, response
from yikatong_ggh.dialect import Code, Method

from adapters.domain import CardStatus, InsuranceType
from adapters.errors import (
    CardNotFound,
    CardStateConflict,
    IdempotencyKeyReused,
    RegionProtocolError,
    RegionTimeout,
    RegionUnavailable,
    SettlementNotSettled,
    YikatongError,
)
from adapters.jsonwire import ErrorAnswer, WireError
from adapters.tls import ClientTls
from regions.backend import Backend
from regions.config import RegionConfig
from regions.sandbox import HttpServer

Answer = tuple[int, dict[str, Any]]


async def post(server: HttpServer, config: RegionConfig, body: bytes, headers: dict[str, str]) -> Answer:
    """One POST over TLS as the hub makes it (the region file's CA and client certificate)."""
    tls = ClientTls.from_options(config.options, config.region_id)
    connector = aiohttp.TCPConnector(ssl=tls.ssl_context())
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(server.address + "/rpc", data=body, headers=headers) as r,
    ):
        return r.status, json.loads(await r.read())


async def rpc(
    server: HttpServer, config: RegionConfig, method: str, params: Any, *, key: str = "", auth: str | None = None
) -> Answer:
    """One call with the region file's channel key (or ``auth``), as id 7."""
    headers = {"Authorization": auth if auth is not None else f"Bearer {config.options['api_key']}"}
    if key:
        headers["Idempotency-Key"] = key
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
    return await post(server, config, json.dumps(body, ensure_ascii=False).encode(), headers)


async def test_a_card_travels_in_status_letters_and_compact_dates(
    server: HttpServer, config: RegionConfig, backend: Backend
) -> None:
    row = card_row(backend, CardStatus.TEMPORARILY_LOST, insurance=InsuranceType.EMPLOYEE)
    holder = backend.cards.people[row.ssn].holder

    status, answer = await rpc(server, config, "card.get", {"ssn": row.ssn, "card_no": row.card.card_number})

    assert status == 200 and answer["jsonrpc"] == "2.0" and answer["id"] == 7
    result = answer["result"]
    assert result["card"]["status"] == "L"
    assert result["card"]["expires"] == row.card.valid_until.replace("-", "")
    assert result["holder"] == {
        "ssn": row.ssn,
        "name": holder.name,
        "sex": holder.gender.value,
        "birth": holder.birth_date.replace("-", ""),
    }
    assert result["insurances"] == [{"area": row.card.issuing_area, "type": "310"}]


async def test_a_settlement_travels_in_integer_fen_under_its_idempotency_key(
    server: HttpServer, config: RegionConfig, backend: Backend
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.RESIDENT, province="45")
    the_bill = bill(credential(backend, row), row.card.issuing_area)
    params = codec.bill_json(the_bill)
    key = str(uuid.uuid4())

    status, settled = await rpc(server, config, "bill.settle", params, key=key)
    _, outcome = await rpc(server, config, "bill.outcome", {"msg_id": key})

    assert status == 200
    split = settled["result"]["split"]
    assert settled["result"]["msg_id"] == key
    assert all(type(value) is int for value in split.values())
    assert split["total"] == 90_000 + 37_035 + 8_800 + 300_000
    assert split["over_cap"] == 50_000 and split["self_full"] == 8_800
    assert split["total"] == split["fund"] + split["account"] + split["cash"]
    assert split["account"] == 0  # residents have no personal account
    assert outcome["result"]["state"] == "Y" and outcome["result"]["settlement"] == settled["result"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", -32700),
        (b'[{"jsonrpc": "2.0", "id": 1, "method": "system.ping"}]', -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "system.ping"}', -32600),
        (b'{"jsonrpc": "2.0", "method": "system.ping"}', -32600),
    ],
    ids=["not-json", "batch", "old-version", "notification"],
)
async def test_an_unreadable_request_is_answered_with_a_null_id(
    server: HttpServer, config: RegionConfig, body: bytes, code: int
) -> None:
    status, answer = await post(server, config, body, {"Authorization": f"Bearer {config.options['api_key']}"})

    assert status == 200
    assert answer["id"] is None and answer["error"]["code"] == code


@pytest.mark.parametrize(
    ("method", "params", "code", "field"),
    [
        ("card.lookup", {}, -32601, None),
        ("card.get", [1, 2], -32602, "params"),
        ("card.get", {"card_no": "X00000019"}, -32602, "ssn"),
        ("card.progress", {"ssn": "440106199001011234", "name": 5}, -32602, "name"),
        ("bill.outcome", {"msg_id": "é" * 3}, -32602, "msg_id"),
        ("card.get", {"ssn": "440106199001011234", "card_no": "X00000019"}, 1001, None),
    ],
)
async def test_errors_name_their_code_and_field(
    server: HttpServer, config: RegionConfig, method: str, params: Any, code: int, field: str | None
) -> None:
    status, answer = await rpc(server, config, method, params)

    assert status == 200 and answer["id"] == 7
    assert answer["error"]["code"] == code
    assert answer["error"].get("data", {}).get("field") == field


async def test_a_bad_bill_line_is_named_and_a_write_needs_its_key(
    server: HttpServer, config: RegionConfig, backend: Backend
) -> None:
    row = card_row(backend, CardStatus.NORMAL, insurance=InsuranceType.EMPLOYEE)
    params = codec.bill_json(bill(credential(backend, row), row.card.issuing_area))
    bad = {**params, "items": [params["items"][0], {**params["items"][1], "amount": -1}]}

    _, bad_line = await rpc(server, config, "bill.preview", bad)
    _, keyless = await rpc(server, config, "bill.settle", params)

    assert bad_line["error"]["data"] == {"field": "items[1].amount"}
    assert keyless["error"]["data"] == {"field": "Idempotency-Key"}
    assert backend.medical.settlements == {}


async def test_refusals_carry_the_codes_a_client_rebuilds_them_from(
    server: HttpServer, config: RegionConfig, backend: Backend
) -> None:
    row = card_row(backend, CardStatus.LOCKED)
    person = codec.person_json(credential(backend, row))

    _, conflict = await rpc(server, config, "card.change", {"person": person, "op": "JG"}, key="k1")
    _, replayed = await rpc(server, config, "card.change", {"person": person, "op": "JG"}, key="k1")

    assert conflict["error"]["code"] == 1006 and conflict["error"]["data"] == {"op": "JG", "status": "S"}
    assert replayed["error"] == conflict["error"]  # the same params under k1: the first answer again
    _, other = await rpc(server, config, "card.change", {"person": person, "op": "QY"}, key="k1")
    assert other["error"] == {
        "code": 3001,
        "message": "request_id k1 was used for a different request",
        "data": {"request_id": "k1"},
    }


async def test_the_transport_refuses_a_wrong_key_and_a_system_down_or_busy(
    server: HttpServer, config: RegionConfig, backend: Backend
) -> None:
    assert await rpc(server, config, "system.ping", {}, auth="Bearer wrong") == (
        401,
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": "channel key refused"}},
    )
    backend.faults.update({"down": True})
    status, down = await rpc(server, config, "system.ping", {})
    assert (status, down["error"]["code"]) == (503, -32050)
    backend.faults.update({"down": False, "error_rate": 1.0})
    status, busy = await rpc(server, config, "system.ping", {})
    assert (status, busy["error"]["code"]) == (503, -32051)


# --- the adapter's one choke point --------------------------------------------------------------------------------


def _connector_error() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "refused"))


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (ErrorAnswer(200, Code.CARD_NOT_FOUND, "无此卡", None), CardNotFound),
        (ErrorAnswer(200, Code.CARD_STATE_CONFLICT, "x", {"op": "LG", "status": "X"}), CardStateConflict),
        (ErrorAnswer(200, Code.CARD_STATE_CONFLICT, "x", {"op": "??", "status": "X"}), RegionProtocolError),
        (ErrorAnswer(200, Code.SETTLEMENT_NOT_SETTLED, "x", {"msg_id": "m", "state": "Z"}), SettlementNotSettled),
        (ErrorAnswer(200, Code.IDEMPOTENCY_KEY_REUSED, "x", {"request_id": "k"}), IdempotencyKeyReused),
        (ErrorAnswer(200, Code.SYSTEM_BUSY, "busy", None), RegionUnavailable),
        (ErrorAnswer(503, Code.INTERNAL_ERROR, "from a proxy", None), RegionUnavailable),
        (ErrorAnswer(401, Code.UNAUTHORIZED, "channel key refused", None), RegionProtocolError),
        (ErrorAnswer(200, Code.INVALID_PARAMS, "bad", {"field": "ssn"}), RegionProtocolError),
        (ErrorAnswer(200, 4242, "a code of a newer protocol", None), RegionProtocolError),
        (WireError("no result"), RegionProtocolError),
        (aiohttp.ServerDisconnectedError(), RegionProtocolError),
        (aiohttp.ConnectionTimeoutError(), RegionUnavailable),
        (TimeoutError(), RegionTimeout),
    ],
)
def test_foreign_errors_are_translated_at_one_choke_point(raised: Exception, expected: type[YikatongError]) -> None:
    with pytest.raises(expected) as caught, translated_errors("guangdong-guangxi-hainan", "k"):
        raise raised
    assert type(caught.value) is expected


def test_a_refused_connection_is_unavailable_and_a_reused_key_names_the_write() -> None:
    with pytest.raises(RegionUnavailable), translated_errors("guangdong-guangxi-hainan"):
        raise _connector_error()
    with pytest.raises(IdempotencyKeyReused) as caught, translated_errors("guangdong-guangxi-hainan", "write-1"):
        raise ErrorAnswer(200, Code.IDEMPOTENCY_KEY_REUSED, "reused", None)
    assert caught.value.metadata == {"request_id": "write-1"}


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (200, b'{"jsonrpc": "2.0", "id": 8, "result": {}}'),  # answers another call
        (200, b'{"id": 7, "result": {}}'),  # not JSON-RPC 2.0
        (200, b'{"jsonrpc": "2.0", "id": 7}'),  # neither result nor error
        (500, b'{"jsonrpc": "2.0", "id": 7, "result": {}}'),  # a result on a failed transport
        (502, b"<html>bad gateway</html>"),
    ],
)
def test_an_answer_that_is_not_the_protocol_is_malformed(status: int, payload: bytes) -> None:
    with pytest.raises(WireError):
        response(status, payload, 7)


def test_a_request_object_is_json_rpc_2() -> None:
    assert json.loads(request(3, Method.PING, {})) == {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "system.ping",
        "params": {},
    }
