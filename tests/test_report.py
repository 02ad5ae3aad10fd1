from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from locust_hyperfaas.import_k6 import import_k6
from locust_hyperfaas.recording.sqlite import SCHEMA_SQL
from locust_hyperfaas.report import PLOTS, ReportError, build_report, main

S = 1_000_000_000
OLD_START_NS = 1_790_000_000 * S
NEW_START_NS = 1_790_000_600 * S


@dataclass
class Calls:
    """The synthetic calls of one function, as the test expects them."""

    latency_ms: list[float] = field(default_factory=list)
    lateness_ms: list[float] = field(default_factory=list)
    inside_ms: list[float] = field(default_factory=list)
    cold_ms: list[float] = field(default_factory=list)
    warm_ms: list[float] = field(default_factory=list)
    instances: set[str] = field(default_factory=set)
    statuses: dict[str, int] = field(default_factory=dict)


def create_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_SQL)
    return conn


def add_run(conn: sqlite3.Connection, run_id: str, started_ns: int) -> None:
    conn.execute(
        "INSERT INTO runs (run_id, seed, started_ns, ended_ns, started_at, status,"
        " source) VALUES (?, 7, ?, ?, '2026-09-21T00:00:00Z', 'finished', 'locust')",
        (run_id, started_ns, started_ns + 12 * S),
    )


def add_scenario(conn, run_id, name, function, start_ns, rate, start, target, planned):
    conn.execute(
        "INSERT INTO scenarios (run_id, name, function, image_tag, executor,"
        " start_ns, duration_ms, rate, start_rate, target_rate, planned_calls)"
        " VALUES (?, ?, ?, ?, ?, ?, 10000, ?, ?, ?, ?)",
        (
            run_id,
            name,
            function,
            f"hyperfaas-{function}:latest",
            "constant-arrival-rate" if rate else "ramping-arrival-rate",
            start_ns,
            rate,
            start,
            target,
            planned,
        ),
    )


