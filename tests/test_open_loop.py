"""Open-loop runs: planned calls at planned instants, drops recorded, bad input refused."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
from collections import Counter
from pathlib import Path

import pytest
from conftest import LOCUSTFILES, free_port, run_locust
from test_headless import SMALL_WORKLOAD

from locust_hyperfaas.emulator import EmulatorProcess

MIX = LOCUSTFILES / "mix.py"


def write_plan(path: Path, scenarios: dict, total: str) -> Path:
    path.write_text(
        json.dumps(
            {"metadata": {"seed": 5, "totalDuration": total}, "scenarios": scenarios}
        )
    )
    return path


def constant(function: str, rate: float, duration: str, pre: int, max_vus: int) -> dict:
    return {
        "executor": "constant-arrival-rate",
        "function": function,
        "startTime": "0s",
        "duration": duration,
        "rate": rate,
        "preAllocatedVUs": pre,
        "maxVUs": max_vus,
    }


def test_constant_and_ramping_scenarios_send_the_planned_number_of_calls(
    tmp_path, emulator
):
    plan = write_plan(
        tmp_path / "plan.json",
        {
            "echo-0": constant("echo", 100, "10s", 20, 50),
            "bfs-0": {
                "executor": "ramping-arrival-rate",
                "function": "bfs",
                "startTime": "0s",
                "startRate": 10,
                "stages": [{"target": 100, "duration": "10s"}],
                "preAllocatedVUs": 20,
                "maxVUs": 50,
            },
        },
        "10s",
    )
    run = run_locust(
        tmp_path,
        MIX,
        args=("--headless", "--host", emulator.address, "--plan", str(plan)),
    )

    assert run.returncode == 0, run.output
    rows = run.rows()
    sent = Counter(row["scenario"] for row in rows if row["status"] != "DROPPED")
    assert 990 <= sent["echo-0"] <= 1010
    assert 540 <= sent["bfs-0"] <= 560
    assert not [row for row in rows if row["function"] == "thumbnailer"]
    echo = sorted(
        int(row["scheduled_ns"]) for row in rows if row["scenario"] == "echo-0"
    )
    gaps = {round((b - a) / 1e6, 3) for a, b in zip(echo, echo[1:], strict=False)}
    assert gaps == {10.0}
    lateness = sorted(
        float(row["lateness_ms"]) for row in rows if row["status"] == "OK"
    )
    assert lateness[0] >= 0
    assert lateness[len(lateness) // 2] < 20


def test_a_slow_leaf_keeps_the_planned_instants_and_records_the_dropped_calls(tmp_path):
    plan = write_plan(
        tmp_path / "plan.json", {"echo-0": constant("echo", 50, "4s", 2, 3)}, "4s"
    )
    with EmulatorProcess.start(
        stats_file=tmp_path / "stats.json",
        extra_args=("--cold-start-ms", "0", "--extra-latency-ms", "200"),
    ) as slow:
        run = run_locust(
            tmp_path,
            LOCUSTFILES / "echo.py",
            args=("--headless", "--host", slow.address, "--plan", str(plan)),
        )
        slow.stop()
        served = slow.stats()["served"]

    assert run.returncode == 0, run.output
    rows = run.rows()
    by_status = Counter(row["status"] for row in rows)
    assert by_status["OK"] + by_status["DROPPED"] == 200
    assert by_status["OK"] == served
    # at most max VUs (3) calls of 200 ms each in flight: about 15 calls/s of 50
    assert 30 <= by_status["OK"] <= 70
    assert by_status["DROPPED"] >= 120
    dropped = [row for row in rows if row["status"] == "DROPPED"]
    assert all(row["scenario"] == "echo-0" and row["scheduled_ns"] for row in dropped)
    sent_lateness = sorted(
        float(row["lateness_ms"]) for row in rows if row["status"] == "OK"
    )
    assert sent_lateness[int(len(sent_lateness) * 0.9)] < 20
    last_planned = max(int(row["scheduled_ns"]) for row in rows)
    first_planned = min(int(row["scheduled_ns"]) for row in rows)
    assert (last_planned - first_planned) / 1e9 == pytest.approx(3.98, abs=0.01)
    db = run.results / "metrics.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM dropped").fetchone() == (
            by_status["DROPPED"],
        )
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (served,)


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"TOTAL_TEST_DURATION": "ten"}, (), "TOTAL_TEST_DURATION"),
        ({"HYPERFAAS_CALL_TIMEOUT": "-1"}, (), "HYPERFAAS_CALL_TIMEOUT"),
        ({"BFS_CONSTANT_SCENARIOS_RATIO": "1.5"}, (), "BFS_CONSTANT_SCENARIOS_RATIO"),
        ({"MIN_MAX_VUS": "50", "MAX_MAX_VUS": "10"}, (), "MAX_MAX_VUS"),
        ({}, ("--host", "localhost"), "--host"),
    ],
)
def test_bad_settings_stop_the_run_before_it_starts(tmp_path, env, args, message):
    run = run_locust(tmp_path, MIX, args=("--headless", *args), timeout=30, **env)

    assert run.returncode == 2, run.output
    assert message in run.output
    assert "Traceback" not in run.output
    assert "emulator at" not in run.output
    assert not (tmp_path / "results").exists()


def test_a_function_with_max_scenarios_zero_is_left_out(tmp_path, emulator):
    env = {**SMALL_WORKLOAD, "BFS_MAX_SCENARIOS": "0", "TOTAL_TEST_DURATION": "3s"}
    run = run_locust(
        tmp_path, MIX, args=("--headless", "--host", emulator.address), **env
    )
    emulator.stop()

    assert run.returncode == 0, run.output
    assert {row["function"] for row in run.rows()} == {"echo", "thumbnailer"}
    assert sorted(f["image_tag"] for f in emulator.stats()["functions"]) == [
        "hyperfaas-echo:latest",
        "hyperfaas-thumbnailer-json:latest",
    ]
    plan = json.loads((run.results / "generated_scenarios.json").read_text())
    assert not [s for s in plan["scenarios"].values() if s["function"] == "bfs"]


@pytest.mark.parametrize(
    "interrupt", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"]
)
def test_a_signal_mid_run_keeps_every_completed_call_in_the_database(
    tmp_path, emulator, interrupt
):
    env = {**SMALL_WORKLOAD, "TOTAL_TEST_DURATION": "60s"}
    run = run_locust(
        tmp_path,
        MIX,
        args=("--headless", "--host", emulator.address),
        interrupt_after=6,
        interrupt_signal=interrupt,
        timeout=60,
        **env,
    )
    emulator.stop()
    served = emulator.stats()["served"]

    db = run.results / "metrics.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (served,)
        assert conn.execute("SELECT status FROM runs").fetchall() == [("stopped",)]
    assert served > 20
    assert len([row for row in run.rows() if row["status"] != "DROPPED"]) == served


def test_two_runs_appended_to_one_database_stay_apart(tmp_path, emulator):
    db = tmp_path / "shared.db"
    env = {**SMALL_WORKLOAD, "TOTAL_TEST_DURATION": "2s", "HYPERFAAS_DB": str(db)}
    first = run_locust(
        tmp_path / "a", MIX, args=("--headless", "--host", emulator.address), **env
    )
    second = run_locust(
        tmp_path / "b", MIX, args=("--headless", "--host", emulator.address), **env
    )
    emulator.stop()

    assert first.returncode == second.returncode == 0
    with sqlite3.connect(db) as conn:
        runs = conn.execute(
            "SELECT run_id, status FROM runs ORDER BY started_ns"
        ).fetchall()
        per_run = dict(
            conn.execute(
                "SELECT run_id, count(*) FROM metrics GROUP BY run_id"
            ).fetchall()
        )
    assert len(runs) == 2 and runs[0][0] != runs[1][0]
    assert [status for _, status in runs] == ["finished", "finished"]
    assert sum(per_run.values()) == emulator.stats()["served"]
    assert per_run[runs[0][0]] == len(
        [r for r in first.rows() if r["status"] != "DROPPED"]
    )


def test_a_leaf_that_cannot_be_reached_fails_the_run_and_says_so(tmp_path):
    port = free_port()
    env = {**SMALL_WORKLOAD, "HYPERFAAS_CALL_TIMEOUT": "3"}
    run = run_locust(
        tmp_path,
        MIX,
        args=("--headless", "--host", f"127.0.0.1:{port}"),
        timeout=60,
        **env,
    )

    assert run.returncode == 2, run.output
    assert (
        f"Cannot start the run: CreateFunction for hyperfaas-bfs-json:latest at 127.0.0.1:{port} failed: UNAVAILABLE"
        in run.output
    )
    assert "Traceback" not in run.output
    (db,) = run.results.glob("**/metrics.db")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status, target FROM runs").fetchall() == [
            ("failed", f"127.0.0.1:{port}")
        ]
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (0,)


def test_calls_cut_off_by_the_stop_timeout_are_recorded_as_cancelled(tmp_path):
    plan = write_plan(
        tmp_path / "plan.json", {"echo-0": constant("echo", 20, "2s", 60, 60)}, "2s"
    )
    with EmulatorProcess.start(
        extra_args=("--cold-start-ms", "0", "--extra-latency-ms", "4000")
    ) as slow:
        run = run_locust(
            tmp_path,
            LOCUSTFILES / "echo.py",
            args=(
                "--headless",
                "--host",
                slow.address,
                "--plan",
                str(plan),
                "--stop-timeout",
                "1",
            ),
            timeout=60,
        )

    rows = run.rows()
    by_status = Counter(row["status"] for row in rows)
    assert by_status["CANCELLED"] == 40 and len(rows) == 40
    assert all(
        row["error"] == "the run stopped while the call was in flight" for row in rows
    )
    assert all(float(row["latency_ms"]) >= 900 for row in rows)
    # Locust counts them as failures too (its error report at the end)
    report_line = (
        r"\n40 +grpc echo: CANCELLED: the run stopped while the call was in flight"
    )
    assert re.search(report_line, run.output)
    assert run.returncode == 1
