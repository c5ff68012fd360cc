"""Keeping every replica's caches coherent (DESIGN §8): what one replica learns, the others hear within a second.

Two things are broadcast: a card whose status changed (every replica drops it from its status cache, so a card
reported lost through any replica is refused by all) and a person whose region was learnt (every replica's
holder directory learns it). Only keyed hashes travel, never a card number or an SSN.

With one process there is nobody to tell (:class:`Alone`). Replicas sharing a PostgreSQL ledger use its
``LISTEN``/``NOTIFY`` (:class:`PostgresBroadcast`) on a channel of the ledger's schema: a notification is delivered
to every listening connection, the sender's own included, which ignores it by the sender's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("yikatong.broadcast")
CHANNEL = "yikatong_caches"
LOST = "lost"  # a kind of news of our own: the connection was lost, so some news may have been missed

Listener = Callable[[str, dict[str, str]], None]


class Broadcast(Protocol):
    async def start(self, listener: Listener) -> None:
        """Start hearing the other replicas' news; ``listener(kind, fields)`` gets each."""

    async def publish(self, kind: str, fields: dict[str, str]) -> None:
        """Tell the other replicas."""

    async def close(self) -> None: ...


class Alone:
    """One process: nobody else to tell."""

    async def start(self, listener: Listener) -> None:
        return None

    async def publish(self, kind: str, fields: dict[str, str]) -> None:
        return None

    async def close(self) -> None:
        return None


class PostgresBroadcast:
    """``LISTEN``/``NOTIFY`` on the replicas' shared PostgreSQL.

    Args:
        url: the ledger's URL.
        replica: this replica's name, to ignore its own news.
        password: the password, when not in the URL.
    """

    def __init__(self, url: str, replica: str, password: str = "") -> None:
        self.url, self.replica, self.password = url, replica, password
        self._listen: Any = None
        self._publish: Any = None
        self._task: asyncio.Task[None] | None = None
        self.channel = CHANNEL

    async def start(self, listener: Listener) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._hear(listener))

    async def _connect(self) -> None:
        import psycopg
        import psycopg.sql

        password = self.password or None
        self._listen = await psycopg.AsyncConnection.connect(self.url, autocommit=True, password=password)
        self._publish = await psycopg.AsyncConnection.connect(self.url, autocommit=True, password=password)
        schema = (await (await self._listen.execute("SELECT current_schema()")).fetchone())[0]
        # Notifications are the database's, a ledger is a schema of it: a channel of the schema's own (a short name).
        self.channel = f"{CHANNEL}_{hashlib.sha256(schema.encode()).hexdigest()[:16]}"
        await self._listen.execute(psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(self.channel)))

    async def _hear(self, listener: Listener, retry_seconds: float = 1.0) -> None:
        """Hear the others until closed. When the connection is lost, news may have been missed: the listener is
        told ``lost`` (caches start afresh) and the connection is made again."""
        while True:
            try:
                async for note in self._listen.notifies():
                    self._take(listener, note.payload)
            except Exception:
                log.warning("lost the other replicas' news; caches start afresh; reconnecting", exc_info=True)
            listener(LOST, {})
            await self._close_connections()
            while True:
                await asyncio.sleep(retry_seconds)
                try:
                    await self._connect()
                    break
                except Exception as exc:
                    log.warning("cannot hear the other replicas yet: %s", exc)
            listener(LOST, {})  # what was said while reconnecting was not heard either

    def _take(self, listener: Listener, payload: str) -> None:
        try:
            news = json.loads(payload)
            if news.get("from") != self.replica:
                listener(str(news["kind"]), {k: str(v) for k, v in news["fields"].items()})
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("a cache notification could not be read")

    async def publish(self, kind: str, fields: dict[str, str]) -> None:
        if self._publish is None:
            return
        payload = json.dumps({"from": self.replica, "kind": kind, "fields": fields})
        try:
            await self._publish.execute("SELECT pg_notify(%s, %s)", (self.channel, payload))
        except Exception:  # the others learn it from the region in a few seconds anyway (the cache expires)
            log.warning("could not tell the other replicas (%s)", kind, exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close_connections()

    async def _close_connections(self) -> None:
        for conn in (self._listen, self._publish):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._listen = self._publish = None
