"""Rules of the link itself: TLS to the region, and requests an eavesdropper captured (DESIGN §11).

The eavesdropper has what crossed the link — each request as the region's server received it, which the
sandbox records (:mod:`regions.wiretap`) — and none of the hub's credentials: no client key, no shared secret.
It can reach the region's port and trusts the region's certificate. Whatever it sends again, as it was or
pointed at another settlement, the region must refuse: at the TLS handshake (a region that requires the hub's
client certificate), or with an HTTP error status or a gRPC error (a region that checks signatures and nonces).
"""

from __future__ import annotations

import contextlib
import ssl
import uuid
from dataclasses import replace

import aiohttp
import grpc
from yarl import URL

from adapters.conformance.rule import Rule, Unmet, answer, describe, holds, refused, rule, same
from adapters.conformance.target import Target
from adapters.domain import OutcomeState
from adapters.errors import RegionUnavailable
from regions.certificates import DEV_CA_NAME, Authority
from regions.wiretap import Captured

_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}
_GRPC_OWN = {"user-agent", "grpc-accept-encoding", "grpc-encoding", "grpc-timeout", "te", "content-type"}


@rule(
    "LINK-TLS-VERIFIED",
    "an adapter whose CA bundle does not vouch for the region's certificate sends nothing: RegionUnavailable, "
    "not reached",
)
async def tls_verified(t: Target) -> None:
    stranger = Authority(t.data_dir / "stranger").ensure(DEV_CA_NAME)  # same name, another key
    options = {**t.config.options, "tls_ca": stranger.ca.read_text()}
    misled = t.adapter_class(replace(t.settings(t.sandbox.address), options=options))
    seen = _captured(t)
    await answer("start of an adapter trusting another CA", misled.start())
    try:
        doing = "get_card through a link whose certificate the adapter does not trust"
        person = t.samples.employee
        error = await refused(RegionUnavailable, doing, misled.get_card(t.credential(person), timeout=t.timeout))
        same(f"may_have_reached of {doing}", False, error.may_have_reached)
    finally:
        with contextlib.suppress(Exception):
            await misled.close()
    same("requests that reached the region through that link", [], _captured(t)[len(seen) :])


@rule(
    "LINK-REPLAY-REFUSED",
    "a write captured on the link and sent again by someone without the hub's credentials is refused",
)
async def replay_refused(t: Target) -> None:
    bill = t.bill(t.samples.employee, str(uuid.uuid4()))
    await answer("settle", t.adapter.settle(bill, timeout=t.timeout))
    captured = _last_naming(t, bill.request_id, "the settlement")
    before = t.money(t.samples.employee), dict(t.sandbox.medical.settlements)

    verdict = await _send_as_eavesdropper(t, captured)

    holds(verdict is not None, "the replayed settlement to be refused", "the region accepted it")
    after = t.money(t.samples.employee), t.sandbox.medical.settlements
    same("money and settlements after the refused replay", before, after)


@rule(
    "LINK-TAMPER-REFUSED",
    "a captured correction pointed at another settlement (its id changed wherever it appears) is refused, and that "
    "settlement stays settled",
)
async def tamper_refused(t: Target) -> None:
    person = t.samples.employee
    voided, other = t.bill(person, str(uuid.uuid4())), t.bill(person, str(uuid.uuid4()))
    for bill in (voided, other):
        await answer("settle", t.adapter.settle(bill, timeout=t.timeout))
    await answer("correct_settlement", t.adapter.correct_settlement(voided.request_id, timeout=t.timeout))
    captured = _last_naming(t, voided.request_id, "the correction")
    pointed = replace(
        captured,
        target=captured.target.replace(voided.request_id, other.request_id),
        headers=tuple((k, v.replace(voided.request_id, other.request_id)) for k, v in captured.headers),
        body=captured.body.replace(voided.request_id.encode(), other.request_id.encode()),
    )
    money = t.money(person)

    verdict = await _send_as_eavesdropper(t, pointed)

    holds(verdict is not None, "the correction pointed at another settlement to be refused", "the region accepted it")
    same("state of the other settlement", OutcomeState.SETTLED, t.sandbox.medical.outcome(other.request_id).state)
    same("the person's accumulator and account", money, t.money(person))


def _captured(t: Target) -> list[Captured]:
    tap = t.sandbox.wiretap
    if tap is None:
        raise Unmet(
            "the sandbox to record what reached it (regions.sandbox.serve_http does; a gRPC server adds "
            "regions.wiretap.Wiretap.interceptor())",
            f"{type(t.sandbox.server).__name__} has no wiretap",
        )
    return list(tap.requests)


def _last_naming(t: Target, request_id: str, what: str) -> Captured:
    """The last request that reached the region naming ``request_id`` (in its target, a header or its body)."""
    for captured in reversed(_captured(t)):
        named = request_id in captured.target or any(request_id in value for _, value in captured.headers)
        if named or request_id.encode() in captured.body:
            return captured
    raise Unmet(f"{what} to reach the region naming its request id {request_id}", "no such request recorded")


async def _send_as_eavesdropper(t: Target, captured: Captured) -> str | None:
    """Send a captured request again with no credential of the hub; how it was refused, None when accepted."""
    ca = t.links.ca.read_text()
    try:
        if captured.transport == "grpc":
            await _grpc(t.sandbox.address, ca, captured)
            return None
        return await _http(t.sandbox.address, ca, captured)
    except (aiohttp.ClientError, grpc.aio.AioRpcError, ssl.SSLError, ConnectionError, TimeoutError) as exc:
        return describe(exc)


async def _http(base: str, ca: str, captured: Captured) -> str | None:
    context = ssl.create_default_context(cadata=ca)
    headers = [(k, v) for k, v in captured.headers if k.lower() not in _HOP_BY_HOP]
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context), timeout=timeout) as http,
        http.request(
            captured.method, URL(base + captured.target, encoded=True), headers=headers, data=captured.body
        ) as reply,
    ):
        await reply.read()
        return f"HTTP {reply.status}" if reply.status >= 400 else None


async def _grpc(address: str, ca: str, captured: Captured) -> None:
    credentials = grpc.ssl_channel_credentials(ca.encode())
    async with grpc.aio.secure_channel(address, credentials) as channel:
        call = channel.unary_unary(captured.target, None, None)  # no (de)serializers: bytes in, bytes out
        metadata = tuple((k, v) for k, v in captured.headers if not k.endswith("-bin") and k not in _GRPC_OWN)
        await call(captured.body, timeout=5, metadata=metadata)


RULES: tuple[Rule, ...] = (tls_verified, replay_refused, tamper_refused)
