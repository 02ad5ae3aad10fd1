"""Where rows go: the recorder on the master (or the single process), and the
forwarder that ships a worker's rows to the master.

The hot path only appends to a list. A flush greenlet hands each batch to the
sinks in a native thread (sqlite3 and file writes would otherwise block the
gevent loop), one batch at a time, so rows are written in the order they came.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import gevent
from gevent.event import Event

from .rows import STATUS_DROPPED, RequestRecord

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_SEC = 0.25
FORWARD_INTERVAL_SEC = 0.25
FORWARD_MAX_ROWS = 2000


class Sink(Protocol):
    def write(self, rows: Sequence[RequestRecord]) -> None: ...

    def close(self) -> None: ...


class Recorder:
    """Collects every row of a run and writes them to the sinks in batches."""

    def __init__(
        self, sinks: dict[str, Sink], on_close: Callable[[], None] | None = None
    ) -> None:
        self._sinks = dict(sinks)
        self._failed: set[str] = set()
        self._pending: list[RequestRecord] = []
        self._write_lock = threading.Lock()
        self._greenlet: gevent.Greenlet | None = None
        self._stop = Event()
        self._on_close = on_close
        self.closed = False
        self.rows_written = 0
        self.calls = 0
        self.dropped = 0
        self.dropped_by_scenario: dict[str, int] = {}

    # hot path
    def add(self, row: RequestRecord) -> None:
        self._count(row)
        self._pending.append(row)

    def add_many(self, rows: Iterable[RequestRecord]) -> None:
        for row in rows:
            self.add(row)

    def _count(self, row: RequestRecord) -> None:
        if row.status == STATUS_DROPPED:
            self.dropped += 1
            self.dropped_by_scenario[row.scenario] = (
                self.dropped_by_scenario.get(row.scenario, 0) + 1
            )
        else:
            self.calls += 1

    # flushing
    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._flush_loop)

    def _flush_loop(self) -> None:
        # Never killed: a batch taken from the queue must reach the sinks.
        while not self._stop.wait(FLUSH_INTERVAL_SEC):
            self.flush()

    def flush(self) -> None:
        """Write what is pending, off the gevent loop; returns when written."""
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        gevent.get_hub().threadpool.apply(self._write, (batch,))

    def _write(self, batch: list[RequestRecord]) -> None:
        with self._write_lock:
            for name, sink in self._sinks.items():
                if name in self._failed:
                    continue
                try:
                    sink.write(batch)
                except Exception as exc:
                    self._failed.add(name)
                    logger.error(
                        "Could not write to the %s output (%s); later rows go to the other outputs only.",
                        name,
                        exc,
                    )
            self.rows_written += len(batch)

    def close(self) -> None:
        """Write everything still pending and close the sinks (idempotent)."""
        if self.closed:
            return
        self._stop.set()
        if self._greenlet is not None and self._greenlet is not gevent.getcurrent():
            self._greenlet.join()
        self._greenlet = None
        self.flush()
        self.closed = True
        if self._on_close is not None:
            try:
                self._on_close()
            except Exception as exc:
                logger.error("Could not finish the run's records: %s", exc)
        for name, sink in self._sinks.items():
            try:
                sink.close()
            except Exception as exc:
                logger.error("Could not close the %s output: %s", name, exc)

    def close_without_gevent(self) -> None:
        """Last resort at interpreter exit: write synchronously, no hub needed."""
        if self.closed:
            return
        batch, self._pending = self._pending, []
        self._write(batch)
        self.closed = True
        if self._on_close is not None:
            try:
                self._on_close()
            except Exception:
                pass
        for sink in self._sinks.values():
            try:
                sink.close()
            except Exception:
                pass


class Forwarder:
    """On a worker: batches rows and sends them to the master as messages."""

    MESSAGE = "hyperfaas_rows"

    def __init__(
        self, send: Callable[[str, dict[str, Any]], None], worker: str
    ) -> None:
        self._send = send
        self._worker = worker
        self._pending: list[tuple[Any, ...]] = []
        self._seq = 0
        self._greenlet: gevent.Greenlet | None = None
        self._stop = Event()
        self.sent_rows = 0

    def add(self, row: RequestRecord) -> None:
        self._pending.append(row.as_tuple())

    def start(self) -> None:
        if self._greenlet is None:
            self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        # Never killed: rows taken from the queue must be sent.
        while not self._stop.wait(FORWARD_INTERVAL_SEC):
            self.flush()

    def flush(self, final: bool = False) -> None:
        """Send pending rows (in chunks); with final=True also say this was the last."""
        while self._pending or final:
            chunk = self._pending[:FORWARD_MAX_ROWS]
            del self._pending[: len(chunk)]
            last = final and not self._pending
            self._seq += 1
            self._send(
                self.MESSAGE,
                {
                    "worker": self._worker,
                    "seq": self._seq,
                    "rows": chunk,
                    "final": last,
                },
            )
            self.sent_rows += len(chunk)
            if last:
                break

    def stop(self) -> None:
        self._stop.set()
        if self._greenlet is not None and self._greenlet is not gevent.getcurrent():
            self._greenlet.join()
        self._greenlet = None
