"""How closely one Locust process sends a plan's calls at their planned instants.

Each case writes a plan file with one echo scenario, starts the project's leaf
emulator on 127.0.0.1, runs real headless Locust against it
(``locust -f locustfiles/echo.py --headless --host ADDRESS --plan FILE``) and
reads the run's ``requests.csv``. The cases:

- ``constant``: a constant arrival rate of ``--rate`` calls/s.
- ``context``: the same at each of ``--context-rates`` (500 and 2000 calls/s).
- ``ramping``: a linear ramp from a tenth of ``--rate`` to ``--rate``.
- ``slow-leaf``: 200 calls/s against an emulator that adds 200 ms to every
  call, with at most 20 VUs: about half the calls find no free VU and are
  recorded as dropped, and the calls that are sent should still leave on time.

Every case runs ``--repeat`` times, each against a fresh emulator and after
waiting (up to ``--settle`` seconds) for the machine to be quiet; the table
shows the median of the repetitions and, in brackets, their minimum and
maximum. ``--out`` gets ``table.md``, ``summary.json`` and, for every run,
``<case>/run-<n>/`` with ``plan.json``, ``locust.log``, ``emulator.log`` and
the run's ``results/`` (``requests.csv``, ``metrics.db``).

Columns of the table and of ``summary.json`` (one entry per run):

==================  =======  ================================================
column              unit     meaning
==================  =======  ================================================
planned             calls    ``arrivals.planned_count`` of the scenario
sent                calls    rows whose status is not ``DROPPED``
dropped             calls    ``DROPPED`` rows (no free VU at the instant)
failed              calls    sent rows whose status is not ``OK``, or that
                             carry an error
sent / planned      %        sent calls over planned calls
recorded / planned  %        (sent + dropped) over planned calls
rate                calls/s  sent calls over the span of all the rows'
                             ``scheduled_ns`` (first to last planned instant)
lateness            ms       ``lateness_ms`` of sent calls: p50, p99, max
latency             ms       ``latency_ms`` of sent calls: p50, p99
Locust CPU          %        CPU time (user + system) of the Locust process
                             while the plan ran, over the plan's wall time;
                             100 % is one core
Locust CPU total    s        CPU time of the whole Locust process, start-up
                             and shut-down included
emulator CPU        %        the same as Locust CPU, for the emulator
CPU wait            %        share of the plan's wall time in which some
                             runnable task waited for a CPU (Linux
                             ``/proc/pressure/cpu``, "some"): the cores were
                             oversubscribed, by the run itself or by others
machine load        %        CPU use of the whole machine in the second
before                       before the run started (100 % is one core)
==================  =======  ================================================

Percentiles are nearest-rank: p99 is the smallest value that at least 99 % of
the values do not exceed.

    .venv/bin/python benchmarks/arrival_accuracy.py --repeat 3 --duration 20s
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from locust_hyperfaas.arrivals import MODES, planned_count
from locust_hyperfaas.config import format_duration_ms, parse_duration_ms
from locust_hyperfaas.emulator import EmulatorProcess
from locust_hyperfaas.plan import load_plan

ROOT = Path(__file__).resolve().parent.parent
LOCUST = Path(sys.executable).parent / "locust"
ECHO_LOCUSTFILE = ROOT / "locustfiles" / "echo.py"
CASES = ("constant", "context", "ramping", "slow-leaf")

SEED = 1
# Locust gets this long beyond the plan before it is killed.
RUN_MARGIN_SEC = 90.0
SAMPLE_INTERVAL_SEC = 0.1
PSI_CPU_FILE = "/proc/pressure/cpu"
# VUs of the cases against a fast target: far more than 1,000 calls/s of
# ~1 ms calls need, so that drops only come from stalls in Locust.
PREALLOCATED_VUS = 50
MAX_VUS = 200
SLOW_LEAF_RATE = 200.0
SLOW_LEAF_LATENCY_MS = 200
SLOW_LEAF_PREALLOCATED_VUS = 10
SLOW_LEAF_MAX_VUS = 20
# Below this machine-wide CPU use (in % of one core) a run may start.
QUIET_CPU_PCT = 30.0
GOAL_SENT_RATIO = 0.99
GOAL_LATENESS_P99_MS = 2.0
# Variables that would change the run behind the plan file's back.
_FOREIGN_ENV_PREFIXES = (
    "LOCUST_",
    "HYPERFAAS_",
    "WORKLOAD_",
    "ECHO_",
    "BFS_",
    "THUMBNAILER_",
)


@dataclass(frozen=True)
class Case:
    """One benchmark case: a plan of one echo scenario and the emulator's options."""

    name: str
    label: str
    scenario: dict[str, Any]
    duration_ms: int
    emulator_args: tuple[str, ...] = ()

    def plan_document(self) -> dict[str, Any]:
        total = format_duration_ms(self.duration_ms)
        return {
            "metadata": {"seed": SEED, "totalDuration": total},
            "scenarios": {"echo-0": self.scenario},
        }


