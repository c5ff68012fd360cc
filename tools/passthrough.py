"""A bare gRPC pass-through proxy: the floor a gRPC hub in front of a region's gRPC service cannot go below.

Every unary call, whatever its method, is taken as raw bytes and forwarded unchanged over one channel to the
target; the target's answer (or status) goes back unchanged. There is no decoding, validation, routing,
authorisation, ledger or metric: what remains is what any hub pays to sit in the path — a TLS connection from
the caller, an HTTP/2 server, an HTTP/2 client to the region, and one event-loop hop.

It listens the way the hub does — mutual TLS with the hub's certificate from a development PKI (``yikatong pki
init``), client certificates required to chain to the federation CA — on the same event loop (uvloop where it is
installed), so that ``tools/bench.py`` compares like with like. The target is called over mutual TLS with the
hub's client certificate to the regions (``hub-client.pem`` of the same folder, as ``yikatong up`` makes it), as the
hub's Beijing–Tianjin–Hebei adapter calls its sandbox.

Usage: ``python tools/passthrough.py --target HOST:PORT --pki DIR [--port P]``; prints
``passthrough gRPC ADDRESS -> TARGET`` once listening, then serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    Forward = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]
    Handler = grpc.GenericRpcHandler[bytes, bytes]
else:
    Handler = grpc.GenericRpcHandler  # generic in the stubs only


class PassThrough(Handler):
    """Answers every unary method by forwarding its bytes to ``channel`` under the same method name.

    Args:
        channel: the channel to the target service.
    """

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes] | None:
        """The handler of a method: made on its first call, then kept (no per-call allocation but the call's)."""
        method = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            handler = grpc.unary_unary_rpc_method_handler(self._forwarder(method))
            self._handlers[method] = handler
        return handler

    def _forwarder(self, method: str) -> Forward:
        # No serializers on either side: bytes in, bytes out.
        call = self._channel.unary_unary(method, None, None)

        async def forward(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            try:
                answer: bytes = await call(request, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as exc:
                await context.abort(exc.code(), exc.details() or "")
            return answer

        return forward


def server_credentials(pki: Path) -> grpc.ServerCredentials:
    """Mutual TLS as the hub serves it: the hub's certificate; clients must present one of the federation CA."""
    return grpc.ssl_server_credentials(
        [((pki / "hub.key").read_bytes(), (pki / "hub.pem").read_bytes())],
        root_certificates=(pki / "ca.pem").read_bytes(),
        require_client_auth=True,
    )


async def serve(target: str, pki: Path, host: str, port: int) -> None:
    """Forward calls on ``host:port`` to ``target`` until SIGINT or SIGTERM."""
    channel = grpc.aio.secure_channel(
        target,
        grpc.ssl_channel_credentials(
            (pki / "ca.pem").read_bytes(), (pki / "hub-client.key").read_bytes(), (pki / "hub-client.pem").read_bytes()
        ),
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((PassThrough(channel),))
    bound = server.add_secure_port(f"{host}:{port}", server_credentials(pki))
    await server.start()
    print(f"passthrough gRPC {host}:{bound} -> {target}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)
    await channel.close(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--target", required=True, help="host:port of the gRPC service to forward to")
    parser.add_argument("--pki", type=Path, required=True, help="folder of `yikatong pki init` (ca.pem, hub.pem/.key)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    args = parser.parse_args()
    main_coroutine = serve(args.target, args.pki, args.host, args.port)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coroutine)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main_coroutine)


if __name__ == "__main__":
    main()
