"""The SQLite sink: runs, functions, planned scenarios and every call.

The tables are those of ``docs/schema.md`` (``SCHEMA_SQL`` below is the same
text); ``PRAGMA user_version`` holds
``SCHEMA_VERSION``. One database may hold
many runs, told apart by ``run_id``. Calls go to ``metrics``, whose first
columns keep the names and meanings of the k6 generator's table; planned calls
that were dropped go to ``dropped``.

``SqliteSink`` is a plain synchronous object: it may be created on one thread
and used from another, but calls must not overlap. Every write is one
transaction, so a failed batch leaves nothing behind and may be sent again;
rows already stored are ignored by ``(run_id, request_id)``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from locust_hyperfaas.exceptions import SinkError
from locust_hyperfaas.recording.rows import STATUS_DROPPED, STATUS_OK, RequestRecord

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
GRPC_SERVICE = "leaf.Leaf"
BUSY_TIMEOUT_MS = 5000
RUN_STATUSES = ("running", "finished", "stopped", "failed", "imported")

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id          TEXT PRIMARY KEY,   -- e.g. 20261204T153000Z-seed42-1a2b
    seed            INTEGER,
    started_ns      INTEGER NOT NULL,
    ended_ns        INTEGER,            -- NULL while running
    started_at      TEXT NOT NULL,      -- ISO 8601 UTC
    ended_at        TEXT,
    status          TEXT NOT NULL,      -- running|finished|stopped|failed|imported
    command_line    TEXT,               -- the Locust command line (or import-k6 ...)
    configuration   TEXT,               -- JSON: every setting in effect
    plan            TEXT,               -- JSON: generated_scenarios.json content
    target          TEXT,               -- leaf address host:port
    plugin_version  TEXT,
    locust_version  TEXT,
    source          TEXT NOT NULL DEFAULT 'locust'   -- locust | k6
);

CREATE TABLE IF NOT EXISTS functions (
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,       -- echo, bfs, thumbnailer
    function_id  TEXT NOT NULL,
    image_tag    TEXT NOT NULL,
    memory_bytes INTEGER,
    cpu_period   INTEGER,
    cpu_quota    INTEGER,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE IF NOT EXISTS function_images (
    function_id TEXT PRIMARY KEY,
    image_tag   TEXT NOT NULL
);

-- one row per call that was sent (any outcome); dropped calls are in `dropped`
CREATE TABLE IF NOT EXISTS metrics (
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id                 TEXT NOT NULL,
    -- columns of the k6 generator's table, same names and meanings:
    timestamp              REAL,     -- Unix seconds (fractional) the call left
    scenario               TEXT,
    service                TEXT,     -- gRPC service, 'leaf.Leaf', as k6 tagged it
    image_tag              TEXT,
    instance_id            TEXT,
    request_id             TEXT NOT NULL,
    grpc_req_duration      REAL,     -- ms, client-side round trip
    callqueuedtimestamp    INTEGER,  -- Unix ns (trailer)
    gotresponsetimestamp   INTEGER,  -- Unix ns (trailer)
    data_sent              INTEGER,  -- bytes of request payload
    data_received          INTEGER,  -- bytes of response payload
    iteration_duration     REAL,     -- ms, planned instant to response
    proto                  TEXT,     -- 'grpc'
    subproto               TEXT,     -- 'unary'
    group_name             TEXT,     -- '' (k6 group)
    extra_tags             TEXT,     -- JSON object or ''
    created_at             TEXT DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    -- added by locust-hyperfaas:
    function               TEXT,
    function_id            TEXT,
    status                 TEXT,     -- gRPC code name: OK, UNAVAILABLE, ..., CANCELLED
    error                  TEXT,
    scheduled_ns           INTEGER,  -- planned instant
    sent_ns                INTEGER,  -- actual send
    lateness_ms            REAL,
    worker                 TEXT,
    function_processing_ns INTEGER,
    leaf_got_request_ns    INTEGER,
    leaf_scheduled_call_ns INTEGER,
    UNIQUE (run_id, request_id)
);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id, function, scenario);

CREATE TABLE IF NOT EXISTS dropped (
    run_id       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    function     TEXT,
    function_id  TEXT,
    image_tag    TEXT,
    scenario     TEXT,
    scheduled_ns INTEGER,
    worker       TEXT,
    PRIMARY KEY (run_id, request_id)
);

-- planned calls per scenario, written at run start from the plan
CREATE TABLE IF NOT EXISTS scenarios (
    run_id        TEXT NOT NULL,
    name          TEXT NOT NULL,
    function      TEXT NOT NULL,
    image_tag     TEXT,
    executor      TEXT,
    start_ns      INTEGER,  -- Unix ns the scenario starts (plan start + startTime)
    duration_ms   INTEGER,
    rate          REAL,     -- calls/s (constant) or NULL
    start_rate    REAL,     -- calls/s (ramping) or NULL
    target_rate   REAL,     -- calls/s at the end of the last stage (ramping)
    planned_calls INTEGER,
    preallocated_vus INTEGER,
    max_vus       INTEGER,
    PRIMARY KEY (run_id, name)
);
"""

