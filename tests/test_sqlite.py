from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from locust_hyperfaas.exceptions import SinkError
from locust_hyperfaas.recording.rows import RequestRecord
from locust_hyperfaas.recording.sqlite import (
    SCHEMA_VERSION,
    FunctionRow,
    RunInfo,
    RunSummary,
    ScenarioRow,
    SqliteSink,
    connect_readonly,
    list_runs,
)

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
T0 = 1_765_000_000_000_000_000  # 2025-12-06T05:46:40Z
TABLES = ["dropped", "function_images", "functions", "metrics", "runs", "scenarios"]


def make_run(run_id: str = "run-1", started_ns: int = T0) -> RunInfo:
    return RunInfo(
        run_id=run_id,
        seed=42,
        started_ns=started_ns,
        command_line="locust -f locustfiles/mix.py --headless",
        configuration={"seed": 42, "target": "127.0.0.1:50050"},
        plan={"scenarios": [{"name": "echo-0", "rate": 5}]},
        target="127.0.0.1:50050",
        plugin_version="0.1.0",
        locust_version="2.47.0",
    )


def make_row(n: int, run_id: str = "run-1", **changes: object) -> RequestRecord:
    values: dict[str, object] = dict(
        request_id=f"local-{n}",
        run_id=run_id,
        function="echo",
        function_id="fn-echo",
        image_tag="hyperfaas-echo:latest",
        scenario="echo-0",
        worker="local",
        status="OK",
        start_ns=T0 + 2_000_000_000,
        scheduled_ns=T0 + 1_999_000_000,
        sent_ns=T0 + 2_000_000_000,
        lateness_ms=1.0,
        latency_ms=0.25,
        request_bytes=11,
        response_bytes=13,
        instance_id="inst-1",
        call_queued_ns=T0 + 2_000_100_000,
        got_response_ns=T0 + 2_000_200_000,
        function_processing_ns=42_000,
        leaf_got_request_ns=T0 + 2_000_050_000,
        leaf_scheduled_call_ns=T0 + 2_000_060_000,
    )
    values.update(changes)
    return RequestRecord(**values)  # type: ignore[arg-type]


def make_dropped(n: int, run_id: str = "run-1") -> RequestRecord:
    return RequestRecord(
        request_id=f"local-{n}",
        run_id=run_id,
        function="echo",
        function_id="fn-echo",
        image_tag="hyperfaas-echo:latest",
        scenario="echo-0",
        worker="local",
        status="DROPPED",
        start_ns=T0 + 3_000_000_000,
        scheduled_ns=T0 + 3_000_000_000,
    )


def count(conn: sqlite3.Connection, table: str, run_id: str | None = None) -> int:
    if run_id is None:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    query = f"SELECT count(*) FROM {table} WHERE run_id = ?"
    return conn.execute(query, (run_id,)).fetchone()[0]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "metrics.db"


@pytest.fixture
def sink(db_path: Path) -> Iterator[SqliteSink]:
    sink = SqliteSink(db_path)
    yield sink
    sink.close()


