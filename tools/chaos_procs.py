"""The processes of a chaos run (``tools/chaos.py``): each sandbox and the hub in their own, on loopback.

Every process is the ``yikatong`` command a user would run, started on free ports (port 0; the address is read
from the line it prints when it listens); its stderr goes to ``<name>.log`` in the run's data folder. The hub is
killed with SIGKILL and started again on the same ports and data folder; a sandbox is never restarted, because
its books live in memory only and a restart would lose them.

The hub is :class:`Hubs`: one process on its own SQLite ledger, or N replicas sharing a PostgreSQL ledger, the
data folder (and so its key files) and one gRPC port (the first replica binds a free one, the others the same;
a hub on PostgreSQL sets SO_REUSEPORT and the kernel spreads connections). A kill takes one replica down
(:func:`choose_victim`) while the others serve on; it comes back on the same ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

YIKATONG = str(Path(sys.executable).parent / "yikatong")
START_SECONDS = 30.0
AUDIT_SECONDS = 300.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)


class StartFailed(RuntimeError):
    """A process did not print that it listens."""


async def _spawn(
    name: str, args: list[str], log: Path, prefix: str
) -> tuple[asyncio.subprocess.Process, list[str], asyncio.Task[None]]:
    """Start ``yikatong ARGS``; wait for its first stdout line, which must start with ``prefix``."""
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(YIKATONG, *args, stdout=asyncio.subprocess.PIPE, stderr=err)
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), START_SECONDS)).decode().strip()
    except TimeoutError:
        line = ""
    if not line.startswith(prefix):
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise StartFailed(f"{name} did not start (printed {line!r}); see {log}")
    return process, line.split(), asyncio.create_task(_copy(process.stdout, log))


async def _copy(stream: asyncio.StreamReader, log: Path) -> None:
    """Keep reading what the process prints, into its log, so its stdout pipe never fills."""
    while chunk := await stream.readline():
        with log.open("ab") as out:
            out.write(chunk)


async def _terminate(process: asyncio.subprocess.Process, seconds: float = 20.0) -> int:
    """SIGTERM, then SIGKILL if it has not exited in ``seconds``; the exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), seconds)
        except TimeoutError:
            process.kill()
    return await process.wait()


async def audit_verify(data_dir: Path, ledger: str | None) -> tuple[int, str]:
    """``yikatong audit verify`` of the hub's ledger (read-only); its exit code and what it printed."""
    args = ["audit", "verify", "--data-dir", str(data_dir)] + (["--ledger", ledger] if ledger else [])
    process = await asyncio.create_subprocess_exec(
        YIKATONG, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), AUDIT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"no verdict in {AUDIT_SECONDS:g} s"
    return await process.wait(), output.decode(errors="replace")


