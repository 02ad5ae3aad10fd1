from __future__ import annotations

import csv
import json
import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from locust_hyperfaas.import_k6 import (
    ImportK6Error,
    duration_ms,
    import_k6,
    main,
    timestamp_ns,
)

FIXTURE = Path(__file__).parent / "fixtures" / "k6"
CSV_PATH = FIXTURE / "test_results.csv"
JSON_PATH = FIXTURE / "generated_scenarios.json"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
PLAN = json.loads(JSON_PATH.read_text())

HEADER = (
    "metric_name,timestamp,metric_value,error,group,proto,scenario,service,"
    "status,subproto,extra_tags,metadata"
)


@pytest.fixture
def db(tmp_path: Path) -> sqlite3.Connection:
    path = tmp_path / "metrics.db"
    import_k6(CSV_PATH, JSON_PATH, path)
    conn = sqlite3.connect(path)
    yield conn
    conn.close()


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def one_call(scenario: str, vu: int, it: int, second: int, status: int = 0) -> list:
    tags = "scenario_group=echo&image_tag=hyperfaas-echo:latest"
    meta = f"vu={vu}&iter={it}"
    head = f"{second},"
    return [
        f"grpc_req_duration,{head}5.5,,,,{scenario},leaf.Leaf,{status},,{tags},{meta}",
        f"callqueuedtimestamp,{head}1760000000123.456789,,,,{scenario},,,,{tags},{meta}",
        f"instanceid,{head}0,,,,{scenario},,,,{tags}&instanceId=abc,{meta}",
        f"data_sent,{head}700,,,,{scenario},,,,{tags},{meta}",
        f"iteration_duration,{head}6.0,,,,{scenario},,,,{tags},{meta}",
        f"iterations,{head}1,,,,{scenario},,,,{tags},{meta}",
    ]


def test_the_fixture_gives_one_metrics_row_per_call_the_leaf_served(db) -> None:
    (calls, distinct_ids) = db.execute(
        "SELECT count(*), count(DISTINCT request_id) FROM metrics"
    ).fetchone()

    assert calls == EXPECTED["calls_served"]
    assert distinct_ids == calls


def test_status_counts_match_what_the_leaf_answered(db) -> None:
    rows = db.execute("SELECT status, count(*) FROM metrics GROUP BY status")

    assert dict(rows) == EXPECTED["calls_by_status"]


def test_image_tags_and_function_ids_come_from_the_plan_metadata(db) -> None:
    by_tag = dict(db.execute("SELECT image_tag, count(*) FROM metrics GROUP BY 1"))
    ids = dict(db.execute("SELECT function, function_id FROM metrics GROUP BY 1, 2"))
    images = dict(db.execute("SELECT function_id, image_tag FROM function_images"))

    ok_by_tag = db.execute(
        "SELECT image_tag, count(*) FROM metrics WHERE status = 'OK' GROUP BY 1"
    )
    assert by_tag == EXPECTED["calls_by_image_tag"]
    assert dict(ok_by_tag) == EXPECTED["ok_by_image_tag"]
    metadata = PLAN["metadata"]
    assert ids == {
        "bfs": metadata["bfsFunctionId"],
        "echo": metadata["echoFunctionId"],
        "thumbnailer": metadata["thumbnailerFunctionId"],
    }
    assert images[metadata["echoFunctionId"]] == "hyperfaas-echo:latest"
    assert images[metadata["thumbnailerFunctionId"]] == (
        "hyperfaas-thumbnailer-json:latest"
    )


def test_one_instance_id_per_instance_the_leaf_started(db) -> None:
    (instances,) = db.execute(
        "SELECT count(DISTINCT instance_id) FROM metrics WHERE instance_id != ''"
    ).fetchone()
    (ok_without,) = db.execute(
        "SELECT count(*) FROM metrics WHERE status = 'OK' AND instance_id IS NULL"
    ).fetchone()

    assert instances == EXPECTED["instances_started"]
    assert ok_without == 0


def test_failed_calls_are_kept_with_their_status_and_without_trailers(db) -> None:
    rows = db.execute(
        "SELECT status, grpc_req_duration, callqueuedtimestamp, instance_id"
        " FROM metrics WHERE status != 'OK'"
    ).fetchall()

    assert len(rows) == EXPECTED["calls_served"] - EXPECTED["calls_by_status"]["OK"]
    assert {r[0] for r in rows} <= {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}
    assert all(r[1] > 0 and r[2] is None and r[3] is None for r in rows)


