"""Real master and worker processes on 127.0.0.1 sharing one plan."""

from __future__ import annotations

import csv
import json
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from conftest import LOCUSTFILES, clean_env, free_port, run_locust, start_locust

from locust_hyperfaas.arrivals import planned_count
from locust_hyperfaas.plan import load_plan

MIX = LOCUSTFILES / "mix.py"
RATES = {"echo": 40, "bfs": 20, "thumbnailer": 10}


def write_plan(path: Path, duration_s: int) -> Path:
    scenarios = {
        f"{name}-0": {
            "executor": "constant-arrival-rate",
            "function": name,
            "startTime": "0s",
            "duration": f"{duration_s}s",
            "rate": rate,
            "preAllocatedVUs": 30,
            "maxVUs": 60,
        }
        for name, rate in RATES.items()
    }
    path.write_text(
        json.dumps(
            {
                "metadata": {"seed": 3, "totalDuration": f"{duration_s}s"},
                "scenarios": scenarios,
            }
        )
    )
    return path


def planned_total(plan_path: Path) -> int:
    return sum(planned_count(s) for s in load_plan(plan_path).scenarios)


def wait_until_served(emulator, calls: int, timeout: float = 30) -> None:
    """Return once the emulator has served `calls` calls (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    while emulator.stats()["served"] < calls and time.monotonic() < deadline:
        time.sleep(0.1)


class Cluster:
    """One master and some workers, each a real `locust` process."""

    def __init__(
        self,
        tmp_path: Path,
        host: str,
        plan: Path,
        workers: int,
        expect: int | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.results = tmp_path / "results"
        self.port = free_port()
        self.env = clean_env(HYPERFAAS_RESULTS_DIR=str(self.results))
        master_args = [
            "--headless",
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(self.port),
            "--expect-workers",
            str(expect or workers),
            "--host",
            host,
            "--plan",
            str(plan),
        ]
        self.master = start_locust(MIX, master_args, self.env, tmp_path / "master.log")
        self.workers = [self.add_worker(i) for i in range(workers)]

    def add_worker(self, index: int):
        args = [
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(self.port),
        ]
        return start_locust(MIX, args, self.env, self.tmp_path / f"worker{index}.log")

    def wait(self, timeout: float = 90) -> int:
        deadline = time.monotonic() + timeout
        try:
            code = self.master.wait(timeout=timeout)
            for worker in self.workers:
                worker.wait(timeout=max(1, deadline - time.monotonic()))
            return code
        finally:
            for process in [self.master, *self.workers]:
                if process.poll() is None:
                    process.kill()
                    process.wait()

    def output(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("*.log"))
        )

    def rows(self) -> list[dict[str, str]]:
        with open(self.results / "requests.csv", newline="") as handle:
            return list(csv.DictReader(handle))

    def db(self, query: str) -> list[tuple]:
        with sqlite3.connect(self.results / "metrics.db") as conn:
            return conn.execute(query).fetchall()


def test_a_master_and_two_workers_send_the_plan_once_and_record_every_call(
    tmp_path, emulator
):
    plan = write_plan(tmp_path / "plan.json", 5)
    cluster = Cluster(tmp_path, emulator.address, plan, workers=2)
    code = cluster.wait()
    emulator.stop()
    stats = emulator.stats()

    assert code == 0, cluster.output()
    assert len(stats["functions"]) == 3
    assert cluster.db("SELECT count(*) FROM metrics") == [(stats["served"],)]
    rows = cluster.rows()
    sent = [row for row in rows if row["status"] != "DROPPED"]
    assert len(sent) == stats["served"]
    by_worker = Counter(row["worker"] for row in sent)
    assert len(by_worker) == 2
    assert min(by_worker.values()) > 0.4 * len(sent)
    planned = planned_total(plan)
    assert abs(len(sent) - planned) <= 0.01 * planned
    assert cluster.db("SELECT count(DISTINCT worker) FROM metrics") == [(2,)]
    assert cluster.db("SELECT status FROM runs") == [("finished",)]


def test_sigterm_to_the_master_keeps_every_served_call(tmp_path, emulator):
    plan = write_plan(tmp_path / "plan.json", 60)
    cluster = Cluster(tmp_path, emulator.address, plan, workers=2)
    wait_until_served(emulator, 100)
    cluster.master.send_signal(signal.SIGTERM)
    cluster.wait(timeout=60)
    for worker in cluster.workers:
        if worker.poll() is None:
            worker.kill()
    emulator.stop()
    served = emulator.stats()["served"]

    assert served >= 100
    assert cluster.db("PRAGMA integrity_check") == [("ok",)]
    assert cluster.db("SELECT count(*) FROM metrics") == [(served,)]
    assert cluster.db("SELECT status FROM runs") == [("stopped",)]


def test_a_worker_that_joins_late_takes_a_share_and_the_plan_is_still_met(
    tmp_path, emulator
):
    plan = write_plan(tmp_path / "plan.json", 8)
    cluster = Cluster(tmp_path, emulator.address, plan, workers=1, expect=1)
    time.sleep(4)
    cluster.workers.append(cluster.add_worker(1))
    code = cluster.wait()
    emulator.stop()
    served = emulator.stats()["served"]

    assert code == 0, cluster.output()
    rows = cluster.rows()
    sent = [row for row in rows if row["status"] != "DROPPED"]
    assert len(sent) == served
    assert len({row["request_id"] for row in rows}) == len(rows)
    # every planned instant was sent or recorded as dropped, by one worker only
    planned = planned_total(plan)
    assert abs(len(rows) - planned) <= 0.01 * planned
    per_instant = Counter((row["scenario"], row["scheduled_ns"]) for row in rows)
    assert max(per_instant.values()) == 1
    first_by_worker = {}
    for row in sorted(sent, key=lambda r: int(r["scheduled_ns"])):
        first_by_worker.setdefault(row["worker"], int(row["scheduled_ns"]))
    assert len(first_by_worker) == 2
    plan_start = min(int(row["scheduled_ns"]) for row in rows)
    late_start_s = (max(first_by_worker.values()) - plan_start) / 1e9
    assert 2 < late_start_s < 8


def test_processes_two_runs_a_plan_and_exits_by_itself(tmp_path, emulator):
    plan = write_plan(tmp_path / "plan.json", 4)
    started = time.monotonic()
    run = run_locust(
        tmp_path,
        MIX,
        args=(
            "--headless",
            "--processes",
            "2",
            "--host",
            emulator.address,
            "--plan",
            str(plan),
        ),
        timeout=60,
    )
    elapsed = time.monotonic() - started
    emulator.stop()

    assert run.returncode == 0, run.output
    assert elapsed < 30
    sent = [row for row in run.rows() if row["status"] != "DROPPED"]
    assert len(sent) == emulator.stats()["served"]
    assert len({row["worker"] for row in sent}) == 2


def test_a_worker_that_leaves_mid_run_keeps_what_it_sent_and_the_run_goes_on(
    tmp_path, emulator
):
    plan = write_plan(tmp_path / "plan.json", 9)
    cluster = Cluster(tmp_path, emulator.address, plan, workers=2)
    wait_until_served(emulator, 100)
    cluster.workers[1].send_signal(signal.SIGTERM)
    code = cluster.wait()
    emulator.stop()
    served = emulator.stats()["served"]

    assert code == 0, cluster.output()
    rows = cluster.rows()
    sent = [row for row in rows if row["status"] != "DROPPED"]
    assert len(sent) == served
    assert cluster.db("SELECT count(*) FROM metrics") == [(served,)]
    last_by_worker: dict[str, int] = {}
    for row in sent:
        last_by_worker[row["worker"]] = max(
            last_by_worker.get(row["worker"], 0), int(row["scheduled_ns"])
        )
    assert len(last_by_worker) == 2
    plan_start = min(int(row["scheduled_ns"]) for row in rows)
    ends = sorted((last - plan_start) / 1e9 for last in last_by_worker.values())
    assert (
        ends[0] < 6 and ends[1] > 8.5
    )  # one left early, the other ran the plan to its end
    assert "1 left" in cluster.output()
    # the departed worker's unsent share is recorded as dropped: nothing planned goes missing
    planned = planned_total(plan)
    orphans = [
        row
        for row in rows
        if row["error"] == "the worker that was to send it left the run"
    ]
    assert orphans
    assert abs(len(rows) - planned) <= 0.01 * planned
    per_instant = Counter((row["scenario"], row["scheduled_ns"]) for row in rows)
    assert max(per_instant.values()) == 1


def test_a_worker_that_crashes_leaves_every_planned_call_recorded_once(
    tmp_path, emulator
):
    plan = write_plan(tmp_path / "plan.json", 10)
    cluster = Cluster(tmp_path, emulator.address, plan, workers=2)
    wait_until_served(emulator, 100)
    cluster.workers[1].send_signal(signal.SIGKILL)
    code = cluster.wait()
    emulator.stop()

    assert code == 0, cluster.output()
    rows = cluster.rows()
    per_instant = Counter((row["scenario"], row["scheduled_ns"]) for row in rows)
    assert max(per_instant.values()) == 1
    planned = planned_total(plan)
    assert abs(len(rows) - planned) <= 0.01 * planned
    sent = [row for row in rows if row["status"] != "DROPPED"]
    # calls in flight when it died were served but never reported
    assert emulator.stats()["served"] - len(sent) < 40