@dataclass
class RunResult:
    """The measurements of one run of one case (one entry of summary.json)."""

    case: str
    repetition: int
    returncode: int
    planned: int
    sent: int
    dropped: int
    failed: int
    sent_ratio: float
    recorded_ratio: float
    planned_rate: float
    rate: float
    lateness_p50_ms: float
    lateness_p99_ms: float
    lateness_max_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    locust_cpu_pct: float
    locust_cpu_total_s: float
    locust_wall_s: float
    emulator_cpu_pct: float
    cpu_wait_pct: float
    load_before_pct: float
    run_dir: str
    statuses: dict[str, int] = field(default_factory=dict)


@dataclass
class CpuSamples:
    """(Unix ns, seconds) samples of a growing CPU-time counter."""

    points: list[tuple[int, float]] = field(default_factory=list)

    def add(self, seconds: float | None) -> None:
        if seconds is not None:
            self.points.append((time.time_ns(), seconds))

    def share(self, start_ns: int, end_ns: int) -> float:
        """Counter seconds per wall second between the samples around the window."""
        if not self.points:
            return math.nan
        before = [p for p in self.points if p[0] <= start_ns] or self.points[:1]
        after = [p for p in self.points if p[0] >= end_ns] or self.points[-1:]
        first, last = before[-1], after[0]
        if last[0] <= first[0]:
            return math.nan
        return (last[1] - first[1]) / ((last[0] - first[0]) / 1e9)


def process_cpu_s(process: psutil.Process) -> float | None:
    """User plus system CPU seconds of a running process, threads included."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def cpu_pressure_s() -> float | None:
    """Seconds in which some runnable task waited for a CPU (Linux PSI), or None."""
    try:
        with open(PSI_CPU_FILE) as handle:
            for line in handle:
                if line.startswith("some "):
                    fields = dict(item.split("=") for item in line.split()[1:])
                    return int(fields["total"]) / 1e6
    except (OSError, KeyError, ValueError):
        return None
    return None


@dataclass
class Samples:
    """CPU time of Locust and the emulator, and the machine's CPU wait, sampled together."""

    locust: CpuSamples = field(default_factory=CpuSamples)
    emulator: CpuSamples = field(default_factory=CpuSamples)
    pressure: CpuSamples = field(default_factory=CpuSamples)

    def take(self, locust: psutil.Process, emulator: psutil.Process) -> None:
        self.locust.add(process_cpu_s(locust))
        self.emulator.add(process_cpu_s(emulator))
        self.pressure.add(cpu_pressure_s())


# --- cases --------------------------------------------------------------------


