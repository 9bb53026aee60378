"""Progress reporting: a rich bar on a terminal, JSON lines (the loader Job's log) otherwise."""

from __future__ import annotations

import json
import threading
from typing import IO, Any, Protocol

from kubellm.pull.clock import Clock


class Progress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def event(self, name: str, **fields: Any) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, total: int, done: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def event(self, name: str, **fields: Any) -> None:
        pass

    def finish(self) -> None:
        pass


class WarningsOnly(NullProgress):
    """No progress, but warnings still reach the user (``--progress none``)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def event(self, name: str, **fields: Any) -> None:
        if name == "warning":
            print(f"warning: {fields.get('message', '')}", file=self._stream, flush=True)


def progress_record(total: int, done: int, rate: float) -> dict[str, Any]:
    """One progress line: bytes so far, rate over the last interval and the ETA it implies."""
    eta = (total - done) / rate if rate > 0 else None
    return {
        "event": "progress",
        "bytes": done,
        "total": total,
        "percent": round(100.0 * done / total, 1) if total else 100.0,
        "rate_bytes_per_s": round(rate),
        "eta_s": round(eta, 1) if eta is not None else None,
    }


class JsonLinesProgress:
    """Writes a JSON line every *interval_s* from a ticker thread, and one for each event."""

    def __init__(self, stream: IO[str], clock: Clock, interval_s: float = 5.0) -> None:
        self._stream, self._clock, self._interval = stream, clock, interval_s
        self._lock = threading.Lock()
        self._total = self._done = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self, total: int, done: int) -> None:
        self._total, self._done = total, done
        self.event("start", total=total, already_present=done)
        self._ticker = threading.Thread(target=self._tick, name="pull-progress", daemon=True)
        self._ticker.start()

    def advance(self, nbytes: int) -> None:
        with self._lock:
            self._done += nbytes

    def event(self, name: str, **fields: Any) -> None:
        self._write({"event": name, **fields})

    def finish(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        self._emit(0.0)

    def _tick(self) -> None:
        last_t, last_b = self._clock.monotonic(), self._done
        while not self._stop.wait(self._interval):
            now, done = self._clock.monotonic(), self._done
            self._emit((done - last_b) / max(now - last_t, 1e-9))
            last_t, last_b = now, done

    def _emit(self, rate: float) -> None:
        self._write(progress_record(self._total, self._done, rate))

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock:
            self._stream.write(json.dumps(record) + "\n")
            self._stream.flush()


class RichProgress:
    """A transfer bar for people at a terminal."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn, DownloadColumn, Progress as Bar, TextColumn, TimeRemainingColumn, TransferSpeedColumn,
        )  # fmt: skip

        self._bar = Bar(
            TextColumn("pull"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()
        )
        self._task = self._bar.add_task("pull", total=0)

    def start(self, total: int, done: int) -> None:
        self._bar.update(self._task, total=total, completed=done)
        self._bar.start()

    def advance(self, nbytes: int) -> None:
        self._bar.advance(self._task, nbytes)

    def event(self, name: str, **fields: Any) -> None:
        if name != "file_done":
            self._bar.console.log(name, *(f"{k}={v}" for k, v in fields.items()))

    def finish(self) -> None:
        self._bar.stop()
