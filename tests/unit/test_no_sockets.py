"""The unit layer's guard: a connection attempt fails the test that makes it."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.unit.conftest import SocketOpened


def test_a_blocking_connect_fails() -> None:
    with socket.socket() as s, pytest.raises(SocketOpened):
        s.connect(("127.0.0.1", 9))


async def test_an_asyncio_connection_fails() -> None:
    with pytest.raises(SocketOpened):
        await asyncio.open_connection("127.0.0.1", 9)
