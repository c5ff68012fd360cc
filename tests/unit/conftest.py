"""The unit layer: the hub's logic with fakes, no socket opened (a test that tries one fails)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postgres import emptied, fresh_schema
from tests.unit.fakes import Harness, harness


class SocketOpened(AssertionError):
    """A unit test tried to connect a socket."""


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connect, so a unit test that reaches the network cannot pass."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise SocketOpened(f"a unit test opened a connection: {args[1:]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    """The run's schema for the service tests on PostgreSQL; each test empties it first (``tests.postgres``)."""
    with fresh_schema() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
async def hub(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """A hub's services over fake regions (``tests.unit.fakes``), on each store: SQLite in memory (no socket), and
    the machine's PostgreSQL in the run's schema, emptied (skipped where none answers, failed in CI)."""
    if request.param == "sqlite":
        built = await harness(tmp_path)
    else:
        built = await harness(tmp_path, postgres=emptied(request.getfixturevalue("postgres_schema")))
    yield built
    await built.close()