def constant_scenario(rate: float, duration_ms: int) -> dict[str, Any]:
    """A constant-arrival-rate echo scenario with VUs to spare for a fast target."""
    return {
        "executor": "constant-arrival-rate",
        "function": "echo",
        "rate": rate,
        "timeUnit": "1s",
        "duration": format_duration_ms(duration_ms),
        "startTime": "0s",
        "preAllocatedVUs": PREALLOCATED_VUS,
        "maxVUs": MAX_VUS,
    }


def build_cases(args: argparse.Namespace) -> list[Case]:
    """The cases ``--cases`` asks for, in the order of CASES."""
    duration_ms = args.duration_ms
    cases: list[Case] = []
    if "constant" in args.cases:
        cases.append(
            Case(
                f"constant-{args.rate:g}",
                f"constant {args.rate:g}/s",
                constant_scenario(args.rate, duration_ms),
                duration_ms,
            )
        )
    if "context" in args.cases:
        for rate in args.context_rates:
            cases.append(
                Case(
                    f"constant-{rate:g}",
                    f"constant {rate:g}/s",
                    constant_scenario(rate, duration_ms),
                    duration_ms,
                )
            )
    if "ramping" in args.cases:
        start = args.rate / 10
        cases.append(
            Case(
                f"ramping-{start:g}-{args.rate:g}",
                f"ramping {start:g} -> {args.rate:g}/s",
                {
                    "executor": "ramping-arrival-rate",
                    "function": "echo",
                    "startRate": start,
                    "stages": [
                        {
                            "target": args.rate,
                            "duration": format_duration_ms(duration_ms),
                        }
                    ],
                    "timeUnit": "1s",
                    "startTime": "0s",
                    "preAllocatedVUs": PREALLOCATED_VUS,
                    "maxVUs": MAX_VUS,
                },
                duration_ms,
            )
        )
    if "slow-leaf" in args.cases:
        scenario = constant_scenario(SLOW_LEAF_RATE, duration_ms)
        scenario.update(
            preAllocatedVUs=SLOW_LEAF_PREALLOCATED_VUS, maxVUs=SLOW_LEAF_MAX_VUS
        )
        cases.append(
            Case(
                "slow-leaf",
                f"slow leaf {SLOW_LEAF_RATE:g}/s, +{SLOW_LEAF_LATENCY_MS} ms, "
                f"{SLOW_LEAF_MAX_VUS} VUs",
                scenario,
                duration_ms,
                ("--extra-latency-ms", str(SLOW_LEAF_LATENCY_MS)),
            )
        )
    return cases


# --- one run ------------------------------------------------------------------