def test_opening_creates_the_schema_in_wal_mode(db_path: Path) -> None:
    SqliteSink(db_path).close()

    conn = sqlite3.connect(db_path)
    tables = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    assert [name for (name,) in tables] == TABLES
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_the_schema_matches_docs_schema_md(db_path: Path) -> None:
    sql = re.search(r"```sql\n(.*?)```", SCHEMA_DOC.read_text(), re.DOTALL)
    assert sql is not None
    documented = sqlite3.connect(":memory:")
    documented.executescript(sql.group(1))
    SqliteSink(db_path).close()
    created = sqlite3.connect(db_path)

    def layout(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
        described = {
            table: conn.execute(f"PRAGMA table_info({table})").fetchall()
            for table in TABLES
        }
        described["metrics_run"] = conn.execute(
            "PRAGMA index_info(metrics_run)"
        ).fetchall()
        return described

    assert layout(created) == layout(documented)


def test_reopening_an_existing_database_keeps_its_rows(db_path: Path) -> None:
    with SqliteSink(db_path) as sink:
        sink.start_run(make_run())
        sink.write([make_row(1)])
    with SqliteSink(db_path) as sink:
        sink.write([make_row(2)])

    conn = sqlite3.connect(db_path)
    assert count(conn, "metrics") == 2
    assert count(conn, "runs") == 1


def test_a_run_is_started_and_finished(sink: SqliteSink, db_path: Path) -> None:
    sink.start_run(make_run())
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    running = dict(conn.execute("SELECT * FROM runs").fetchone())
    assert running == {
        "run_id": "run-1",
        "seed": 42,
        "started_ns": T0,
        "ended_ns": None,
        "started_at": "2025-12-06T05:46:40.000000Z",
        "ended_at": None,
        "status": "running",
        "command_line": "locust -f locustfiles/mix.py --headless",
        "configuration": '{"seed": 42, "target": "127.0.0.1:50050"}',
        "plan": '{"scenarios": [{"name": "echo-0", "rate": 5}]}',
        "target": "127.0.0.1:50050",
        "plugin_version": "0.1.0",
        "locust_version": "2.47.0",
        "source": "locust",
    }

    sink.finish_run("run-1", "finished", T0 + 61_500_000_000)
    ended = conn.execute("SELECT status, ended_ns, ended_at FROM runs").fetchone()
    assert tuple(ended) == (
        "finished",
        T0 + 61_500_000_000,
        "2025-12-06T05:47:41.500000Z",
    )


def test_finishing_with_an_unknown_status_is_refused(sink: SqliteSink) -> None:
    sink.start_run(make_run())
    with pytest.raises(ValueError, match="'done' is not one of running, finished"):
        sink.finish_run("run-1", "done", T0)


def test_finishing_a_run_that_was_never_started_raises(sink: SqliteSink) -> None:
    with pytest.raises(SinkError, match="run-9"):
        sink.finish_run("run-9", "failed", T0)


def test_starting_the_same_run_twice_raises(sink: SqliteSink) -> None:
    sink.start_run(make_run())
    with pytest.raises(SinkError, match="start run run-1.*UNIQUE constraint"):
        sink.start_run(make_run())


def test_functions_and_their_images_are_stored(sink: SqliteSink, db_path: Path) -> None:
    sink.start_run(make_run())
    sink.write_functions(
        "run-1",
        [
            FunctionRow("echo", "fn-echo", "hyperfaas-echo:latest", 67_108_864),
            FunctionRow(
                "bfs", "fn-bfs", "hyperfaas-bfs:v1", 134_217_728, 100_000, 50_000
            ),
        ],
    )
    sink.write_functions("run-1", [FunctionRow("bfs", "fn-bfs", "hyperfaas-bfs:v2")])

    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT * FROM functions ORDER BY name").fetchall() == [
        ("run-1", "bfs", "fn-bfs", "hyperfaas-bfs:v2", None, None, None),
        ("run-1", "echo", "fn-echo", "hyperfaas-echo:latest", 67_108_864, None, None),
    ]
    assert conn.execute(
        "SELECT * FROM function_images ORDER BY function_id"
    ).fetchall() == [
        ("fn-bfs", "hyperfaas-bfs:v2"),
        ("fn-echo", "hyperfaas-echo:latest"),
    ]


def test_scenarios_are_stored(sink: SqliteSink, db_path: Path) -> None:
    sink.write_scenarios(
        "run-1",
        [
            ScenarioRow(
                "echo-0", "echo", "hyperfaas-echo:latest", "constant-arrival-rate",
                T0, 30_000, rate=5.0, planned_calls=150,
                preallocated_vus=2, max_vus=10,
            ),
            ScenarioRow(
                "bfs-0", "bfs", executor="ramping-arrival-rate",
                start_rate=1.0, target_rate=9.5, planned_calls=157,
            ),
        ],
    )  # fmt: skip

    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT * FROM scenarios ORDER BY name").fetchall() == [
        ("run-1", "bfs-0", "bfs", None, "ramping-arrival-rate", None, None,
         None, 1.0, 9.5, 157, None, None),
        ("run-1", "echo-0", "echo", "hyperfaas-echo:latest", "constant-arrival-rate",
         T0, 30_000, 5.0, None, None, 150, 2, 10),
    ]  # fmt: skip