_METRICS_COLUMNS = (
    "run_id",
    "timestamp",
    "scenario",
    "service",
    "image_tag",
    "instance_id",
    "request_id",
    "grpc_req_duration",
    "callqueuedtimestamp",
    "gotresponsetimestamp",
    "data_sent",
    "data_received",
    "iteration_duration",
    "proto",
    "subproto",
    "group_name",
    "extra_tags",
    "function",
    "function_id",
    "status",
    "error",
    "scheduled_ns",
    "sent_ns",
    "lateness_ms",
    "worker",
    "function_processing_ns",
    "leaf_got_request_ns",
    "leaf_scheduled_call_ns",
)
_DROPPED_COLUMNS = (
    "run_id",
    "request_id",
    "function",
    "function_id",
    "image_tag",
    "scenario",
    "scheduled_ns",
    "worker",
)
_SCENARIO_COLUMNS = (
    "run_id",
    "name",
    "function",
    "image_tag",
    "executor",
    "start_ns",
    "duration_ms",
    "rate",
    "start_rate",
    "target_rate",
    "planned_calls",
    "preallocated_vus",
    "max_vus",
)


def _insert(verb: str, table: str, columns: Sequence[str], tail: str = "") -> str:
    marks = ", ".join("?" * len(columns))
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"


