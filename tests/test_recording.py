"""The recorder: batches to every output, survives a failing one, loses nothing."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import LOCUSTFILES, run_locust
from test_headless import SMALL_WORKLOAD

from locust_hyperfaas.recording.recorder import Recorder
from locust_hyperfaas.recording.rows import STATUS_DROPPED, RequestRecord


def row(n: int, status: str = "OK") -> RequestRecord:
    return RequestRecord(
        f"t-{n}", "run", "echo", "fid", "tag", "echo-0", "local", status, scheduled_ns=n
    )


class ListSink:
    def __init__(self, fail_after: int | None = None) -> None:
        self.rows: list[RequestRecord] = []
        self.batches = 0
        self.fail_after = fail_after
        self.closed = False

    def write(self, rows):
        self.batches += 1
        if self.fail_after is not None and self.batches > self.fail_after:
            raise OSError("No space left on device")
        self.rows.extend(rows)

    def close(self):
        self.closed = True


def test_rows_reach_every_sink_in_order_and_close_flushes_the_rest():
    first, second = ListSink(), ListSink()
    recorder = Recorder({"a": first, "b": second})
    recorder.start()
    for n in range(1000):
        recorder.add(row(n, STATUS_DROPPED if n % 10 == 0 else "OK"))
    recorder.close()

    assert [r.request_id for r in first.rows] == [f"t-{n}" for n in range(1000)]
    assert first.rows == second.rows
    assert first.closed and second.closed
    assert (recorder.calls, recorder.dropped, recorder.dropped_by_scenario) == (
        900,
        100,
        {"echo-0": 100},
    )


def test_a_failing_sink_is_reported_once_and_the_others_keep_every_row(caplog):
    full, csv = ListSink(fail_after=1), ListSink()
    recorder = Recorder({"SQLite": full, "CSV": csv})
    recorder.add_many(row(n) for n in range(10))
    recorder.flush()
    recorder.add_many(row(n) for n in range(10, 30))
    recorder.flush()
    recorder.add_many(row(n) for n in range(30, 40))
    recorder.close()

    assert len(csv.rows) == 40 and len(full.rows) == 10
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert (
        "SQLite" in errors[0].getMessage()
        and "No space left on device" in errors[0].getMessage()
    )


def test_an_unwritable_database_is_reported_at_once_and_the_csv_has_every_call(
    tmp_path,
):
    env = {
        **SMALL_WORKLOAD,
        "TOTAL_TEST_DURATION": "3s",
        "HYPERFAAS_DB": str(tmp_path / "missing" / "x.db"),
    }
    run = run_locust(tmp_path, LOCUSTFILES / "mix.py", **env)

    assert run.returncode == 0, run.output
    assert "Cannot write the database" in run.output and "missing/x.db" in run.output
    served = json.loads((run.results / "emulator_stats.json").read_text())["served"]
    assert len([r for r in run.rows() if r["status"] != "DROPPED"]) == served > 0
    assert not (tmp_path / "missing").exists()


def test_persist_generation_also_writes_the_plan_in_the_working_directory(tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {**SMALL_WORKLOAD, "TOTAL_TEST_DURATION": "2s", "PERSIST_GENERATION": "true"}
    run = run_locust(tmp_path, LOCUSTFILES / "echo.py", cwd=workdir, **env)

    assert run.returncode == 0, run.output
    copy = json.loads((workdir / "generated_scenarios.json").read_text())
    original = json.loads((run.results / "generated_scenarios.json").read_text())
    assert copy == original and copy["metadata"]["seed"] == 7
    assert copy["metadata"]["echoFunctionId"] == run.rows()[0]["function_id"]
    assert not Path("generated_scenarios.json").exists()