def test_a_call_is_stored_with_the_k6_columns_and_the_added_ones(
    sink: SqliteSink, db_path: Path
) -> None:
    assert sink.write([make_row(1)]) == 1

    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    stored = dict(conn.execute("SELECT * FROM metrics").fetchone())
    created_at = stored.pop("created_at")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", created_at)
    assert stored == {
        "id": 1,
        "run_id": "run-1",
        "timestamp": (T0 + 2_000_000_000) / 1e9,
        "scenario": "echo-0",
        "service": "leaf.Leaf",
        "image_tag": "hyperfaas-echo:latest",
        "instance_id": "inst-1",
        "request_id": "local-1",
        "grpc_req_duration": 0.25,
        "callqueuedtimestamp": T0 + 2_000_100_000,
        "gotresponsetimestamp": T0 + 2_000_200_000,
        "data_sent": 11,
        "data_received": 13,
        "iteration_duration": 1.25,
        "proto": "grpc",
        "subproto": "unary",
        "group_name": "",
        "extra_tags": "",
        "function": "echo",
        "function_id": "fn-echo",
        "status": "OK",
        "error": "",
        "scheduled_ns": T0 + 1_999_000_000,
        "sent_ns": T0 + 2_000_000_000,
        "lateness_ms": 1.0,
        "worker": "local",
        "function_processing_ns": 42_000,
        "leaf_got_request_ns": T0 + 2_000_050_000,
        "leaf_scheduled_call_ns": T0 + 2_000_060_000,
    }


def test_iteration_duration_is_the_latency_when_lateness_is_unknown(
    sink: SqliteSink, db_path: Path
) -> None:
    sink.write([make_row(1, lateness_ms=None, sent_ns=None)])

    conn = sqlite3.connect(db_path)
    row = conn.execute(
        "SELECT iteration_duration, timestamp, sent_ns FROM metrics"
    ).fetchone()
    assert row == (0.25, (T0 + 2_000_000_000) / 1e9, None)


def test_dropped_calls_go_to_their_own_table(sink: SqliteSink, db_path: Path) -> None:
    batch = [make_row(1), make_dropped(2), make_row(3, status="UNAVAILABLE")]
    batch += [make_dropped(4), make_row(5, status="CANCELLED", latency_ms=None)]

    assert sink.write(batch) == 5

    conn = sqlite3.connect(db_path)
    assert conn.execute(
        "SELECT request_id, status FROM metrics ORDER BY id"
    ).fetchall() == [
        ("local-1", "OK"),
        ("local-3", "UNAVAILABLE"),
        ("local-5", "CANCELLED"),
    ]
    assert conn.execute("SELECT * FROM dropped ORDER BY request_id").fetchall() == [
        ("run-1", "local-2", "echo", "fn-echo", "hyperfaas-echo:latest", "echo-0",
         T0 + 3_000_000_000, "local"),
        ("run-1", "local-4", "echo", "fn-echo", "hyperfaas-echo:latest", "echo-0",
         T0 + 3_000_000_000, "local"),
    ]  # fmt: skip


def test_a_batch_sent_again_is_not_duplicated(sink: SqliteSink, db_path: Path) -> None:
    batch = [make_row(n) for n in range(100)] + [
        make_dropped(n) for n in range(100, 110)
    ]

    assert sink.write(batch) == 110
    assert sink.write(batch) == 0
    assert sink.write(batch[95:] + [make_row(200)]) == 1

    conn = sqlite3.connect(db_path)
    assert count(conn, "metrics") == 101
    assert count(conn, "dropped") == 10


def test_two_runs_in_one_file_stay_apart(sink: SqliteSink, db_path: Path) -> None:
    sink.start_run(make_run("run-1", T0))
    sink.start_run(make_run("run-2", T0 + 10**12))
    # the same request ids in both runs: they are unique per run only
    sink.write([make_row(n, "run-1") for n in range(7)] + [make_dropped(7, "run-1")])
    sink.write([make_row(n, "run-2", status="UNAVAILABLE") for n in range(3)])
    sink.finish_run("run-1", "finished", T0 + 60 * 10**9)

    conn = sqlite3.connect(db_path)
    assert count(conn, "metrics", "run-1") == 7
    assert count(conn, "metrics", "run-2") == 3
    assert count(conn, "dropped", "run-1") == 1
    assert count(conn, "dropped", "run-2") == 0
    assert conn.execute(
        "SELECT run_id, status FROM runs ORDER BY run_id"
    ).fetchall() == [
        ("run-1", "finished"),
        ("run-2", "running"),
    ]