def test_grouping_by_image_tag_and_scenario_gives_one_group_per_function(db) -> None:
    groups = db.execute(
        "SELECT image_tag, scenario, count(*), avg(grpc_req_duration),"
        " min(data_sent), min(data_received), max(grpc_req_duration)"
        " FROM metrics WHERE status = 'OK' GROUP BY image_tag, scenario"
    ).fetchall()

    tags = [g[0] for g in groups]
    assert sorted(set(tags)) == sorted(EXPECTED["calls_by_image_tag"])
    assert sorted(g[1] for g in groups) == sorted(PLAN["scenarios"])
    for _tag, _scenario, count, mean_ms, sent, received, slowest_ms in groups:
        assert count >= 5
        assert 0.05 < mean_ms < slowest_ms < 5000
        assert sent > 100 and received > 100
    # echo sends 512 to 2048 random bytes and gets them back
    (echo_min_received,) = db.execute(
        "SELECT min(data_received) FROM metrics"
        " WHERE function = 'echo' AND status = 'OK'"
    ).fetchone()
    assert echo_min_received > 512


def test_trailer_times_are_unix_ns_inside_the_round_trip(db) -> None:
    started_ns, ended_ns = db.execute(
        "SELECT started_ns, ended_ns FROM runs"
    ).fetchone()
    rows = db.execute(
        "SELECT callqueuedtimestamp, gotresponsetimestamp, grpc_req_duration"
        " FROM metrics WHERE status = 'OK'"
    ).fetchall()

    assert rows
    for queued, got, latency_ms in rows:
        assert started_ns - 10**9 < queued <= got < ended_ns + 2 * 10**9
        assert (got - queued) / 1e6 < latency_ms


def test_trailer_values_keep_every_digit_k6_wrote(db) -> None:
    with open(CSV_PATH, newline="") as file:
        sample = next(
            r for r in csv.DictReader(file) if r["metric_name"] == "callqueuedtimestamp"
        )
    meta = dict(p.split("=") for p in sample["metadata"].split("&"))
    request_id = f"{sample['scenario']}/vu{meta['vu']}/iter{meta['iter']}"

    (stored,) = db.execute(
        "SELECT callqueuedtimestamp FROM metrics WHERE request_id = ?", (request_id,)
    ).fetchone()
    assert stored == int(Decimal(sample["metric_value"]) * 1_000_000)
    assert isinstance(stored, int)


def test_k6_timestamps_are_stored_as_whole_seconds(db) -> None:
    stamps = [r[0] for r in db.execute("SELECT timestamp FROM metrics")]

    assert all(isinstance(t, float) and t == int(t) for t in stamps)


def test_the_run_row_records_the_plan_and_the_import(db) -> None:
    db.row_factory = sqlite3.Row
    run = db.execute("SELECT * FROM runs").fetchone()

    assert run["source"] == "k6"
    assert run["status"] == "imported"
    assert run["seed"] == PLAN["metadata"]["seed"]
    assert json.loads(run["plan"]) == PLAN
    assert json.loads(run["configuration"]) == PLAN["metadata"]["configuration"]
    assert "import-k6" in run["command_line"]
    assert str(CSV_PATH) in run["command_line"]
    assert run["started_ns"] <= run["ended_ns"]


def test_scenarios_and_dropped_iterations_are_stored(db) -> None:
    scenarios = {
        r[0]: r[1:]
        for r in db.execute(
            "SELECT name, function, executor, duration_ms, rate, start_rate,"
            " target_rate, planned_calls FROM scenarios"
        )
    }
    dropped = db.execute("SELECT scenario, count(*) FROM dropped GROUP BY 1").fetchall()

    assert scenarios["echo_0"] == (
        "echo",
        "constant-arrival-rate",
        2000,
        10.0,
        None,
        None,
        20,
    )
    assert scenarios["bfs_0"] == (
        "bfs",
        "ramping-arrival-rate",
        3000,
        None,
        2.0,
        8.0,
        15,
    )
    assert set(scenarios) == set(PLAN["scenarios"])
    assert sum(n for _, n in dropped) == EXPECTED["dropped_iterations"]


def test_importing_the_same_files_again_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    first = import_k6(CSV_PATH, JSON_PATH, path)
    second = import_k6(CSV_PATH, JSON_PATH, path)

    assert not first.already_imported
    assert second.already_imported
    assert second.run_id == first.run_id
    with sqlite3.connect(path) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("runs", "metrics", "dropped", "scenarios", "functions")
        ]
    assert counts == [1, EXPECTED["calls_served"], EXPECTED["dropped_iterations"], 4, 3]


def test_the_command_line_imports_then_says_it_already_did(tmp_path, capsys) -> None:
    path = tmp_path / "metrics.db"
    args = ["--csv", str(CSV_PATH), "--json", str(JSON_PATH), "--db", str(path)]

    assert main(args, prog="locust-hyperfaas import-k6") == 0
    assert f"{EXPECTED['calls_served']} calls" in capsys.readouterr().out
    assert main(args, prog="locust-hyperfaas import-k6") == 0
    assert "already in" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["csv", "json"])