def locust_env(results_dir: Path) -> dict[str, str]:
    """This environment without workload variables, writing to ``results_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_FOREIGN_ENV_PREFIXES)
    }
    env["HYPERFAAS_RESULTS_DIR"] = str(results_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_locust(
    command: Sequence[str],
    env: dict[str, str],
    log: Path,
    timeout_s: float,
    emulator: psutil.Process,
) -> tuple[int, float, float, Samples]:
    """Run Locust to its end, sampling the CPU time it and ``emulator`` use.

    Answers the exit code, Locust's CPU seconds and wall seconds, and the
    samples. The CPU seconds come from the kernel's accounting of the reaped
    child (``wait4``), threads included.
    """
    samples = Samples()
    started = time.monotonic()
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    watched = psutil.Process(process.pid)
    deadline = started + timeout_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            break
        samples.take(watched, emulator)
        if time.monotonic() > deadline:
            print(f"  Locust ran past {timeout_s:.0f} s; killing it", file=sys.stderr)
            process.send_signal(signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(SAMPLE_INTERVAL_SEC)
    wall_s = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    cpu_s = usage.ru_utime + usage.ru_stime
    return process.returncode, cpu_s, wall_s, samples


def run_case(
    case: Case,
    repetition: int,
    args: argparse.Namespace,
) -> RunResult:
    """Run one repetition of ``case`` against a fresh emulator and measure it.

    Once the emulator listens, waits up to ``--settle`` seconds for a quiet
    machine.
    """
    out_dir, mode = args.out, args.arrivals
    run_dir = out_dir / case.name / f"run-{repetition}"
    run_dir.mkdir(parents=True, exist_ok=True)
    plan_path = run_dir / "plan.json"
    plan_path.write_text(json.dumps(case.plan_document(), indent=2) + "\n")

    emulator = EmulatorProcess.start(
        extra_args=("--cold-start-ms", "0", *case.emulator_args),
        log_file=run_dir / "emulator.log",
    )
    try:
        load_before_pct = wait_for_quiet(args.settle)
        if load_before_pct >= QUIET_CPU_PCT:
            print(
                f"  the machine is busy ({load_before_pct:.0f} % of a core); "
                "running anyway",
                file=sys.stderr,
            )
        command = [
            str(LOCUST),
            *("-f", str(args.locustfile), "--headless"),
            *("--host", emulator.address, "--plan", str(plan_path)),
            *("--arrivals", mode),
        ]
        returncode, cpu_s, wall_s, samples = run_locust(
            command,
            locust_env(run_dir / "results"),
            run_dir / "locust.log",
            case.duration_ms / 1000 + RUN_MARGIN_SEC,
            psutil.Process(emulator.pid),
        )
    finally:
        emulator.stop()

    return measure(
        case,
        repetition,
        run_dir,
        mode,
        returncode=returncode,
        cpu_s=cpu_s,
        wall_s=wall_s,
        samples=samples,
        load_before_pct=load_before_pct,
    )


def wait_for_quiet(limit_s: float) -> float:
    """Wait up to ``limit_s`` for the machine to be nearly idle; answer its load.

    The load is the CPU the whole machine used over the last second, in % of
    one core. Other work on a shared machine skews every number here.
    """
    deadline = time.monotonic() + limit_s
    while True:
        busy = psutil.cpu_percent(interval=1.0) * (psutil.cpu_count() or 1)
        if busy < QUIET_CPU_PCT or time.monotonic() >= deadline:
            return busy
        time.sleep(1.0)


# --- measuring ----------------------------------------------------------------


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values (p in 0..100); NaN when empty."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def measure(
    case: Case,
    repetition: int,
    run_dir: Path,
    mode: str,
    *,
    returncode: int,
    cpu_s: float,
    wall_s: float,
    samples: Samples,
    load_before_pct: float,
) -> RunResult:
    """Read the run's requests.csv and turn it into a RunResult."""
    plan = load_plan(run_dir / "plan.json")
    scenario = plan.scenarios[0]
    planned = planned_count(scenario, mode, plan.seed)

    rows_path = run_dir / "results" / "requests.csv"
    rows: list[dict[str, str]] = []
    if rows_path.exists():
        with open(rows_path, newline="") as handle:
            rows = [r for r in csv.DictReader(handle) if r["scenario"] == scenario.name]
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    sent_rows = [r for r in rows if r["status"] != "DROPPED"]
    dropped = len(rows) - len(sent_rows)
    failed = sum(1 for r in sent_rows if r["status"] != "OK" or r["error"])

    scheduled = [int(r["scheduled_ns"]) for r in rows if r["scheduled_ns"]]
    first_ns, last_ns = (min(scheduled), max(scheduled)) if scheduled else (0, 0)
    span_s = (last_ns - first_ns) / 1e9
    lateness = sorted(float(r["lateness_ms"]) for r in sent_rows if r["lateness_ms"])
    latency = sorted(float(r["latency_ms"]) for r in sent_rows if r["latency_ms"])
    locust_share = samples.locust.share(first_ns, last_ns)
    emulator_share = samples.emulator.share(first_ns, last_ns)

    return RunResult(
        case=case.name,
        repetition=repetition,
        returncode=returncode,
        planned=planned,
        sent=len(sent_rows),
        dropped=dropped,
        failed=failed,
        sent_ratio=len(sent_rows) / planned if planned else math.nan,
        recorded_ratio=len(rows) / planned if planned else math.nan,
        planned_rate=planned / (scenario.duration_ms / 1000),
        rate=len(sent_rows) / span_s if span_s > 0 else math.nan,
        lateness_p50_ms=percentile(lateness, 50),
        lateness_p99_ms=percentile(lateness, 99),
        lateness_max_ms=lateness[-1] if lateness else math.nan,
        latency_p50_ms=percentile(latency, 50),
        latency_p99_ms=percentile(latency, 99),
        locust_cpu_pct=100 * locust_share,
        locust_cpu_total_s=cpu_s,
        locust_wall_s=wall_s,
        emulator_cpu_pct=100 * emulator_share,
        cpu_wait_pct=100 * samples.pressure.share(first_ns, last_ns),
        load_before_pct=load_before_pct,
        run_dir=str(run_dir),
        statuses=statuses,
    )


