"""Real headless Locust runs of the locustfiles against a leaf emulator."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import LOCUSTFILES, run_locust

MIX = LOCUSTFILES / "mix.py"
SMALL_WORKLOAD = {
    "TOTAL_TEST_DURATION": "4s",
    "WORKLOAD_SEED": "7",
    "MIN_PREALLOCATED_VUS": "3",
    "MAX_PREALLOCATED_VUS": "5",
    "MIN_MAX_VUS": "5",
    "MAX_MAX_VUS": "10",
    "ECHO_CONSTANT_RATE_MIN": "5",
    "ECHO_CONSTANT_RATE_MAX": "10",
    "BFS_CONSTANT_RATE_MIN": "3",
    "BFS_CONSTANT_RATE_MAX": "6",
    "THUMBNAILER_CONSTANT_RATE_MIN": "3",
    "THUMBNAILER_CONSTANT_RATE_MAX": "6",
    "ECHO_BURST_TARGET_RATE_MIN": "5",
    "ECHO_BURST_TARGET_RATE_MAX": "10",
    "BFS_BURST_TARGET_RATE_MIN": "3",
    "BFS_BURST_TARGET_RATE_MAX": "6",
    "THUMBNAILER_BURST_TARGET_RATE_MIN": "3",
    "THUMBNAILER_BURST_TARGET_RATE_MAX": "6",
}


def db_rows(path: Path, query: str, *args: object) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchall()


def test_mix_records_every_call_the_embedded_emulator_served(tmp_path):
    run = run_locust(tmp_path, MIX, **SMALL_WORKLOAD)

    assert run.returncode == 0, run.output
    assert "started the HyperFaaS leaf emulator at 127.0.0.1:" in run.output
    stats = json.loads((run.results / "emulator_stats.json").read_text())
    rows = run.rows()
    calls = [row for row in rows if row["status"] != "DROPPED"]
    assert stats["served"] > 0
    assert len(calls) == stats["served"]
    assert {row["function"] for row in calls} == {"echo", "bfs", "thumbnailer"}
    assert all(row["status"] == "OK" and not row["error"] for row in calls)
    assert all(len(row["instance_id"]) == 12 for row in calls)
    assert all(
        int(row["got_response_ns"]) >= int(row["call_queued_ns"]) for row in calls
    )
    assert len({row["request_id"] for row in rows}) == len(rows)
    tags = {row["function"]: row["image_tag"] for row in calls}
    assert tags == {
        "echo": "hyperfaas-echo:latest",
        "bfs": "hyperfaas-bfs-json:latest",
        "thumbnailer": "hyperfaas-thumbnailer-json:latest",
    }

    plan = json.loads((run.results / "generated_scenarios.json").read_text())
    assert plan["metadata"]["seed"] == 7
    assert set(plan["metadata"]["functionIds"]) == {"echo", "bfs", "thumbnailer"}
    db = run.results / "metrics.db"
    assert db_rows(db, "SELECT count(*) FROM metrics") == [(stats["served"],)]
    assert db_rows(db, "SELECT status FROM runs") == [("finished",)]
    assert db_rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_run_against_a_given_host_creates_three_functions_with_their_resources(
    tmp_path, emulator
):
    run = run_locust(
        tmp_path, MIX, args=("--headless", "--host", emulator.address), **SMALL_WORKLOAD
    )
    stats = emulator.stats()
    emulator.stop()
    stats = emulator.stats()

    assert run.returncode == 0, run.output
    assert "emulator at" not in run.output
    created = {f["image_tag"]: f for f in stats["functions"]}
    assert len(stats["functions"]) == 3
    assert created["hyperfaas-echo:latest"]["memory"] == 128 * 1024 * 1024
    assert (
        created["hyperfaas-echo:latest"]["cpu_period"],
        created["hyperfaas-echo:latest"]["cpu_quota"],
    ) == (100000, 25000)
    assert created["hyperfaas-bfs-json:latest"]["memory"] == 256 * 1024 * 1024
    assert created["hyperfaas-bfs-json:latest"]["cpu_quota"] == 50000
    assert created["hyperfaas-thumbnailer-json:latest"]["memory"] == 512 * 1024 * 1024
    for line in (
        "created function echo (hyperfaas-echo:latest): ",
        "created function bfs (hyperfaas-bfs-json:latest): ",
    ):
        assert line in run.output
    calls = [row for row in run.rows() if row["status"] != "DROPPED"]
    assert len(calls) == stats["served"] > 0