class Sandbox:
    """One region's sandbox process and its admin API (fault knobs, the region's own books)."""

    def __init__(self, region: str, data_dir: Path) -> None:
        self.region, self.data_dir, self.log = region, data_dir, data_dir / f"{region}.log"
        self.address = self.admin_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        args = ["sandbox", "serve", "--region", self.region, "--port", "0", "--admin-port", "0"]
        args += ["--data-dir", str(self.data_dir)]  # its TLS certificate and secrets, from `provision`
        self._process, words, self._reader = await _spawn(self.region, args, self.log, f"{self.region} sandbox ")
        self.address, self.admin_url = words[2], words[4]

    async def stop(self) -> int:
        return await _terminate(self._process) if self._process else 0

    async def _post(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> Any:
        async with http.post(self.admin_url + path, json=body, timeout=HTTP_TIMEOUT) as response:
            response.raise_for_status()
            return await response.json()

    async def publish_to(self, http: aiohttp.ClientSession, hub: str) -> None:
        """Publish card events to the hub (plaintext; the hub runs ``--insecure``)."""
        await self._post(http, "/admin/events", {"hub": hub})

    async def set_faults(self, http: aiohttp.ClientSession, knobs: dict[str, Any]) -> None:
        """Clear every knob, then set ``knobs``."""
        await self._post(http, "/admin/faults", {"clear": True, **knobs})

    async def settlements(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        async with http.get(self.admin_url + "/admin/settlements", timeout=HTTP_TIMEOUT) as response:
            response.raise_for_status()
            return [json.loads(line) for line in (await response.text()).splitlines() if line]

    async def books(self, http: aiohttp.ClientSession, ssn: str) -> dict[str, Any] | None:
        """A person's accumulators and account at the region; None when the region does not insure them."""
        url = self.admin_url + "/admin/accumulators"
        async with http.get(url, params={"social_security_number": ssn}, timeout=HTTP_TIMEOUT) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            found: dict[str, Any] = await response.json()
            return found


class HubProcess:
    """One hub process (``yikatong serve --insecure --dev``) over a data folder; killed and restarted on its ports.

    Args:
        data_dir: the data folder (its keys; its SQLite ledger when ``ledger`` is None); ``<name>.log`` goes there.
        endpoints: region → sandbox address.
        name: the log's name.
        ledger: a ``postgresql://`` URL several replicas share, or None for the data folder's SQLite file.
    """

    def __init__(self, data_dir: Path, endpoints: dict[str, str], name: str = "hub", ledger: str | None = None) -> None:
        self.data_dir, self.endpoints, self.log = data_dir, endpoints, data_dir / f"{name}.log"
        self.name, self.ledger = name, ledger
        self.port = self.admin_port = 0
        self.address = self.admin_url = ""
        self.starts = self.kills = 0
        self.up = False
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    def args(self) -> list[str]:
        """``yikatong`` arguments of this process: free ports the first time, the same ones afterwards."""
        args = ["serve", "--insecure", "--dev", "--data-dir", str(self.data_dir)]  # --dev: the sandboxes' e-card key
        args += ["--ledger", self.ledger] if self.ledger else []
        args += ["--port", str(self.port), "--admin-port", str(self.admin_port)]
        for region, address in self.endpoints.items():
            args += ["--endpoint", f"{region}={address}"]
        return args

    async def start(self, attempts: int = 5) -> None:
        """Start the hub; retried while a port is busy."""
        for attempt in range(attempts):
            try:
                self._process, words, self._reader = await _spawn(self.name, self.args(), self.log, "hub gRPC ")
                break
            except StartFailed:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(1.0)
        self.address, self.admin_url = words[2], words[4]
        self.port, self.admin_port = int(self.address.rsplit(":", 1)[1]), int(self.admin_url.rsplit(":", 1)[1])
        self.starts += 1
        self.up = True

    async def kill(self) -> None:
        """SIGKILL: no drain, no clean ledger close — what a crash or an OOM kill does."""
        assert self._process is not None
        self.up = False
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGKILL)
        await self._process.wait()
        self.kills += 1

    async def stop(self) -> int:
        """SIGTERM (drain, then a clean stop); the exit code."""
        self.up = False
        return await _terminate(self._process) if self._process else 0

    async def outbox_depth(self, http: aiohttp.ClientSession) -> float:
        """``yikatong_outbox_depth`` from ``/metrics``, summed over its samples (region and kind)."""
        async with http.get(self.admin_url + "/metrics", timeout=HTTP_TIMEOUT) as response:
            response.raise_for_status()
            text = await response.text()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(("yikatong_outbox_depth ", "yikatong_outbox_depth{"))
        )


def choose_victim(rng: random.Random, replicas: int) -> int:
    """The replica a kill takes down; the dice are not touched for a single hub, so its runs stay as they were."""
    return rng.randrange(replicas) if replicas > 1 else 0


class Hubs:
    """The hub of a run: one process, or ``count`` replicas on one port sharing the PostgreSQL ``ledger``.

    ``epoch`` moves on every kill of any replica and ``up`` is False while one is down: a call without the hub's
    word that saw either may have been cut (its connection may have gone to the replica killed).
    """

    def __init__(self, data_dir: Path, count: int = 1, ledger: str | None = None) -> None:
        if count > 1 and not ledger:
            raise ValueError("replicas share a PostgreSQL ledger: give its URL")
        names = ["hub"] if count == 1 else [f"hub-{n}" for n in range(count)]
        self.replicas = [HubProcess(data_dir, {}, name, ledger) for name in names]
        self.epoch = 0

    @property
    def address(self) -> str:
        """The one gRPC address every replica serves."""
        return self.replicas[0].address

    @property
    def up(self) -> bool:
        return all(r.up for r in self.replicas)

    @property
    def kills(self) -> int:
        return sum(r.kills for r in self.replicas)

    @property
    def logs(self) -> list[Path]:
        return [r.log for r in self.replicas]

    def point_at(self, endpoints: dict[str, str]) -> None:
        for replica in self.replicas:
            replica.endpoints = endpoints

    async def start(self) -> None:
        """Start every replica that is down; the first on a free port, the others on the same one."""
        for replica in self.replicas:
            if not replica.up:
                replica.port = replica.port or self.replicas[0].port
                await replica.start()

    async def kill(self, victim: int = 0) -> None:
        self.epoch += 1
        await self.replicas[victim].kill()

    async def restart(self, victim: int = 0) -> None:
        await self.replicas[victim].start()

    async def stop(self) -> list[int]:
        """SIGTERM to every replica at once (each drains); their exit codes."""
        return list(await asyncio.gather(*(r.stop() for r in self.replicas)))

    async def outbox_depth(self, http: aiohttp.ClientSession) -> float:
        """The outbox's depth, read from every replica's ``/metrics``.

        Each replica's ``yikatong_outbox_depth`` is the whole shared outbox (``Outbox.refresh_gauges`` counts the
        ledger's backlog, not the items that replica claimed), so the sum would count it N times. Each gauge is as
        of that replica's last delivery round, so they may differ by a round; the largest is taken, so the run is
        called drained only once no replica still sees an item."""
        return max([await r.outbox_depth(http) for r in self.replicas if r.up], default=0.0)
