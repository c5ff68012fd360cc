"""The 川渝 wire on the region's server side: its envelope as an aiohttp reply, and reading a request.

What the adapter and the region agree on (routes, codes, the JSON form of each object) is in
:mod:`adapters.sichuan_chongqing.protocol` and :mod:`adapters.sichuan_chongqing.codec`; this module only puts
it on aiohttp. A request field that cannot be read raises :class:`~adapters.jsonwire.FieldError` (from the codec)
or :class:`BadInput` (here); the server answers both HTTP 400 with code ``4000``, naming the field.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from aiohttp import web

from adapters.jsonwire import Fields, is_message_id
from adapters.sichuan_chongqing.protocol import OK, envelope

_dumps = partial(json.dumps, ensure_ascii=False)


class BadInput(Exception):
    """A request the protocol cannot read; answered HTTP 400 with code ``4000``."""


def reply(code: str, message: str, data: Any = None, *, status: int = 200) -> web.Response:
    """One reply in the region's envelope."""
    return web.json_response(envelope(code, message, data), status=status, dumps=_dumps)


def ok(data: Any, *, status: int = 200) -> web.Response:
    """A successful reply carrying ``data``."""
    return reply(OK, "success", data, status=status)


def query(request: web.Request, key: str, *, required: bool = True) -> str:
    """A query parameter; a required one must be present and not empty."""
    value = request.query.get(key, "")
    if required and not value:
        raise BadInput(f"query parameter {key} is required")
    return value


async def body(request: web.Request) -> Fields:
    """The request's JSON object body, for the codec's readers."""
    try:
        parsed: Any = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise BadInput("the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise BadInput("the body must be a JSON object")
    return Fields(parsed)


def message_id(request: web.Request) -> str:
    """The settlement message id in the path: 1–64 printable ASCII characters."""
    value = request.match_info["msgId"]
    if not is_message_id(value):
        raise BadInput("msgId must be 1 to 64 printable ASCII characters")
    return value
