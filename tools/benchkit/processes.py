"""The processes a benchmark runs against, each on its own: the three regions' sandboxes, the hub, the pass-through
proxy, and hub replicas sharing a PostgreSQL ledger; and what the load generator reads of them while it runs
(``/proc`` CPU time and RSS, the hubs' metrics).

Each is started with the command a user would type, on free ports; its first line of output says where it listens.
Its standard error goes to ``<data_dir>/<name>.log``, kept after the run.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from regions.config import load_regions
from regions.provisioning import provision

REPO = Path(__file__).resolve().parents[2]
YIKATONG = str(Path(sys.executable).parent / "yikatong")
PASSTHROUGH = str(REPO / "tools" / "passthrough.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_SECONDS = 60.0


class StartError(RuntimeError):
    """A process did not come up; the message names it and its log."""


@dataclass
class Process:
    """A child process the benchmark started, and what it printed on its first line."""

    name: str
    proc: asyncio.subprocess.Process
    first_line: str
    log: Path
    drain: asyncio.Task[None] | None = None  # reads (and drops) the rest of its output

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far, all its threads (``/proc/<pid>/stat``)."""
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        """Resident set size now (``VmRSS`` of ``/proc/<pid>/status``), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise StartError(f"{self.name} (pid {self.pid}) reports no VmRSS: has it exited? see {self.log}")

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGINT (a graceful stop), then SIGKILL when it is not gone within ``timeout``."""
        if self.proc.returncode is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, from ``/proc/<pid>/stat`` (fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # the command name, in parentheses, may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent so far, every CPU, every process (``/proc/stat``: all but idle and
    iowait; steal counts, as time this machine could not have)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


async def start(name: str, argv: Sequence[str], log_dir: Path) -> Process:
    """Start ``argv`` and wait for its first line of output (where it listens).

    Raises:
        StartError: it exited, or printed nothing within a minute.
    """
    log = log_dir / f"{name}.log"
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            cwd=REPO,
        )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), START_SECONDS)).decode().strip()
    except TimeoutError:
        proc.kill()
        raise StartError(f"{name} printed nothing in {START_SECONDS:.0f} s; see {log}") from None
    if not line:
        await proc.wait()
        raise StartError(f"{name} exited with {proc.returncode} before listening; see {log}")
    # Nothing more is read from stdout; draining it keeps a chatty process from blocking on a full pipe.
    return Process(name, proc, line, log, asyncio.get_running_loop().create_task(_drain(proc.stdout)))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


def _word_after(line: str, marker: str) -> str:
    words = line.split()
    try:
        return words[words.index(marker) + 1]
    except (ValueError, IndexError):
        raise StartError(f"cannot read the address after {marker!r} in {line!r}") from None