# --- the table ----------------------------------------------------------------


def spread(
    results: Sequence[RunResult], value: Callable[[RunResult], float], fmt: str
) -> str:
    """Median of the repetitions, with [min–max] when there are several."""
    values = [v for v in (value(r) for r in results) if not math.isnan(v)]
    if not values:
        return "n/a"
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} [{min(values):{fmt}}–{max(values):{fmt}}]"


COLUMNS: tuple[tuple[str, Callable[[RunResult], float], str], ...] = (
    ("planned", lambda r: r.planned, ".0f"),
    ("sent", lambda r: r.sent, ".0f"),
    ("dropped", lambda r: r.dropped, ".0f"),
    ("failed", lambda r: r.failed, ".0f"),
    ("sent / planned %", lambda r: 100 * r.sent_ratio, ".2f"),
    ("recorded / planned %", lambda r: 100 * r.recorded_ratio, ".2f"),
    ("rate /s (planned)", lambda r: r.planned_rate, ".0f"),
    ("rate /s (sent)", lambda r: r.rate, ".1f"),
    ("lateness p50 ms", lambda r: r.lateness_p50_ms, ".3f"),
    ("lateness p99 ms", lambda r: r.lateness_p99_ms, ".2f"),
    ("lateness max ms", lambda r: r.lateness_max_ms, ".1f"),
    ("latency p50 ms", lambda r: r.latency_p50_ms, ".2f"),
    ("latency p99 ms", lambda r: r.latency_p99_ms, ".1f"),
    ("Locust CPU %", lambda r: r.locust_cpu_pct, ".0f"),
    ("Locust CPU total s", lambda r: r.locust_cpu_total_s, ".1f"),
    ("emulator CPU %", lambda r: r.emulator_cpu_pct, ".0f"),
    ("CPU wait %", lambda r: r.cpu_wait_pct, ".0f"),
    ("machine load before %", lambda r: r.load_before_pct, ".0f"),
)


def markdown_table(cases: Sequence[Case], results: Sequence[RunResult]) -> str:
    """One row per measurement, one column per case (the cases are few)."""
    by_case = [(c, [r for r in results if r.case == c.name]) for c in cases]
    header = ["", *(f"{c.label} (n={len(rs)})" for c, rs in by_case)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "---|" + "---:|" * len(by_case),
    ]
    for title, value, fmt in COLUMNS:
        cells = [spread(rs, value, fmt) for _, rs in by_case]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goal_line(case: Case, results: Sequence[RunResult]) -> str:
    """Whether the median run of ``case`` meets the project's accuracy goal."""
    runs = [r for r in results if r.case == case.name]
    if not runs:
        return ""
    ratio = statistics.median(r.sent_ratio for r in runs)
    p99 = statistics.median(r.lateness_p99_ms for r in runs)
    met = ratio >= GOAL_SENT_RATIO and p99 < GOAL_LATENESS_P99_MS
    return (
        f"Goal at {case.label} (sent >= {100 * GOAL_SENT_RATIO:g} % of planned, "
        f"lateness p99 < {GOAL_LATENESS_P99_MS:g} ms): "
        f"{'met' if met else 'MISSED'} (median sent {100 * ratio:.2f} %, "
        f"median lateness p99 {p99:.2f} ms)"
    )


