"""The 长三角 envelope client: sends one envelope, returns its decoded output.

This is the only module of the adapter that sees aiohttp. Transport errors are translated by
:func:`adapters.http.transport_errors`; the envelope's own answers here: HTTP 503 is
:class:`~adapters.errors.RegionUnavailable`, another HTTP status :class:`~adapters.errors.RegionProtocolError`,
``infcode`` -1 with a business ``err_code`` the matching :class:`~adapters.errors.Refusal` (the protocol's
``ERR_CODES``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from adapters.domain import CardStatus
from adapters.errors import (
    CardStateConflict,
    IdempotencyKeyReused,
    RegionProtocolError,
    RegionUnavailable,
    SettlementCorrected,
    SettlementNotSettled,
    YikatongError,
)
from adapters.http import HttpSession, transport_errors
from adapters.tls import ClientTls
from adapters.yangtze_delta.codec import decode_state
from adapters.yangtze_delta.protocol import ERR_CODES, INFVER, PATH

T = TypeVar("T")


class EnvelopeClient:
    """Calls the region's one envelope endpoint over a single pooled aiohttp session.

    Args:
        region_id: the region's id, named in every error raised.
        endpoint: the region's base URL, e.g. ``https://127.0.0.1:7111``.
        hub_area: the area code sent as ``mdtrtarea_admvs`` (where the request comes from).
        tls: the link's TLS, for an ``https://`` endpoint (None: the system's roots, no client certificate).
    """

    def __init__(self, region_id: str, endpoint: str, hub_area: str, tls: ClientTls | None = None) -> None:
        self.region_id = region_id
        self.url = endpoint.rstrip("/") + PATH
        self.hub_area = hub_area
        self._http = HttpSession(region_id, tls)

    async def start(self) -> None:
        """Open the HTTP session."""
        await self._http.start()

    async def close(self) -> None:
        """Close the HTTP session and its pooled connections."""
        await self._http.close()

    async def call(
        self,
        infno: str,
        data: Mapping[str, Any],
        decode: Callable[[Mapping[str, Any]], T],
        *,
        msgid: str,
        timeout: float,
        insured_area: str = "",
        treatment_area: str = "",
    ) -> T:
        """Send one envelope and decode its ``output``.

        Args:
            infno: the service code, e.g. ``"1101"``.
            data: the service's ``input.data``.
            decode: turns the reply's ``output`` into the caller's value; a ``KeyError``, ``TypeError`` or
                ``ValueError`` it raises means the reply was unreadable.
            msgid: the message id; the region deduplicates writes on it.
            timeout: seconds the whole call may take.
            insured_area: the insured area (``insuplc_admdvs``) when the request names one.
            treatment_area: the treatment area (``mdtrtarea_admvs``) when the request names one; the hub's
                own area otherwise.

        Returns:
            What ``decode`` made of the output.

        Raises:
            Refusal: the region refused the request (a subclass naming why).
            RegionUnavailable: the region could not be reached or would not process the request.
            RegionTimeout: no answer within ``timeout``.
            RegionProtocolError: the answer was not in the region's protocol.
        """
        body = {
            "infno": infno,
            "msgid": msgid,
            "mdtrtarea_admvs": treatment_area or self.hub_area,
            "insuplc_admdvs": insured_area,
            "infver": INFVER,
            "input": {"data": dict(data)},
        }
        with transport_errors(self.region_id):
            status, payload = await self._http.exchange("POST", self.url, timeout=timeout, json=body)
            return decode(self._output(self._reply(status, payload), msgid))

    def _reply(self, status: int, payload: bytes) -> Mapping[str, Any]:
        if status == 503:
            raise RegionUnavailable(
                self.region_id, "the region's system is down or busy (HTTP 503)", may_have_reached=True
            )
        if status != 200:
            raise RegionProtocolError(self.region_id, f"unexpected HTTP status {status}")
        reply = json.loads(payload)
        if not isinstance(reply, dict):
            raise ValueError("the reply is not a JSON object")
        return reply

    def _output(self, reply: Mapping[str, Any], msgid: str) -> Mapping[str, Any]:
        infcode = reply["infcode"]
        if infcode == -1 and type(infcode) is int:
            raise self._refusal(reply, msgid)
        output = reply["output"]
        if infcode != 0 or type(infcode) is not int or not isinstance(output, dict):
            raise ValueError(f"infcode {infcode!r} with output of type {type(output).__name__}")
        return output

    def _refusal(self, reply: Mapping[str, Any], msgid: str) -> YikatongError:
        code, message = reply.get("err_code"), str(reply.get("err_msg", ""))
        refusal = ERR_CODES.refusal(code)
        if refusal is CardStateConflict:
            output = reply["output"]
            return CardStateConflict(str(output["action"]), CardStatus(int(output["card_stas"])))
        if refusal is IdempotencyKeyReused:
            return IdempotencyKeyReused(msgid)
        if refusal is SettlementNotSettled:
            output = reply["output"]
            return SettlementNotSettled(str(output["omsgid"]), decode_state(output["setl_stas"]).value)
        metadata = {"region": self.region_id, "detail": message}
        if refusal is SettlementCorrected:  # only ever the answer to a settlement, whose msgid is its request id
            return SettlementCorrected(
                f"region {self.region_id}: {message}", metadata={**metadata, "request_id": msgid}
            )
        if refusal is None:
            return RegionProtocolError(self.region_id, f"error {code}: {message}")
        return refusal(f"region {self.region_id}: {message}", metadata=metadata)