def test_list_runs_reports_each_run_with_its_counts(
    sink: SqliteSink, db_path: Path
) -> None:
    sink.start_run(make_run("run-2", T0 + 10**12))
    sink.start_run(make_run("run-1", T0))
    sink.write([make_row(1, "run-1"), make_row(2, "run-1", status="DEADLINE_EXCEEDED")])
    sink.write([make_dropped(3, "run-1"), make_row(1, "run-2")])
    sink.finish_run("run-1", "stopped", T0 + 5 * 10**9)
    sink.close()

    conn = connect_readonly(db_path)
    runs = list_runs(conn)
    assert runs == [
        RunSummary(
            run_id="run-1",
            seed=42,
            status="stopped",
            started_ns=T0,
            ended_ns=T0 + 5 * 10**9,
            started_at="2025-12-06T05:46:40.000000Z",
            ended_at="2025-12-06T05:46:45.000000Z",
            source="locust",
            target="127.0.0.1:50050",
            command_line="locust -f locustfiles/mix.py --headless",
            calls=2,
            failures=1,
            dropped=1,
        ),
        RunSummary(
            run_id="run-2",
            seed=42,
            status="running",
            started_ns=T0 + 10**12,
            ended_ns=None,
            started_at="2025-12-06T06:03:20.000000Z",
            ended_at=None,
            source="locust",
            target="127.0.0.1:50050",
            command_line="locust -f locustfiles/mix.py --headless",
            calls=1,
            failures=0,
            dropped=0,
        ),
    ]


def test_the_readonly_connection_cannot_write(sink: SqliteSink, db_path: Path) -> None:
    sink.start_run(make_run())
    conn = connect_readonly(db_path)

    assert conn.execute("SELECT run_id FROM runs").fetchone()["run_id"] == "run-1"
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM runs")


def test_connect_readonly_to_a_missing_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(SinkError, match=re.escape(str(path))):
        connect_readonly(path)
    assert not path.exists()