# Only a repeated (run_id, request_id) is skipped; other violations still fail,
# where INSERT OR IGNORE would silently drop a row lacking its request id.
_SKIP_REPEATS = " ON CONFLICT (run_id, request_id) DO NOTHING"
_INSERT_METRICS = _insert("INSERT", "metrics", _METRICS_COLUMNS, _SKIP_REPEATS)
_INSERT_DROPPED = _insert("INSERT", "dropped", _DROPPED_COLUMNS, _SKIP_REPEATS)
_INSERT_SCENARIO = _insert("INSERT OR REPLACE", "scenarios", _SCENARIO_COLUMNS)
_INSERT_FUNCTION = (
    "INSERT OR REPLACE INTO functions (run_id, name, function_id, image_tag,"
    " memory_bytes, cpu_period, cpu_quota) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_FUNCTION_IMAGE = (
    "INSERT INTO function_images (function_id, image_tag) VALUES (?, ?)"
    " ON CONFLICT (function_id) DO UPDATE SET image_tag = excluded.image_tag"
)
_INSERT_RUN = (
    "INSERT INTO runs (run_id, seed, started_ns, started_at, status, command_line,"
    " configuration, plan, target, plugin_version, locust_version, source)"
    " VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What is known about a run when it starts (one row of ``runs``)."""

    run_id: str
    seed: int | None
    started_ns: int
    command_line: str | None
    configuration: Mapping[str, Any] | None
    plan: Mapping[str, Any] | None
    target: str | None
    plugin_version: str | None
    locust_version: str | None
    source: str = "locust"


@dataclass(frozen=True, slots=True)
class FunctionRow:
    """A function created for a run (one row of ``functions``)."""

    name: str
    function_id: str
    image_tag: str
    memory_bytes: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None


@dataclass(frozen=True, slots=True)
class ScenarioRow:
    """A planned scenario of a run (one row of ``scenarios``, units there)."""

    name: str
    function: str
    image_tag: str | None = None
    executor: str | None = None
    start_ns: int | None = None
    duration_ms: int | None = None
    rate: float | None = None
    start_rate: float | None = None
    target_rate: float | None = None
    planned_calls: int | None = None
    preallocated_vus: int | None = None
    max_vus: int | None = None


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run as ``list_runs`` reports it, with its row counts."""

    run_id: str
    seed: int | None
    status: str
    started_ns: int
    ended_ns: int | None
    started_at: str
    ended_at: str | None
    source: str
    target: str | None
    command_line: str | None
    calls: int
    """Rows in ``metrics``: calls sent, whatever their outcome."""
    failures: int
    """Rows in ``metrics`` whose status is not ``OK``."""
    dropped: int
    """Rows in ``dropped``: planned calls that were never sent."""


def _reason(exc: BaseException) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc} ({name})" if name else str(exc)


def _iso_utc(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rest // 1000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_or_none(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _metrics_values(row: RequestRecord) -> tuple[Any, ...]:
    left_ns = row.sent_ns if row.sent_ns is not None else row.start_ns
    latency = row.latency_ms
    if latency is not None and row.lateness_ms is not None:
        iteration = latency + row.lateness_ms
    else:
        iteration = latency
    return (
        row.run_id,
        None if left_ns is None else left_ns / 1e9,
        row.scenario,
        GRPC_SERVICE,
        row.image_tag,
        row.instance_id,
        row.request_id,
        latency,
        row.call_queued_ns,
        row.got_response_ns,
        row.request_bytes,
        row.response_bytes,
        iteration,
        "grpc",
        "unary",
        "",
        "",
        row.function,
        row.function_id,
        row.status,
        row.error,
        row.scheduled_ns,
        row.sent_ns,
        row.lateness_ms,
        row.worker,
        row.function_processing_ns,
        row.leaf_got_request_ns,
        row.leaf_scheduled_call_ns,
    )


def _dropped_values(row: RequestRecord) -> tuple[Any, ...]:
    return (
        row.run_id,
        row.request_id,
        row.function,
        row.function_id,
        row.image_tag,
        row.scenario,
        row.scheduled_ns,
        row.worker,
    )


def _table_columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [
        name
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    ]
    return {
        table: {info[1] for info in conn.execute(f'PRAGMA table_info("{table}")')}
        for table in tables
    }


@functools.cache
def _expected_columns() -> dict[str, set[str]]:
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.executescript(SCHEMA_SQL)
        return _table_columns(scratch)
    finally:
        scratch.close()


class SqliteSink:
    """Stores runs and their calls in an SQLite database (WAL mode).

    Raises ``SinkError`` when the database cannot be opened, has a layout this
    version does not know, or a write fails (disk full, locked for longer than
    the busy timeout, read-only); the failed write leaves nothing behind.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self.path = os.fspath(path)
        self._conn: sqlite3.Connection | None = None

        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise SinkError(
                f"cannot open SQLite database {self.path}:"
                f" folder {parent} does not exist"
            )
        if os.path.isdir(self.path):
            raise SinkError(f"cannot open SQLite database {self.path}: is a folder")

        try:
            conn = sqlite3.connect(
                self.path,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise SinkError(
                f"cannot open SQLite database {self.path}: {_reason(exc)}"
            ) from exc

        try:
            self._prepare(conn, busy_timeout_ms)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise SinkError(
                    f"cannot open SQLite database {self.path}: {_reason(exc)}"
                ) from exc
            raise
        self._conn = conn

    def _prepare(self, conn: sqlite3.Connection, busy_timeout_ms: int) -> None:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode.lower() != "wal":
            logger.warning(
                "SQLite database %s stays in %s journal mode: WAL is not available.",
                self.path,
                mode,
            )
        conn.execute("PRAGMA synchronous = NORMAL")

        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise SinkError(
                f"cannot open SQLite database {self.path}: its schema version"
                f" {version} is newer than this version of locust-hyperfaas"
                f" ({SCHEMA_VERSION}); upgrade or choose another path"
            )

        # A table of the same name from another tool would make every insert fail.
        found = _table_columns(conn)
        for table, columns in _expected_columns().items():
            missing = columns - found.get(table, columns)
            if missing:
                raise SinkError(
                    f"cannot use SQLite database {self.path}: table {table} lacks"
                    f" columns {', '.join(sorted(missing))}; choose another path"
                )

        conn.executescript(
            f"BEGIN IMMEDIATE;\n{SCHEMA_SQL}\n"
            f"PRAGMA user_version = {SCHEMA_VERSION};\nCOMMIT;"
        )

    @contextlib.contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        if self._conn is None:
            raise SinkError(f"cannot {action}: SQLite database {self.path} is closed")
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise SinkError(
                f"cannot {action} in SQLite database {self.path}: {_reason(exc)}"
            ) from exc

    def start_run(self, run: RunInfo) -> None:
        """Insert the run's row with status ``running``."""
        values = (
            run.run_id,
            run.seed,
            run.started_ns,
            _iso_utc(run.started_ns),
            run.command_line,
            _json_or_none(run.configuration),
            _json_or_none(run.plan),
            run.target,
            run.plugin_version,
            run.locust_version,
            run.source,
        )
        with self._transaction(f"start run {run.run_id}") as conn:
            conn.execute(_INSERT_RUN, values)
        logger.info("Run %s recorded in %s.", run.run_id, self.path)

    def write_functions(self, run_id: str, functions: Sequence[FunctionRow]) -> None:
        """Store the run's functions and remember each id's image tag."""
        with self._transaction(f"store the functions of run {run_id}") as conn:
            conn.executemany(
                _INSERT_FUNCTION,
                [
                    (
                        run_id,
                        f.name,
                        f.function_id,
                        f.image_tag,
                        f.memory_bytes,
                        f.cpu_period,
                        f.cpu_quota,
                    )
                    for f in functions
                ],
            )
            conn.executemany(
                _UPSERT_FUNCTION_IMAGE,
                [(f.function_id, f.image_tag) for f in functions],
            )

    def write_scenarios(self, run_id: str, rows: Sequence[ScenarioRow]) -> None:
        """Store the run's planned scenarios (replacing any of the same name)."""
        values = [
            (
                run_id,
                s.name,
                s.function,
                s.image_tag,
                s.executor,
                s.start_ns,
                s.duration_ms,
                s.rate,
                s.start_rate,
                s.target_rate,
                s.planned_calls,
                s.preallocated_vus,
                s.max_vus,
            )
            for s in rows
        ]
        with self._transaction(f"store the scenarios of run {run_id}") as conn:
            conn.executemany(_INSERT_SCENARIO, values)

    def write(self, rows: Sequence[RequestRecord]) -> int:
        """Store a batch in one transaction; return how many rows were new.

        ``DROPPED`` rows go to ``dropped``, all others to ``metrics``. Rows whose
        ``(run_id, request_id)`` is already stored are skipped.
        """
        metrics: list[tuple[Any, ...]] = []
        dropped: list[tuple[Any, ...]] = []
        for row in rows:
            if row.status == STATUS_DROPPED:
                dropped.append(_dropped_values(row))
            else:
                metrics.append(_metrics_values(row))
        if not metrics and not dropped:
            return 0

        with self._transaction(f"write a batch of {len(rows)} rows") as conn:
            before = conn.total_changes
            if metrics:
                conn.executemany(_INSERT_METRICS, metrics)
            if dropped:
                conn.executemany(_INSERT_DROPPED, dropped)
            return conn.total_changes - before

    def finish_run(self, run_id: str, status: str, ended_ns: int) -> None:
        """Close the run's row with its final status and end time."""
        if status not in RUN_STATUSES:
            raise ValueError(
                f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}"
            )
        with self._transaction(f"finish run {run_id}") as conn:
            updated = conn.execute(
                "UPDATE runs SET status = ?, ended_ns = ?, ended_at = ?"
                " WHERE run_id = ?",
                (status, ended_ns, _iso_utc(ended_ns), run_id),
            ).rowcount
        if updated == 0:
            raise SinkError(
                f"cannot finish run {run_id}: it is not in SQLite database {self.path}"
            )
        logger.info("Run %s %s; recorded in %s.", run_id, status, self.path)

    def close(self) -> None:
        """Fold the write-ahead log into the database and close it (idempotent)."""
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            (busy, _, _) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if busy:
                logger.warning(
                    "SQLite database %s is in use by another reader; its"
                    " write-ahead log will be folded in when that reader closes.",
                    self.path,
                )
        except sqlite3.Error as exc:
            logger.warning(
                "Could not checkpoint SQLite database %s: %s.", self.path, _reason(exc)
            )
        finally:
            conn.close()

    def __enter__(self) -> SqliteSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a database for reading only; rows come back as ``sqlite3.Row``."""
    location = Path(path)
    if not location.is_file():
        raise SinkError(f"cannot open SQLite database {location}: no such file")
    try:
        conn = sqlite3.connect(f"{location.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise SinkError(
            f"cannot open SQLite database {location}: {_reason(exc)}"
        ) from exc
    conn.row_factory = sqlite3.Row
    return conn


def list_runs(conn: sqlite3.Connection) -> list[RunSummary]:
    """Every run in the database, oldest first, with its row counts."""
    query = """
        SELECT r.run_id, r.seed, r.status, r.started_ns, r.ended_ns,
               r.started_at, r.ended_at, r.source, r.target, r.command_line,
               (SELECT count(*) FROM metrics m WHERE m.run_id = r.run_id),
               (SELECT count(*) FROM metrics m
                 WHERE m.run_id = r.run_id AND m.status IS NOT ?),
               (SELECT count(*) FROM dropped d WHERE d.run_id = r.run_id)
        FROM runs r
        ORDER BY r.started_ns, r.run_id
    """
    return [RunSummary(*tuple(row)) for row in conn.execute(query, (STATUS_OK,))]