def test_a_missing_file_is_a_clear_error(tmp_path, capsys, missing) -> None:
    files = {"csv": CSV_PATH, "json": JSON_PATH}
    files[missing] = tmp_path / f"nothing.{missing}"
    args = ["--csv", str(files["csv"]), "--json", str(files["json"])]

    code = main([*args, "--db", str(tmp_path / "m.db")], prog="import-k6")

    assert code == 2
    assert f"nothing.{missing}: no such file" in capsys.readouterr().err
    with pytest.raises(ImportK6Error, match="no such file"):
        import_k6(files["csv"], files["json"], tmp_path / "m.db")


def test_a_csv_without_vu_and_iter_metadata_is_refused(tmp_path: Path) -> None:
    lines = [line.rsplit(",", 1)[0] + "," for line in one_call("echo_0", 1, 0, 10)]
    path = write_csv(tmp_path / "bare.csv", lines)

    with pytest.raises(ImportK6Error, match="'vu' and 'iter' system tags"):
        import_k6(path, JSON_PATH, tmp_path / "m.db")


def test_a_file_that_is_not_k6_output_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")

    with pytest.raises(ImportK6Error, match="missing columns metric_name"):
        import_k6(path, JSON_PATH, tmp_path / "m.db")


def test_repeated_vu_and_iteration_numbers_get_distinct_request_ids(tmp_path) -> None:
    # The same VU and iteration number in two scenarios, and again in one
    # scenario after that iteration ended: four calls, four ids.
    lines = (
        one_call("echo_0", 1, 0, 10)
        + one_call("echo_1", 1, 0, 11, status=14)
        + one_call("echo_0", 1, 0, 12)
        + one_call("echo_0", 2, 0, 12)
    )
    path = write_csv(tmp_path / "k6.csv", lines)
    plan = tmp_path / "plan.json"
    shutil.copy(JSON_PATH, plan)

    result = import_k6(path, plan, tmp_path / "m.db")

    with sqlite3.connect(tmp_path / "m.db") as conn:
        rows = conn.execute(
            "SELECT request_id, status, callqueuedtimestamp, instance_id,"
            " data_sent, iteration_duration FROM metrics ORDER BY id"
        ).fetchall()
    assert result.calls == 4
    assert [r[0] for r in rows] == [
        "echo_0/vu1/iter0",
        "echo_1/vu1/iter0",
        "echo_0/vu1/iter0#2",
        "echo_0/vu2/iter0",
    ]
    assert [r[1] for r in rows] == ["OK", "UNAVAILABLE", "OK", "OK"]
    assert rows[0][2:] == (1_760_000_000_123_456_789, "abc", 700, 6.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-05-26T18:06:48.123456789Z", 1_748_282_808_123_456_789),
        ("2025-05-26T18:06:48Z", 1_748_282_808_000_000_000),
        ("2025-05-26T20:06:48.5+02:00", 1_748_282_808_500_000_000),
        ("1748282808123456789", 1_748_282_808_123_456_789),
        ("1748282808123456.789", 1_748_282_808_123_456_789),
        ("1748282808123.456789", 1_748_282_808_123_456_789),
        ("1748282808.123456789", 1_748_282_808_123_456_789),
        ("", None),
        ("0", None),
    ],
)
def test_trailer_times_in_every_format_become_unix_ns(text, expected) -> None:
    assert timestamp_ns(text) == expected


def test_a_trailer_time_that_cannot_be_read_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        timestamp_ns("yesterday")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("60s", 60_000), ("1m30s", 90_000), ("1h30m", 5_400_000), ("500ms", 500)],
)
def test_k6_durations_are_read_in_ms(text, expected) -> None:
    assert duration_ms(text) == expected


def test_a_bad_duration_names_the_value() -> None:
    with pytest.raises(ImportK6Error, match="'ten seconds' is not a k6 duration"):
        duration_ms("ten seconds")


def test_ids_from_a_function_ids_map_and_tags_from_scenario_tags(tmp_path) -> None:
    plan = json.loads(JSON_PATH.read_text())
    metadata = plan["metadata"]
    ids = {f: metadata.pop(f"{f}FunctionId") for f in ("echo", "bfs", "thumbnailer")}
    metadata["functionIds"] = ids
    metadata["configuration"] = {"ECHO_IMAGE_TAG": "registry.local/echo:v2"}
    plan["scenarios"]["bfs_0"]["tags"]["image_tag"] = "registry.local/bfs:v3"
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))

    result = import_k6(CSV_PATH, plan_path, tmp_path / "m.db")

    assert result.functions == {
        "bfs": "registry.local/bfs:v3",
        "echo": "registry.local/echo:v2",
        "thumbnailer": "hyperfaas-thumbnailer-json:latest",
    }
    with sqlite3.connect(tmp_path / "m.db") as conn:
        stored = dict(conn.execute("SELECT name, function_id FROM functions"))
        tags = dict(conn.execute("SELECT function, image_tag FROM metrics GROUP BY 1"))
    assert stored == ids
    assert tags == result.functions
