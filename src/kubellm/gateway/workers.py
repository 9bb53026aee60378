"""``kubellm gateway --workers N``: N gateway processes sharing one port.

Each worker is a whole gateway (its own pools, schedulers, probes, config watcher and
KV-event subscriptions: the engines publish to every subscriber, so every worker's
precise-prefix index sees the same events) listening on the port with ``SO_REUSEPORT``;
the kernel spreads connections over them. A supervisor process (listening on nothing)
starts them, restarts one that dies, and on SIGTERM/SIGINT passes the signal on and waits
for every worker's drain. A replacement that exits before it listens (the config file on
disk became invalid since the others loaded theirs, say) is started again after 1, 2, 4 ...
up to 30 s, not at once: a crash loop would spawn one process a second, each logging why.

Tenants' limits: the supervisor makes one table of per-tenant buckets in shared memory
(:class:`~kubellm.gateway.limits.SharedTable`, an anonymous memfd) and hands it to every
worker it starts, restarted ones too; each worker admits and charges against it, so a
tenant's limits hold for the whole gateway. It goes when the last process holding it exits.

Metrics: each worker also serves its app on a Unix socket in a private directory;
``/metrics`` on any worker merges its own exposition with its peers' (``?scope=worker``
asks for one worker's alone). Counters and histograms are summed, as are the gauges
(requests in flight, queued, pending); ``kubellm_endpoint_healthy`` takes the maximum. Any
other gauge is one worker's own estimate (the latency learner's coefficients and error
quantiles): a sum of those means nothing, so each worker's is kept, labelled ``worker``.
No per-request cost: the merge happens at scrape time only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import operator
import os
import queue
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from kubellm.gateway.errors import GatewayError
from kubellm.gateway.limits import SharedTable, TableHandle

log = logging.getLogger("kubellm.gateway")

WORKER_SCOPE = "worker"  # /metrics?scope=worker: this worker's series only
_MAX_GAUGES = frozenset({"kubellm_endpoint_healthy"})
_SUM_GAUGES = frozenset({"kubellm_requests_in_flight", "kubellm_requests_queued", "kubellm_gateway_pending_requests",
                         "kubellm_gateway_worker"})
_PEER_TIMEOUT_S = 2.0
_READY_TIMEOUT_S = 60.0
_RESTART_BACKOFF_S = 1.0  # the wait before restarting a worker that exited before it listened; doubles
_RESTART_BACKOFF_MAX_S = 30.0


class WorkerStartError(Exception):
    """A worker exited before it listened (its own log line says why)."""


@dataclass(frozen=True)
class WorkerSlot:
    """Where worker *index* of *count* is reachable by its peers."""

    index: int
    count: int
    peers_dir: Path
    limits: TableHandle | None = None  # the tenants' buckets every worker shares

    def socket_path(self, index: int) -> Path:
        return self.peers_dir / f"worker-{index}.sock"

    def peers(self) -> list[Path]:
        return [self.socket_path(i) for i in range(self.count) if i != self.index]


# -- metrics across workers ----------------------------------------------------------------------
def register_worker(registry: CollectorRegistry, slot: WorkerSlot) -> None:
    """``kubellm_gateway_worker{worker="i"} 1`` in worker *i*'s own series: the merged
    ``/metrics`` lists every worker that answered the scrape."""
    Gauge("kubellm_gateway_worker", "1 for each gateway worker process (--workers) whose series are included.",
          ["worker"], registry=registry).labels(str(slot.index)).set(1)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _sample_line(name: str, labels: tuple[tuple[str, str], ...], value: float) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{name}{{{inner}}} {value!r}\n" if labels else f"{name} {value!r}\n"


def merge_expositions(texts: Iterable[str]) -> str:
    """One Prometheus text exposition from several workers' (same metric names).

    Samples with the same name and labels are summed, except ``kubellm_endpoint_healthy``
    (maximum: healthy if any worker's probe saw it healthy) and the gauges not in
    ``_SUM_GAUGES`` (each worker's kept, with a ``worker`` label); the ``*_created`` series of
    single processes are left out (there is no one creation time across workers).
    """
    families: dict[str, tuple[str, str]] = {}  # name -> (type, help)
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for position, text in enumerate(texts):
        parsed = [f for f in text_string_to_metric_families(text) if not f.name.endswith("_created")]
        worker = _worker_of(parsed, position)
        for fam in parsed:
            families.setdefault(fam.name, (fam.type, fam.documentation))
            merged = values.setdefault(fam.name, {})
            combine: Callable[[float, float], float] = max if fam.name in _MAX_GAUGES else operator.add
            own = {"worker": worker} if fam.type == "gauge" and fam.name not in _SUM_GAUGES | _MAX_GAUGES else {}
            for s in fam.samples:
                if s.name.endswith("_created"):
                    continue
                key = (s.name, tuple(sorted({**s.labels, **own}.items())))
                merged[key] = combine(merged[key], s.value) if key in merged else s.value
    out: list[str] = []
    for name, (typ, doc) in families.items():
        exposed = f"{name}_total" if typ == "counter" else name
        out.append(f"# HELP {exposed} {doc.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}\n")
        out.append(f"# TYPE {exposed} {typ}\n")
        out.extend(_sample_line(sname, labels, v) for (sname, labels), v in values[name].items())
    return "".join(out)


def _worker_of(families: Sequence[Metric], position: int) -> str:
    """The ``worker`` label of an exposition's ``kubellm_gateway_worker`` series (else its position)."""
    for fam in families:
        if fam.name == "kubellm_gateway_worker" and fam.samples:
            return str(fam.samples[0].labels["worker"])
    return str(position)


class PeerMetrics:
    """Fetches the other workers' own expositions over their Unix sockets."""

    def __init__(self, peers: Sequence[Path]) -> None:
        self._peers = list(peers)
        self._sessions: dict[Path, aiohttp.ClientSession] = {}

    def _session(self, path: Path) -> aiohttp.ClientSession:
        session = self._sessions.get(path)
        if session is None or session.closed:
            session = self._sessions[path] = aiohttp.ClientSession(
                connector=aiohttp.UnixConnector(path=str(path)),
                timeout=aiohttp.ClientTimeout(total=_PEER_TIMEOUT_S))
        return session

    async def _fetch(self, path: Path) -> str | None:
        try:
            async with self._session(path).get(f"http://worker/metrics?scope={WORKER_SCOPE}") as resp:
                return await resp.text() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, OSError):
            return None  # a worker being restarted: its series are missing from this scrape

    async def merged(self, own: str) -> str:
        peers = await asyncio.gather(*(self._fetch(p) for p in self._peers))
        return merge_expositions([own, *(t for t in peers if t is not None)])

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()


# -- the supervisor ------------------------------------------------------------------------------
def reserve_port(host: str, port: int) -> socket.socket:
    """A bound, non-listening ``SO_REUSEPORT`` socket: resolves port 0 and keeps the port ours
    (the workers bind the same port; only listening sockets receive connections)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM if the supervisor itself is killed (never an orphan)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _worker_main(config_path: Path, host: str, port: int, slot: WorkerSlot, log_level: str,
                 ready: Any, server: str | None = None) -> None:
    _die_with_parent()
    logging.basicConfig(level=log_level.upper(), format=f"[worker {slot.index}] %(message)s")
    import uvloop

    from kubellm.gateway.serve import serve

    async def main() -> None:
        listening = asyncio.Event()
        task = asyncio.ensure_future(serve(config_path, host, port, listening, slot=slot, announce=False,
                                           server=server))
        waiter = asyncio.ensure_future(listening.wait())
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        if listening.is_set():
            ready.put(slot.index)
        else:
            waiter.cancel()
        await task

    try:
        uvloop.run(main())
    except GatewayError as exc:  # an invalid config: one line (the supervisor says what it does next)
        log.error("cannot start: %s", exc.message)
        raise SystemExit(2) from None


class Supervisor:
    """Starts *count* workers, restarts one that dies, drains them all on SIGTERM/SIGINT."""

    def __init__(self, config_path: Path, host: str, port: int, count: int, *, log_level: str,
                 drain_s: float, server: str | None = None) -> None:
        self.config_path, self.host, self.port, self.count = config_path, host, port, count
        self.log_level, self.drain_s, self.server = log_level, drain_s, server
        self._ctx = multiprocessing.get_context("spawn")
        self._ready: Any = self._ctx.Queue()
        self.workers: dict[int, BaseProcess] = {}
        self._stopping = False
        self._listening: set[int] = set()  # workers that said they listen, since their start
        self._failed_starts: dict[int, int] = {}  # per worker: replacements in a row that never listened
        self._due: dict[int, float] = {}  # restarts waiting out their backoff: when (monotonic)

    def _start(self, slot: WorkerSlot) -> BaseProcess:
        with contextlib.suppress(FileNotFoundError):
            slot.socket_path(slot.index).unlink()  # a killed worker's stale socket
        proc = self._ctx.Process(target=_worker_main, name=f"kubellm-gateway-worker-{slot.index}", args=(
            self.config_path, self.host, self.port, slot, self.log_level, self._ready, self.server), daemon=False)
        proc.start()
        self.workers[slot.index] = proc
        self._listening.discard(slot.index)
        return proc

    def _await_ready(self, expected: int) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        seen = 0
        while seen < expected:
            dead = [i for i, p in self.workers.items() if not p.is_alive()]
            if dead:
                raise WorkerStartError(f"gateway worker {dead[0]} exited before listening (see its log above)")
            try:
                self._listening.add(self._ready.get(timeout=0.2))
                seen += 1
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise WorkerStartError(f"gateway workers not listening after {_READY_TIMEOUT_S:g}s") from None

    def _on_signal(self, signum: int, frame: object) -> None:
        """Pass SIGTERM/SIGINT on at once (every worker starts draining now); run() then waits."""
        self._stopping = True
        for proc in self.workers.values():
            if proc.pid is not None and proc.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)

    def run(self) -> None:
        reserved = reserve_port(self.host, self.port)
        port = reserved.getsockname()[1]
        self.port = port
        limits = SharedTable()
        with tempfile.TemporaryDirectory(prefix="kubellm-gateway-") as peers_dir, reserved, \
                contextlib.closing(limits):
            slots = [WorkerSlot(i, self.count, Path(peers_dir), limits.handle()) for i in range(self.count)]
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
            try:
                for slot in slots:
                    self._start(slot)
                self._await_ready(self.count)
                shown = f"[{self.host}]" if ":" in self.host else self.host
                print(f"kubellm gateway ({self.count} workers) listening on http://{shown}:{port}", flush=True)
                self._watch(slots)
            finally:
                self._stop_all()

    def _watch(self, slots: list[WorkerSlot]) -> None:
        while not self._stopping:
            for index, due in list(self._due.items()):
                if time.monotonic() >= due:
                    del self._due[index]
                    self._start(slots[index])
            sentinels = {p.sentinel: i for i, p in self.workers.items() if i not in self._due}
            for sentinel in multiprocessing.connection.wait(list(sentinels), timeout=0.5):
                index = sentinels[sentinel]  # type: ignore[index]
                if self._stopping:
                    break
                dead = self.workers[index]
                dead.join(5)  # reap it: its sentinel fires as it exits, a moment before it can be waited for
                delay = self._restart_delay(index)
                log.warning("gateway worker %d exited (code %s); starting a new one%s", index, dead.exitcode,
                            f" in {delay:g}s (it exited before listening, {self._failed_starts[index]} "
                            "time(s) in a row)" if delay else "")
                self._due[index] = time.monotonic() + delay

    def _restart_delay(self, index: int) -> float:
        """0 for a worker that was listening; else a backoff that doubles with each start in a
        row that never listened."""
        with contextlib.suppress(queue.Empty):
            while True:
                self._listening.add(self._ready.get_nowait())
        if index in self._listening:
            self._failed_starts[index] = 0
            return 0.0
        failed = self._failed_starts[index] = self._failed_starts.get(index, 0) + 1
        return min(_RESTART_BACKOFF_MAX_S, _RESTART_BACKOFF_S * 2.0 ** (failed - 1))

    def _stop_all(self) -> None:
        for proc in self.workers.values():
            if proc.is_alive() and proc.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.drain_s + 5.0
        for proc in self.workers.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("gateway worker %s did not stop in time; killing it", proc.name)
                proc.kill()
                proc.join()