def test_the_database_is_intact_after_close(db_path: Path) -> None:
    sink = SqliteSink(db_path)
    sink.start_run(make_run())
    sink.write([make_row(n) for n in range(500)] + [make_dropped(500)])
    sink.finish_run("run-1", "finished", T0 + 10**10)
    sink.close()
    sink.close()

    wal = Path(f"{db_path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert count(conn, "metrics") == 500


def test_a_sink_made_on_one_thread_writes_from_another(db_path: Path) -> None:
    sink = SqliteSink(db_path)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            sink.start_run(make_run())
            sink.write([make_row(1), make_dropped(2)])
            sink.finish_run("run-1", "finished", T0 + 10**9)
            sink.close()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()

    assert errors == []
    conn = sqlite3.connect(db_path)
    assert (count(conn, "metrics"), count(conn, "dropped")) == (1, 1)


def test_a_missing_parent_folder_raises_sink_error_naming_the_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "absent" / "metrics.db"

    with pytest.raises(SinkError) as caught:
        SqliteSink(path)
    assert str(path) in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_a_folder_given_as_the_path_raises_sink_error(tmp_path: Path) -> None:
    with pytest.raises(SinkError, match=f"{re.escape(str(tmp_path))}: is a folder"):
        SqliteSink(tmp_path)


def test_a_file_that_is_not_a_database_raises_sink_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are not the pages you are looking for\n" * 100)

    with pytest.raises(SinkError, match="file is not a database"):
        SqliteSink(path)


def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()

    with pytest.raises(SinkError, match="schema version 2 is newer"):
        SqliteSink(db_path)


def test_a_foreign_metrics_table_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE metrics (timestamp REAL, request_id TEXT)")
    conn.close()

    with pytest.raises(SinkError, match="table metrics lacks columns .*run_id"):
        SqliteSink(db_path)


def test_a_failing_batch_leaves_nothing_behind(sink: SqliteSink, db_path: Path) -> None:
    # the metrics rows go in first; the dropped row without an id then fails
    bad = make_dropped(9)
    bad.request_id = None  # type: ignore[assignment]

    with pytest.raises(SinkError, match="NOT NULL constraint failed"):
        sink.write([make_row(1), make_row(2), bad])

    conn = sqlite3.connect(db_path)
    assert (count(conn, "metrics"), count(conn, "dropped")) == (0, 0)
    assert sink.write([make_row(1), make_row(2)]) == 2
    assert count(conn, "metrics") == 2


def test_a_locked_database_raises_and_the_batch_can_be_sent_again(
    db_path: Path,
) -> None:
    sink = SqliteSink(db_path, busy_timeout_ms=50)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    batch = [make_row(1), make_dropped(2)]

    with pytest.raises(SinkError, match="database is locked"):
        sink.write(batch)

    other.execute("ROLLBACK")
    assert sink.write(batch) == 2
    sink.close()
    assert (count(other, "metrics"), count(other, "dropped")) == (1, 1)


def test_a_full_disk_raises_sink_error_and_keeps_earlier_batches(
    sink: SqliteSink, db_path: Path
) -> None:
    sink.write([make_row(1)])
    # a page limit on the sink's own connection stands in for a full disk
    (pages,) = sink._conn.execute("PRAGMA page_count").fetchone()  # type: ignore[union-attr]
    sink._conn.execute(f"PRAGMA max_page_count = {pages}")  # type: ignore[union-attr]

    with pytest.raises(SinkError, match="database or disk is full"):
        sink.write([make_row(n, error="x" * 2000) for n in range(2, 200)])

    conn = sqlite3.connect(db_path)
    assert count(conn, "metrics") == 1


def test_writing_after_close_raises_sink_error(sink: SqliteSink) -> None:
    sink.close()
    with pytest.raises(SinkError, match="is closed"):
        sink.write([make_row(1)])


def test_metrics_group_by_image_tag_and_scenario(
    sink: SqliteSink, db_path: Path
) -> None:
    sink.write(
        [
            make_row(1, latency_ms=2.0, request_bytes=10, response_bytes=20),
            make_row(2, latency_ms=4.0, request_bytes=30, response_bytes=40),
            make_row(3, scenario="echo-1", latency_ms=1.5, request_bytes=5),
            make_row(
                4,
                function="bfs",
                image_tag="hyperfaas-bfs:v1",
                scenario="bfs-0",
                latency_ms=10.0,
                request_bytes=8,
                response_bytes=1000,
            ),
            make_row(
                5,
                function="bfs",
                image_tag="hyperfaas-bfs:v1",
                scenario="bfs-0",
                latency_ms=30.0,
                request_bytes=8,
                response_bytes=3000,
            ),
            make_dropped(6),
        ]
    )

    conn = sqlite3.connect(db_path)
    groups = conn.execute(
        """
        SELECT image_tag, scenario, count(*), avg(grpc_req_duration),
               max(grpc_req_duration), sum(data_sent), sum(data_received)
        FROM metrics WHERE run_id = ?
        GROUP BY image_tag, scenario ORDER BY image_tag, scenario
        """,
        ("run-1",),
    ).fetchall()
    assert groups == [
        ("hyperfaas-bfs:v1", "bfs-0", 2, 20.0, 30.0, 16, 4000),
        ("hyperfaas-echo:latest", "echo-0", 2, 3.0, 4.0, 40, 60),
        ("hyperfaas-echo:latest", "echo-1", 1, 1.5, 1.5, 5, 13),
    ]


def test_configuration_values_json_cannot_encode_are_stored_as_text(
    sink: SqliteSink, db_path: Path
) -> None:
    run = dataclasses.replace(make_run(), configuration={"out": db_path})

    sink.start_run(run)

    conn = sqlite3.connect(db_path)
    (stored,) = conn.execute("SELECT configuration FROM runs").fetchone()
    assert json.loads(stored) == {"out": str(db_path)}