# --- command line -------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure how accurately one Locust process sends a plan's "
        "calls at their planned instants, against the leaf emulator.",
    )
    parser.add_argument(
        "--rate", type=float, default=1000.0, help="calls/s of the constant case"
    )
    parser.add_argument(
        "--context-rates",
        default="500,2000",
        help="comma-separated calls/s of the context case ('' for none)",
    )
    parser.add_argument(
        "--duration", default="20s", help="length of every scenario, e.g. 20s"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of every case (median shown)"
    )
    parser.add_argument(
        "--arrivals",
        choices=MODES,
        default="even",
        help="planned instants evenly spaced (as k6 plans them) or a Poisson process",
    )
    parser.add_argument(
        "--cases",
        default=",".join(CASES),
        help=f"comma-separated cases to run, of {', '.join(CASES)}",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to "
        f"use under {QUIET_CPU_PCT:g} %% of a core",
    )
    parser.add_argument(
        "--locustfile",
        type=Path,
        default=ECHO_LOCUSTFILE,
        help="locustfile with an EchoUser and an arrival shape (default "
        "locustfiles/echo.py); for trying a changed setup on the same cases",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for plans, logs, results and summary (default "
        "results/bench/<UTC time>)",
    )
    args = parser.parse_args(None if argv is None else list(argv))

    try:
        args.duration_ms = parse_duration_ms(args.duration)
    except ValueError:
        parser.error(f"--duration {args.duration!r} is not a duration such as 20s")
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(
            f"--cases: unknown {', '.join(unknown)}; known: {', '.join(CASES)}"
        )
    try:
        args.context_rates = [
            float(r) for r in args.context_rates.split(",") if r.strip()
        ]
    except ValueError:
        parser.error(f"--context-rates {args.context_rates!r} is not a list of numbers")
    if args.rate <= 0 or args.repeat < 1 or args.duration_ms <= 0:
        parser.error("--rate, --repeat and --duration must be above 0")
    if args.out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        args.out = ROOT / "results" / "bench" / stamp
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cases = build_cases(args)
    args.out.mkdir(parents=True, exist_ok=True)
    total = len(cases) * args.repeat
    print(
        f"{total} runs of {format_duration_ms(args.duration_ms)}, "
        f"{args.arrivals} arrivals, {os.cpu_count()} CPUs; output in {args.out}",
        file=sys.stderr,
    )

    results: list[RunResult] = []
    # Repetitions go round the cases, so that a noisy minute hits every case once.
    for repetition in range(1, args.repeat + 1):
        for case in cases:
            result = run_case(case, repetition, args)
            results.append(result)
            print(
                f"  {case.name} #{repetition}: exit {result.returncode}, "
                f"sent {result.sent}/{result.planned}, dropped {result.dropped}, "
                f"lateness p99 {result.lateness_p99_ms:.2f} ms, "
                f"Locust CPU {result.locust_cpu_pct:.0f} %, "
                f"CPU wait {result.cpu_wait_pct:.0f} %",
                file=sys.stderr,
            )
    (args.out / "summary.json").write_text(
        json.dumps([asdict(r) for r in results], indent=2) + "\n"
    )

    table = markdown_table(cases, results)
    lines = [table]
    main_case = next((c for c in cases if c.name == f"constant-{args.rate:g}"), None)
    if main_case is not None:
        lines += ["", goal_line(main_case, results)]
    report = "\n".join(lines) + "\n"
    (args.out / "table.md").write_text(report)
    print(report)
    return 1 if any(r.returncode != 0 for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
