"""Real headless Locust runs of the locustfiles against a leaf emulator."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from pathlib import Path

from conftest import BIN, LOCUSTFILES, run_locust

from locust_hyperfaas.emulator import EmulatorProcess
from locust_hyperfaas.report import build_report

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
    # what the k6-era analysis did: group by image tag (and scenario)
    groups = db_rows(
        db,
        "SELECT image_tag, count(*), avg(grpc_req_duration), avg(data_sent),"
        " avg(data_received) FROM metrics GROUP BY image_tag ORDER BY image_tag",
    )
    assert [g[0] for g in groups] == sorted(tags.values())
    by_tag = {g[0]: g[1:] for g in groups}
    echo_calls, echo_ms, echo_sent, echo_received = by_tag["hyperfaas-echo:latest"]
    assert (
        512 <= echo_sent <= 2048 and echo_received == echo_sent and 0 < echo_ms < 1000
    )
    assert by_tag["hyperfaas-bfs-json:latest"][2] < 40  # {"Size": 100, "Seed": n}
    assert by_tag["hyperfaas-thumbnailer-json:latest"][2] > 20000  # base64 JPEG
    assert sum(g[1] for g in groups) == stats["served"]
    scenarios = db_rows(db, "SELECT DISTINCT image_tag, scenario FROM metrics")
    assert len(scenarios) == len(plan["scenarios"])


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


def test_locust_counts_each_call_once_and_groups_failures_by_status_and_details(
    tmp_path,
):
    with EmulatorProcess.start(
        stats_file=tmp_path / "stats.json",
        extra_args=(
            "--cold-start-ms",
            "0",
            "--fail-rate",
            "0.3",
            "--error-rate",
            "0.2",
            "--seed",
            "1",
        ),
    ) as leaf:
        run = run_locust(
            tmp_path,
            LOCUSTFILES / "echo.py",
            args=(
                "--headless",
                "--host",
                leaf.address,
                "--csv",
                str(tmp_path / "stats"),
            ),
            **SMALL_WORKLOAD,
        )
        leaf.stop()
        served = leaf.stats()["served"]

    assert run.returncode == 1, run.output  # Locust's exit code when calls failed
    rows = [row for row in run.rows() if row["status"] != "DROPPED"]
    assert len(rows) == served
    with open(tmp_path / "stats_stats.csv", newline="") as handle:
        locust_stats = {row["Name"]: row for row in csv.DictReader(handle)}
    assert int(locust_stats["echo"]["Request Count"]) == len(rows)
    failed = [row for row in rows if row["status"] != "OK" or row["error"]]
    assert int(locust_stats["echo"]["Failure Count"]) == len(failed)
    with open(tmp_path / "stats_failures.csv", newline="") as handle:
        failures = {
            row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(handle)
        }
    assert failures == {
        "UNAVAILABLE: injected failure": sum(
            row["status"] == "UNAVAILABLE" for row in rows
        ),
        "function error: injected function error": sum(
            row["error"].startswith("function error") for row in rows
        ),
    }
    assert all(value > 0 for value in failures.values())
    report = build_report(run.results / "metrics.db", out_dir=tmp_path / "report")
    assert report.failures == len(failed)
    assert report.functions["echo"].failures == {
        "UNAVAILABLE": failures["UNAVAILABLE: injected failure"],
        "OK with error": failures["function error: injected function error"],
    }


def test_existing_function_ids_are_reused_instead_of_created(tmp_path, emulator):
    first = run_locust(
        tmp_path / "first",
        LOCUSTFILES / "echo.py",
        args=("--headless", "--host", emulator.address),
        **SMALL_WORKLOAD,
    )
    echo_id = first.rows()[0]["function_id"]
    second = run_locust(
        tmp_path / "second",
        LOCUSTFILES / "echo.py",
        args=("--headless", "--host", emulator.address),
        HYPERFAAS_FUNCTION_IDS=f"echo={echo_id}",
        **SMALL_WORKLOAD,
    )
    emulator.stop()

    assert second.returncode == 0, second.output
    assert len(emulator.stats()["functions"]) == 1
    assert {row["function_id"] for row in second.rows()} == {echo_id}
    assert (
        f"Using existing function echo (hyperfaas-echo:latest): {echo_id}"
        in second.output
    )


def test_poisson_arrivals_keep_the_mean_rate_and_the_seed(tmp_path, emulator):
    env = {
        **SMALL_WORKLOAD,
        "HYPERFAAS_ARRIVALS": "poisson",
        "ECHO_CONSTANT_SCENARIOS_RATIO": "1",
    }
    runs = [
        run_locust(
            tmp_path / str(i),
            LOCUSTFILES / "echo.py",
            args=("--headless", "--host", emulator.address),
            **env,
        )
        for i in range(2)
    ]

    offsets, payloads = [], []
    for run in runs:
        assert run.returncode == 0, run.output
        rows = sorted(run.rows(), key=lambda row: int(row["scheduled_ns"]))
        start = int(rows[0]["scheduled_ns"])
        offsets.append([int(row["scheduled_ns"]) - start for row in rows])
        payloads.append([row["request_bytes"] for row in rows])
    assert offsets[0] == offsets[1]
    assert payloads[0] == payloads[1]  # the same seed sends the same bytes
    gaps = {b - a for a, b in zip(offsets[0], offsets[0][1:], strict=False)}
    assert len(gaps) > len(offsets[0]) // 2  # not evenly spaced


def test_the_report_of_a_real_run_has_every_table_and_plot(tmp_path):
    run = run_locust(tmp_path, MIX, **SMALL_WORKLOAD)
    out = tmp_path / "report"
    result = subprocess.run(
        [
            str(BIN / "locust-hyperfaas"),
            "report",
            str(run.results / "metrics.db"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    served = json.loads((run.results / "emulator_stats.json").read_text())["served"]
    text = (out / "report.md").read_text()
    for function in ("echo", "bfs", "thumbnailer"):
        assert function in text
    assert str(served) in result.stdout
    for plot in ("rate.png", "latency.png", "instances.png", "coldwarm.png"):
        data = (out / plot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert (out / "report.html").stat().st_size > 10000


def test_settings_can_live_in_a_locust_conf_file(tmp_path, emulator):
    conf = tmp_path / "locust.conf"
    conf.write_text(
        "headless = true\n"
        f"host = {emulator.address}\n"
        "workload-seed = 99\n"
        "total-test-duration = 2s\n"
        "echo-max-scenarios = 0\n"
        "thumbnailer-max-scenarios = 0\n"
        "bfs-image-tag = registry.local/bfs:conf\n"
    )
    run = run_locust(tmp_path, MIX, args=("--config", str(conf)))

    assert run.returncode == 0, run.output
    plan = json.loads((run.results / "generated_scenarios.json").read_text())
    assert plan["metadata"]["seed"] == 99 and plan["metadata"]["totalDuration"] == "2s"
    assert {s["function"] for s in plan["scenarios"].values()} == {"bfs"}
    assert {row["image_tag"] for row in run.rows()} == {"registry.local/bfs:conf"}