def add_calls(
    conn: sqlite3.Connection,
    run_id: str,
    function: str,
    scenario: str,
    start_ns: int,
    count: int,
    instances: int,
    rng: np.random.Generator,
    failures: dict[str, int],
) -> Calls:
    """``count`` calls over 10 s; instance k starts at call k * count / instances."""
    expected = Calls()
    sent = np.sort(start_ns + rng.integers(0, 10 * S, count))
    failed = iter([s for s, n in failures.items() for _ in range(n)])
    failed_at = set(rng.choice(np.arange(count // 2, count), sum(failures.values())))
    rows = []
    for i, sent_ns in enumerate(sent.tolist()):
        lateness = float(rng.uniform(0, 3))
        latency = float(rng.lognormal(1.5, 0.4))
        status, instance, queued, got = "OK", None, None, None
        if i in failed_at:
            status = next(failed)
            expected.statuses[status] = expected.statuses.get(status, 0) + 1
        else:
            started = 1 + i * instances // count
            instance = f"{function}-{rng.integers(1, started + 1)}"
            cold = instance not in expected.instances
            if cold:
                latency += 300
            expected.instances.add(instance)
            inside = round(latency * 0.25, 6)
            queued = sent_ns + 1_000_000
            got = queued + round(inside * 1e6)
            expected.inside_ms.append((got - queued) / 1e6)
            (expected.cold_ms if cold else expected.warm_ms).append(latency)
            expected.latency_ms.append(latency)
        expected.lateness_ms.append(lateness)
        scheduled_ns = sent_ns - round(lateness * 1e6)
        rows.append(
            (run_id, sent_ns / 1e9, scenario, function, f"hyperfaas-{function}:latest")
            + (instance, f"w-{function}-{i}", latency, queued, got, 100, 100)
            + (latency + lateness, function, f"id-{function}", status)
            + (scheduled_ns, sent_ns, lateness, "local")
        )
    rng.shuffle(rows)  # ids must not give the time order away
    conn.executemany(
        "INSERT INTO metrics (run_id, timestamp, scenario, service, image_tag,"
        " instance_id, request_id, grpc_req_duration, callqueuedtimestamp,"
        " gotresponsetimestamp, data_sent, data_received, iteration_duration,"
        " function, function_id, status, scheduled_ns, sent_ns, lateness_ms, worker)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return expected


def add_dropped(conn, run_id, function, scenario, count) -> None:
    conn.executemany(
        "INSERT INTO dropped (run_id, request_id, function, scenario, scheduled_ns)"
        " VALUES (?, ?, ?, ?, ?)",
        [
            (run_id, f"d-{scenario}-{n}", function, scenario, NEW_START_NS)
            for n in range(count)
        ],
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> tuple[Path, dict[str, Calls]]:
    path = tmp_path_factory.mktemp("db") / "metrics.db"
    rng = np.random.default_rng(20260921)
    conn = create_db(path)
    with conn:
        add_run(conn, "old-run", OLD_START_NS)
        add_scenario(
            conn, "old-run", "echo-0", "echo", OLD_START_NS, 3.0, None, None, 30
        )
        add_calls(conn, "old-run", "echo", "echo-0", OLD_START_NS, 30, 1, rng, {})

        add_run(conn, "new-run", NEW_START_NS)
        add_scenario(
            conn, "new-run", "echo-0", "echo", NEW_START_NS, 20.0, None, None, 200
        )
        add_scenario(
            conn, "new-run", "bfs-0", "bfs", NEW_START_NS, None, 5.0, 15.0, 100
        )
        echo_failures = {"UNAVAILABLE": 2, "RESOURCE_EXHAUSTED": 1}
        echo = add_calls(
            conn, "new-run", "echo", "echo-0", NEW_START_NS, 180, 3, rng, echo_failures
        )
        bfs = add_calls(
            conn,
            "new-run",
            "bfs",
            "bfs-0",
            NEW_START_NS,
            90,
            2,
            rng,
            {"DEADLINE_EXCEEDED": 1},
        )
        add_dropped(conn, "new-run", "echo", "echo-0", 5)
        add_dropped(conn, "new-run", "bfs", "bfs-0", 2)
    conn.close()
    return path, {"echo": echo, "bfs": bfs}


@pytest.fixture(scope="module")
def report(database, tmp_path_factory):
    path, _ = database
    return build_report(path, out_dir=tmp_path_factory.mktemp("report"))


def percentiles(values: list[float], levels: list[int]) -> list[float]:
    return [float(v) for v in np.percentile(values, levels)]


def test_the_latest_run_is_reported_by_default(report) -> None:
    assert report.run_id == "new-run"
    assert report.calls == 270
    assert report.failures == 4
    assert report.dropped == 7
    assert not report.empty


def test_calls_failures_dropped_and_planned_per_function(report, database) -> None:
    _, expected = database
    echo, bfs = report.functions["echo"], report.functions["bfs"]

    assert (echo.calls, echo.ok, echo.dropped, echo.planned_calls) == (180, 177, 5, 200)
    assert echo.failures == {"RESOURCE_EXHAUSTED": 1, "UNAVAILABLE": 2}
    assert (bfs.calls, bfs.ok, bfs.dropped, bfs.planned_calls) == (90, 89, 2, 100)
    assert bfs.failures == expected["bfs"].statuses == {"DEADLINE_EXCEEDED": 1}


def test_planned_and_achieved_rates_are_over_the_scenario_span(report) -> None:
    echo, bfs = report.scenarios["echo-0"], report.scenarios["bfs-0"]

    assert echo.span_s == pytest.approx(10.0)
    assert echo.planned_rate == pytest.approx(20.0)
    assert echo.achieved_rate == pytest.approx(18.0)
    assert bfs.planned_rate == pytest.approx(10.0)
    assert bfs.achieved_rate == pytest.approx(9.0)


@pytest.mark.parametrize("function", ["echo", "bfs"])
def test_latency_percentiles_match_numpy(report, database, function) -> None:
    _, expected = database
    got = report.functions[function].latency_ms
    want = expected[function].latency_ms

    assert got.count == len(want)
    assert [got.p50, got.p90, got.p95, got.p99] == pytest.approx(
        percentiles(want, [50, 90, 95, 99])
    )
    assert got.max == pytest.approx(max(want))


def test_lateness_percentiles_cover_every_sent_call(report, database) -> None:
    _, expected = database
    got = report.functions["echo"].lateness_ms
    want = expected["echo"].lateness_ms

    assert got.count == 180
    assert [got.p50, got.p99, got.max] == pytest.approx(
        [*percentiles(want, [50, 99]), max(want)]
    )


@pytest.mark.parametrize("function", ["echo", "bfs"])
def test_cold_starts_are_the_first_call_of_each_instance(report, database, function):
    _, expected = database
    stats = report.functions[function]
    calls = expected[function]

    assert stats.cold_starts == len(calls.instances) == len(calls.cold_ms)
    assert stats.cold_latency_ms.count == len(calls.cold_ms)
    assert stats.cold_latency_ms.p50 == pytest.approx(float(np.median(calls.cold_ms)))
    assert stats.warm_latency_ms.count == len(calls.warm_ms)
    assert stats.warm_latency_ms.p99 == pytest.approx(
        float(np.percentile(calls.warm_ms, 99))
    )
    assert stats.cold_latency_ms.p50 > 300 > stats.warm_latency_ms.max


def test_latency_splits_into_inside_the_worker_and_the_rest(report, database) -> None:
    _, expected = database
    stats = report.functions["echo"]
    inside = np.array(expected["echo"].inside_ms)
    rest = np.array(expected["echo"].latency_ms) - inside

    assert stats.inside_ms.count == 177
    assert stats.inside_ms.p50 == pytest.approx(float(np.median(inside)))
    assert stats.inside_ms.p99 == pytest.approx(float(np.percentile(inside, 99)))
    assert stats.outside_ms.p50 == pytest.approx(float(np.median(rest)))


def test_every_plot_is_a_png_of_reasonable_size(report) -> None:
    assert set(report.plots) == set(PLOTS)
    for name, path in report.plots.items():
        assert path == report.out_dir / f"{name}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 10_000
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.width >= 800 and image.height >= 400


def test_report_md_holds_the_tables(report) -> None:
    text = report.markdown_path.read_text()

    assert text == report.markdown
    for title in ("### Calls", "### Latency of OK calls (ms)", "### Cold starts"):
        assert title in text
    assert re.search(
        r"\| echo \| \(all\) \| 180 \| 177 \| RESOURCE_EXHAUSTED: 1, UNAVAILABLE: 2"
        r" \| 5 \| 200 \| 20\.00 \| 18\.00 \|",
        text,
    )
    assert "| bfs | bfs-0 | 90 | 89 | DEADLINE_EXCEEDED: 1 | 2 | 100 |" in text
    assert "![rate](rate.png)" in text


def test_report_html_embeds_the_plots_and_tables(report) -> None:
    text = report.html_path.read_text()

    assert text.count("data:image/png;base64,") == len(PLOTS)
    assert text.count("<table>") == 5
    assert "<td>echo-0</td>" in text


def test_another_run_is_reported_with_its_own_numbers(database, tmp_path) -> None:
    path, _ = database
    result = build_report(path, "old-run", tmp_path)

    assert result.run_id == "old-run"
    assert result.calls == result.functions["echo"].calls == 30
    assert set(result.functions) == {"echo"}
    assert result.functions["echo"].cold_starts == 1
    assert result.dropped == 0


def test_the_command_prints_the_report_and_writes_it(database, tmp_path, capsys):
    path, _ = database
    code = main([str(path), "--out", str(tmp_path / "out")], prog="report")

    out = capsys.readouterr().out
    assert code == 0
    assert "# Run new-run" in out
    assert (tmp_path / "out" / "report.html").is_file()


def test_list_shows_every_run(database, capsys) -> None:
    path, _ = database

    assert main([str(path), "--list"], prog="report") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["old-run", "new-run"]
    assert lines[2].split()[-3:] == ["270", "4", "7"]


def test_a_database_that_does_not_exist_exits_2(tmp_path, capsys) -> None:
    code = main([str(tmp_path / "nothing.db"), "--out", str(tmp_path)], prog="report")

    assert code == 2
    assert "nothing.db: no such database file" in capsys.readouterr().err
    assert not (tmp_path / "nothing.db").exists()


def test_a_database_without_runs_exits_2(tmp_path, capsys) -> None:
    path = tmp_path / "metrics.db"
    create_db(path).close()

    assert main([str(path), "--out", str(tmp_path / "out")], prog="report") == 2
    assert f"no runs in {path}" in capsys.readouterr().err
    assert main([str(path), "--list"], prog="report") == 2


def test_an_unknown_run_exits_2_and_names_the_known_ones(database, tmp_path, capsys):
    path, _ = database

    code = main([str(path), "--run", "nope", "--out", str(tmp_path)], prog="report")

    err = capsys.readouterr().err
    assert code == 2
    assert "unknown run 'nope'" in err
    assert "known runs: old-run, new-run" in err
    with pytest.raises(ReportError, match="unknown run"):
        build_report(path, "nope", tmp_path)


def test_a_run_without_calls_still_gets_a_report_of_zeros(tmp_path, capsys) -> None:
    path = tmp_path / "metrics.db"
    with create_db(path) as conn:
        add_run(conn, "idle-run", NEW_START_NS)
        add_scenario(
            conn, "idle-run", "echo-0", "echo", NEW_START_NS, 2.0, None, None, 20
        )

    code = main([str(path), "--out", str(tmp_path / "out")], prog="report")

    assert code == 2
    assert "idle-run has no calls" in capsys.readouterr().err
    result = build_report(path, out_dir=tmp_path / "again")
    assert result.empty
    echo = result.functions["echo"]
    assert (echo.calls, echo.planned_calls, echo.achieved_rate) == (0, 20, 0.0)
    assert "has no calls" in result.markdown_path.read_text()
    assert all(p.stat().st_size > 5_000 for p in result.plots.values())


def test_a_run_imported_from_k6_is_reported(tmp_path) -> None:
    fixture = Path(__file__).parent / "fixtures" / "k6"
    expected = json.loads((fixture / "expected.json").read_text())
    path = tmp_path / "metrics.db"
    imported = import_k6(
        fixture / "test_results.csv", fixture / "generated_scenarios.json", path
    )

    result = build_report(path, out_dir=tmp_path / "out")

    assert result.run_id == imported.run_id
    assert result.calls == expected["calls_served"]
    assert (
        result.failures == expected["calls_served"] - expected["calls_by_status"]["OK"]
    )
    assert result.dropped == expected["dropped_iterations"]
    cold_starts = sum(f.cold_starts for f in result.functions.values())
    assert cold_starts == expected["instances_started"]
    assert result.functions["bfs"].planned_calls == 15
    assert (
        result.functions["echo"].latency_ms.count
        == expected["ok_by_image_tag"]["hyperfaas-echo:latest"]
    )