@dataclass
class Fleet:
    """Everything a benchmark calls: sandboxes by region, the hub, the pass-through proxy.

    Attributes:
        data_dir: the hub's data directory, the PKI in ``pki/``, every process's log.
        sandboxes: region id → the sandbox process; ``regions`` maps region id → its service address.
        hub: the hub process; ``hub_address`` its gRPC address and ``hub_admin`` its admin URL.
        proxy: the pass-through proxy in front of ``proxy_region``'s sandbox, at ``proxy_address``.
    """

    data_dir: Path
    sandboxes: dict[str, Process] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)
    hub: Process | None = None
    hub_address: str = ""
    hub_admin: str = ""
    proxy: Process | None = None
    proxy_address: str = ""

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    async def start(self, region_ids: Sequence[str], proxy_region: str) -> None:
        """PKI, sandboxes (at once), then the hub against them and the proxy in front of ``proxy_region``."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pki = await asyncio.create_subprocess_exec(
            YIKATONG, "pki", "init", "--dir", str(self.pki), stdout=asyncio.subprocess.DEVNULL, cwd=REPO
        )
        if await pki.wait() != 0:
            raise StartError(f"yikatong pki init --dir {self.pki} failed")
        # What `yikatong up` makes before anything starts: region-link certificates, sandbox secrets, e-card key.
        provision(self.data_dir, load_regions())
        sandboxes = await self._start_all(
            {
                f"sandbox-{r}": [YIKATONG, "sandbox", "serve", "--region", r, "--port", "0", "--admin-port", "0",
                                 "--data-dir", str(self.data_dir)]
                for r in region_ids
            }
        )  # fmt: skip
        for region, process in zip(region_ids, sandboxes, strict=True):
            self.sandboxes[region] = process
            self.regions[region] = _word_after(process.first_line, "sandbox")
        hub, proxy = await self._start_all(
            {
                "hub": self._hub_argv(0),
                "passthrough": [sys.executable, PASSTHROUGH, "--target", self.regions[proxy_region], "--pki",
                                str(self.pki)],
            }
        )  # fmt: skip
        self.hub, self.proxy = hub, proxy
        self.hub_address = _word_after(hub.first_line, "gRPC")
        self.hub_admin = _word_after(hub.first_line, "admin")
        self.proxy_address = _word_after(proxy.first_line, "gRPC")
        await self.wait_ready()

    def _hub_argv(self, port: int, ledger: str = "") -> list[str]:
        """``yikatong serve`` against the sandboxes, on this data folder (its PKI, keys and, without ``ledger``,
        its SQLite ledger)."""
        endpoints = [f"--endpoint={r}={address}" for r, address in self.regions.items()]
        ledger_args = ["--ledger", ledger] if ledger else []
        return [YIKATONG, "serve", "--data-dir", str(self.data_dir), "--port", str(port), "--admin-port", "0",
                "--dev", *ledger_args, *endpoints]  # fmt: skip

    async def start_replicas(self, name: str, count: int, ledger: str) -> Replicas:
        """``count`` hubs on one port sharing the PostgreSQL ``ledger`` and this data folder (its keys must be
        theirs), as ``yikatong up --replicas`` runs them; returned once every one is ready.

        The hub binds with SO_REUSEPORT when its ledger is PostgreSQL, so the kernel hands each new connection to
        one of them. Their logs are ``<name>-<i>.log``.
        """
        port = _free_port()
        started = await self._start_all({f"{name}-{i}": self._hub_argv(port, ledger) for i in range(count)})
        replicas = Replicas(started, _word_after(started[0].first_line, "gRPC"))
        try:
            await asyncio.gather(
                *(self.wait_ready(admin, p.log) for p, admin in zip(started, replicas.admins, strict=True))
            )
        except BaseException:
            await replicas.stop()
            raise
        return replicas

    async def _start_all(self, commands: dict[str, list[str]]) -> list[Process]:
        """Start the commands at once; when one fails, stop those that came up and raise its error."""
        started = await asyncio.gather(
            *(start(name, argv, self.data_dir) for name, argv in commands.items()), return_exceptions=True
        )
        up = [p for p in started if isinstance(p, Process)]
        failed = [e for e in started if isinstance(e, BaseException)]
        if failed:
            await asyncio.gather(*(p.stop() for p in up))
            raise failed[0]
        return up

    async def wait_ready(self, admin: str = "", log: Path | None = None, timeout: float = START_SECONDS) -> None:
        """Until the hub's ``/readyz`` (at ``admin``, the fleet's hub by default) answers 200: ledger open, every
        region probed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await asyncio.to_thread(_get, f"{admin or self.hub_admin}/readyz")
                return
            except OSError:
                if asyncio.get_running_loop().time() > deadline:
                    log = log or self.data_dir / "hub.log"
                    raise StartError(f"the hub is not ready after {timeout:.0f} s; see {log}") from None
                await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Every process, the hub and proxy first (callers before the called)."""
        for process in (self.hub, self.proxy):
            if process is not None:
                await process.stop()
        await asyncio.gather(*(p.stop() for p in self.sandboxes.values()))


@dataclass
class Replicas:
    """Hub processes sharing one port and one PostgreSQL ledger.

    Attributes:
        processes: one per replica; ``admins`` their admin URLs, in the same order.
        address: the gRPC address they share.
    """

    processes: list[Process]
    address: str

    @property
    def admins(self) -> list[str]:
        return [_word_after(p.first_line, "admin") for p in self.processes]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    async def stop(self) -> None:
        """All at once: each drains for a second before it stops."""
        await asyncio.gather(*(p.stop() for p in self.processes))


async def metrics_at(admin: str) -> dict[str, float]:
    """A hub's ``/metrics`` samples, summed over label sets per name plus ``name{label="value"}`` entries."""
    return parse_metrics(await asyncio.to_thread(_get, f"{admin}/metrics"))


def _free_port() -> int:
    """A port free now on loopback, for processes that must all be told the same one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        body: bytes = answer.read()
    return body.decode()


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{.*\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition as ``{name: sum over label sets}`` and ``{'name{label="value"}': sum}`` for
    each single label, so ``yikatong_settlements_total{outcome="settled"}`` sums every region pair."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None or line.startswith("#"):
            continue
        name, value = match["name"], float(match["value"])
        samples[name] = samples.get(name, 0.0) + value
        for label, label_value in _LABEL.findall(match["labels"] or ""):
            key = f'{name}{{{label}="{label_value}"}}'
            samples[key] = samples.get(key, 0.0) + value
    return samples
