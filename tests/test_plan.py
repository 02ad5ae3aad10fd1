import json
import os
import random
import subprocess
import sys

import pytest

from locust_hyperfaas.config import load_settings, settings_table
from locust_hyperfaas.exceptions import PlanError
from locust_hyperfaas.functions import registry
from locust_hyperfaas.plan import (
    CONSTANT,
    PLAN_FILE_NAME,
    RAMPING,
    Plan,
    Scenario,
    Stage,
    build_metadata,
    function_rng,
    generate_plan,
    load_plan,
    main,
    plan_from_json,
    plan_to_json,
    save_plan,
    write_plan,
)


def settings(**values):
    return load_settings({key: str(value) for key, value in values.items()})


def scenarios_text(plan):
    return json.dumps(plan_to_json(plan, {})["scenarios"], sort_keys=True)


def test_the_same_seed_gives_byte_identical_scenarios():
    first = generate_plan(settings(WORKLOAD_SEED=42))
    second = generate_plan(settings(WORKLOAD_SEED=42))
    assert first == second
    assert scenarios_text(first) == scenarios_text(second)


def _plan_in_subprocess(hash_seed):
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen(
        [sys.executable, "-m", "locust_hyperfaas.plan", "--workload-seed", "42"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


def test_the_same_seed_gives_the_same_scenarios_in_other_processes():
    processes = [_plan_in_subprocess("1"), _plan_in_subprocess("2")]
    outputs = [process.communicate(timeout=60) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr
    documents = [json.loads(stdout) for stdout, _ in outputs]
    expected = json.loads(scenarios_text(generate_plan(settings(WORKLOAD_SEED=42))))
    assert documents[0]["scenarios"] == expected
    assert documents[1]["scenarios"] == expected
    assert documents[0]["metadata"]["seed"] == 42


def test_a_different_seed_gives_a_different_plan():
    texts = {scenarios_text(generate_plan(settings(WORKLOAD_SEED=s))) for s in range(5)}
    assert len(texts) == 5


@pytest.mark.parametrize("total", ["1s", "60s", "1001ms", "7ms", "1h"])
@pytest.mark.parametrize("count", [1, 2, 3, 7])
def test_the_scenarios_of_a_function_tile_the_total_duration(total, count):
    counts = {
        f"{spec.env_prefix}_{key}": count
        for spec in registry().values()
        for key in ("MIN_SCENARIOS", "MAX_SCENARIOS")
    }
    for seed in range(4):
        plan = generate_plan(
            settings(WORKLOAD_SEED=seed, TOTAL_TEST_DURATION=total, **counts)
        )
        for name in registry():
            scenarios = plan.for_function(name)
            assert len(scenarios) == count
            assert scenarios[0].start_ms == 0
            for before, after in zip(scenarios, scenarios[1:], strict=False):
                assert after.start_ms == before.end_ms
            assert scenarios[-1].end_ms == plan.total_duration_ms
            assert [s.name for s in scenarios] == [f"{name}-{i}" for i in range(count)]
            for scenario in scenarios:
                if not scenario.is_constant:
                    assert sum(s.duration_ms for s in scenario.stages) == (
                        scenario.duration_ms
                    )


def test_thirds_of_twenty_seconds_start_at_exact_milliseconds():
    plan = generate_plan(
        settings(
            WORKLOAD_SEED=1,
            TOTAL_TEST_DURATION="20s",
            ECHO_MIN_SCENARIOS=3,
            ECHO_MAX_SCENARIOS=3,
        )
    )
    echo = plan.for_function("echo")
    assert [(s.start_ms, s.duration_ms) for s in echo] == [
        (0, 6666),
        (6666, 6667),
        (13333, 6667),
    ]
    document = plan_to_json(plan, {})["scenarios"]
    assert [document[s.name]["startTime"] for s in echo] == ["0s", "6666ms", "13333ms"]


def test_the_number_of_scenarios_stays_within_its_range_and_may_be_zero():
    counts = set()
    for seed in range(40):
        plan = generate_plan(
            settings(WORKLOAD_SEED=seed, ECHO_MIN_SCENARIOS=0, ECHO_MAX_SCENARIOS=2)
        )
        counts.add(len(plan.for_function("echo")))
        assert 1 <= len(plan.for_function("bfs")) <= 3
    assert counts == {0, 1, 2}


def test_removing_a_function_leaves_the_others_unchanged():
    full = generate_plan(settings(WORKLOAD_SEED=11))
    without_bfs = generate_plan(settings(WORKLOAD_SEED=11, BFS_MAX_SCENARIOS=0))
    functions = {n: s for n, s in registry().items() if n != "bfs"}
    unregistered = generate_plan(load_settings({"WORKLOAD_SEED": "11"}, functions))
    assert without_bfs.for_function("bfs") == ()
    for name in ("echo", "thumbnailer"):
        assert full.for_function(name)
        assert without_bfs.for_function(name) == full.for_function(name)
        assert unregistered.for_function(name) == full.for_function(name)


def test_the_draws_follow_the_documented_order():
    values = settings(WORKLOAD_SEED=5)
    echo = generate_plan(values).for_function("echo")
    rng = random.Random(
        int.from_bytes(__import__("hashlib").sha256(b"5:echo").digest()[:8], "big")
    )
    assert len(echo) == rng.randint(1, 3)
    for scenario in echo:
        if rng.random() < 0.5:
            assert scenario.executor == CONSTANT
            assert scenario.rate == rng.randint(5, 20)
        else:
            assert scenario.executor == RAMPING
            assert scenario.start_rate == rng.randint(1, 5)
            assert scenario.stages == (
                Stage(scenario.duration_ms, rng.randint(10, 40)),
            )
        preallocated = rng.randint(10, 50)
        assert scenario.preallocated_vus == preallocated
        assert scenario.max_vus == max(rng.randint(20, 100), preallocated)
    assert function_rng(5, "echo").random() == function_rng(5, "echo").random()


def test_max_vus_is_never_below_the_preallocated_vus():
    clamped = 0
    for seed in range(30):
        plan = generate_plan(
            settings(WORKLOAD_SEED=seed, MIN_MAX_VUS=5, MAX_MAX_VUS=30)
        )
        for scenario in plan.scenarios:
            assert 10 <= scenario.preallocated_vus <= 50
            assert scenario.max_vus >= scenario.preallocated_vus
            assert scenario.max_vus <= 50
            clamped += scenario.max_vus == scenario.preallocated_vus
    assert clamped > 0


def test_rates_are_whole_for_whole_bounds_and_three_decimals_otherwise():
    for seed in range(20):
        plan = generate_plan(
            settings(
                WORKLOAD_SEED=seed,
                ECHO_CONSTANT_SCENARIOS_RATIO=1,
                BFS_CONSTANT_SCENARIOS_RATIO=1,
                BFS_CONSTANT_RATE_MIN=2.5,
                BFS_CONSTANT_RATE_MAX=3,
            )
        )
        for scenario in plan.for_function("echo"):
            assert isinstance(scenario.rate, int) and 5 <= scenario.rate <= 20
        for scenario in plan.for_function("bfs"):
            assert 2.5 <= scenario.rate <= 3
            assert scenario.rate == round(scenario.rate, 3)


def test_the_constant_ratio_decides_the_executor():
    only_constant = generate_plan(
        settings(WORKLOAD_SEED=3, ECHO_CONSTANT_SCENARIOS_RATIO=1, ECHO_MIN_SCENARIOS=3)
    )
    only_ramping = generate_plan(
        settings(WORKLOAD_SEED=3, ECHO_CONSTANT_SCENARIOS_RATIO=0, ECHO_MIN_SCENARIOS=3)
    )
    assert {s.executor for s in only_constant.for_function("echo")} == {CONSTANT}
    assert {s.executor for s in only_ramping.for_function("echo")} == {RAMPING}
    for scenario in only_ramping.for_function("echo"):
        assert 1 <= scenario.start_rate <= 5 and scenario.rate is None
        assert 10 <= scenario.stages[0].target <= 40


def test_scenarios_carry_the_configured_image_tag():
    plan = generate_plan(settings(WORKLOAD_SEED=1, ECHO_IMAGE_TAG="echo:v2"))
    assert {s.image_tag for s in plan.for_function("echo")} == {"echo:v2"}
    assert plan.functions() == ["bfs", "echo", "thumbnailer"]


def test_the_json_form_uses_k6_keys():
    plan = Plan(
        seed=1,
        total_duration_ms=20_000,
        scenarios=(
            Scenario(
                "echo-0", "echo", "e:1", CONSTANT, 0, 10_000, 12, None, (), 10, 20
            ),
            Scenario(
                "echo-1",
                "echo",
                "e:1",
                RAMPING,
                10_000,
                10_000,
                None,
                2,
                (Stage(10_000, 30),),
                11,
                40,
            ),
        ),
    )
    scenarios = plan_to_json(plan, {"seed": 1})["scenarios"]
    assert scenarios["echo-0"] == {
        "executor": "constant-arrival-rate",
        "function": "echo",
        "imageTag": "e:1",
        "startTime": "0s",
        "duration": "10s",
        "rate": 12,
        "timeUnit": "1s",
        "preAllocatedVUs": 10,
        "maxVUs": 20,
    }
    assert scenarios["echo-1"] == {
        "executor": "ramping-arrival-rate",
        "function": "echo",
        "imageTag": "e:1",
        "startTime": "10s",
        "startRate": 2,
        "stages": [{"target": 30, "duration": "10s"}],
        "timeUnit": "1s",
        "preAllocatedVUs": 11,
        "maxVUs": 40,
    }


def test_a_written_plan_loads_back_equal(tmp_path):
    values = settings(
        WORKLOAD_SEED=99,
        TOTAL_TEST_DURATION="1001ms",
        ECHO_MIN_SCENARIOS=3,
        ECHO_MAX_SCENARIOS=3,
        BFS_CONSTANT_RATE_MIN=0.5,
        BFS_CONSTANT_RATE_MAX=1.5,
    )
    plan = generate_plan(values)
    metadata = build_metadata(plan, values, {"echo": "id-e", "bfs": "id-b"})
    path = write_plan(tmp_path / "sub" / "plan.json", plan, metadata)
    assert load_plan(path, settings(WORKLOAD_SEED=1)) == plan
    document = json.loads(path.read_text())
    assert document["metadata"]["echoFunctionId"] == "id-e"
    assert plan_from_json(document, values) == plan


def test_a_plan_reads_back_from_its_json_without_settings_or_metadata():
    plan = generate_plan(settings(WORKLOAD_SEED=12, TOTAL_TEST_DURATION="45s"))
    document = plan_to_json(plan, {})
    assert document["metadata"] == {"seed": 12, "totalDuration": "45s"}
    assert plan_from_json(json.loads(json.dumps(document))) == plan


def test_twelve_scenarios_of_a_function_keep_their_order_through_json():
    values = settings(WORKLOAD_SEED=4, ECHO_MIN_SCENARIOS=12, ECHO_MAX_SCENARIOS=12)
    plan = generate_plan(values)
    document = json.loads(json.dumps(plan_to_json(plan, {}), sort_keys=True))
    assert plan_from_json(document, values) == plan


def test_the_metadata_holds_seed_duration_time_settings_and_ids():
    values = settings(WORKLOAD_SEED=8, TOTAL_TEST_DURATION="90s")
    plan = generate_plan(values)
    metadata = build_metadata(plan, values, {"echo": "e1", "bfs": "b1"})
    assert metadata["seed"] == 8
    assert metadata["totalDuration"] == "1m30s"
    assert metadata["generatedAt"].endswith("Z") and "T" in metadata["generatedAt"]
    assert metadata["configuration"]["WORKLOAD_SEED"] == 8
    assert metadata["configuration"]["TOTAL_TEST_DURATION"] == "1m30s"
    assert metadata["echoFunctionId"] == "e1" and metadata["bfsFunctionId"] == "b1"
    assert metadata["functionIds"] == {"echo": "e1", "bfs": "b1"}
    json.dumps(metadata)


def test_the_plan_is_copied_to_the_working_directory_when_persisted(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    values = settings(WORKLOAD_SEED=2, PERSIST_GENERATION="true")
    plan = generate_plan(values)
    written = save_plan(tmp_path / "results" / "run-1", plan, {"seed": 2}, values)
    assert written == [
        tmp_path / "results" / "run-1" / PLAN_FILE_NAME,
        tmp_path / PLAN_FILE_NAME,
    ]
    assert written[0].read_bytes() == written[1].read_bytes()
    kept = save_plan(tmp_path / "run-2", plan, {"seed": 2}, settings(WORKLOAD_SEED=2))
    assert kept == [tmp_path / "run-2" / PLAN_FILE_NAME]


def write(tmp_path, scenarios, metadata=None):
    path = tmp_path / "plan.json"
    document = {"scenarios": scenarios}
    if metadata is not None:
        document["metadata"] = metadata
    path.write_text(json.dumps(document))
    return path


def test_a_hand_written_plan_without_image_tag_or_time_unit_loads(tmp_path):
    path = write(
        tmp_path,
        {
            "echo-burst": {
                "executor": "ramping-arrival-rate",
                "startTime": "5s",
                "startRate": 1,
                "preAllocatedVUs": 5,
                "stages": [
                    {"target": 50, "duration": "10s"},
                    {"target": 0, "duration": "5s"},
                ],
            },
            "bfs_steady": {
                "executor": "constant-arrival-rate",
                "duration": "30s",
                "rate": 10,
                "preAllocatedVUs": 2,
                "maxVUs": 8,
            },
            "warmup": {
                "executor": "constant-arrival-rate",
                "exec": "thumbnailerFunction",
                "duration": "1m",
                "rate": 1.5,
                "preAllocatedVUs": 1,
            },
        },
    )
    plan = load_plan(path, settings(WORKLOAD_SEED=77, ECHO_IMAGE_TAG="echo:dev"))
    assert plan.seed == 77
    assert plan.total_duration_ms == 60_000
    assert [s.name for s in plan.scenarios] == ["bfs_steady", "echo-burst", "warmup"]
    bfs, echo, thumbnailer = plan.scenarios
    assert echo == Scenario(
        name="echo-burst",
        function="echo",
        image_tag="echo:dev",
        executor=RAMPING,
        start_ms=5000,
        duration_ms=15_000,
        rate=None,
        start_rate=1,
        stages=(Stage(10_000, 50), Stage(5_000, 0)),
        preallocated_vus=5,
        max_vus=5,
        time_unit_ms=1000,
    )
    assert (bfs.function, bfs.image_tag, bfs.rate, bfs.max_vus) == (
        "bfs",
        "hyperfaas-bfs-json:latest",
        10,
        8,
    )
    assert (thumbnailer.function, thumbnailer.rate) == ("thumbnailer", 1.5)


def test_a_plan_file_keeps_its_seed_time_unit_and_total(tmp_path):
    path = write(
        tmp_path,
        {
            "echo-0": {
                "executor": "constant-arrival-rate",
                "function": "echo",
                "duration": "10s",
                "rate": 60,
                "timeUnit": "1m",
                "preAllocatedVUs": 1,
            }
        },
        {"seed": 1234, "totalDuration": "20s"},
    )
    plan = load_plan(path, settings(WORKLOAD_SEED=1))
    assert (plan.seed, plan.total_duration_ms) == (1234, 20_000)
    assert plan.scenarios[0].time_unit_ms == 60_000
    assert plan.scenarios[0].per_second(60) == 1.0
    assert plan_to_json(plan, {})["scenarios"]["echo-0"]["timeUnit"] == "1m"


CONSTANT_BODY = {
    "executor": "constant-arrival-rate",
    "function": "echo",
    "duration": "10s",
    "rate": 5,
    "preAllocatedVUs": 1,
}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"function": "nosuch"}, ["'s1'", "'function'", "nosuch"]),
        ({"executor": "constant-vus"}, ["'s1'", "'executor'", "constant-vus"]),
        ({"rate": None}, ["'s1'", "'rate'", "missing"]),
        ({"rate": -1}, ["'s1'", "'rate'", "-1"]),
        ({"rate": "fast"}, ["'s1'", "'rate'"]),
        ({"preAllocatedVUs": -2}, ["'s1'", "'preAllocatedVUs'"]),
        ({"preAllocatedVUs": 1.5}, ["'s1'", "'preAllocatedVUs'"]),
        ({"maxVUs": 0, "preAllocatedVUs": 3}, ["'s1'", "'maxVUs'", "below"]),
        ({"duration": "10 parsecs"}, ["'s1'", "'duration'", "10 parsecs"]),
        ({"duration": 10}, ["'s1'", "'duration'"]),
        ({"duration": "10"}, ["'s1'", "'duration'"]),
        ({"startTime": "-1s"}, ["'s1'", "'startTime'"]),
        ({"timeUnit": "0s"}, ["'s1'", "'timeUnit'"]),
        ({"rat": 5}, ["'s1'", "'rat'", "unknown key"]),
        ({"stages": []}, ["'s1'", "'stages'"]),
        ({"imageTag": ""}, ["'s1'", "'imageTag'"]),
        ({"function": None, "exec": "default"}, ["'s1'", "'exec'"]),
        ({"function": None}, ["'s1'", "'function'", "missing"]),
    ],
)
def test_a_bad_scenario_is_refused_naming_it_and_the_key(tmp_path, change, words):
    body = {**CONSTANT_BODY, **change}
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(PlanError) as caught:
        load_plan(write(tmp_path, {"s1": body}), settings(WORKLOAD_SEED=1))
    for word in words:
        assert word in str(caught.value)
    assert str(tmp_path / "plan.json") in str(caught.value)


@pytest.mark.parametrize(
    ("stages", "words"),
    [
        ([{"target": 5}], ["'stages[0]'"]),
        (
            [{"target": 5, "duration": "5s"}, {"target": -1, "duration": "5s"}],
            ["'stages[1].target'"],
        ),
        ([{"target": 5, "duration": "five"}], ["'stages[0].duration'", "five"]),
    ],
)
def test_a_bad_stage_is_refused_naming_it(tmp_path, stages, words):
    body = {
        "executor": "ramping-arrival-rate",
        "function": "bfs",
        "preAllocatedVUs": 1,
        "stages": stages,
    }
    with pytest.raises(PlanError) as caught:
        load_plan(write(tmp_path, {"ramp": body}), settings(WORKLOAD_SEED=1))
    assert "'ramp'" in str(caught.value)
    for word in words:
        assert word in str(caught.value)


def test_overlapping_scenarios_of_one_function_are_refused(tmp_path):
    later = {**CONSTANT_BODY, "startTime": "9s"}
    other = {**CONSTANT_BODY, "function": "bfs", "startTime": "5s"}
    path = write(tmp_path, {"echo-a": CONSTANT_BODY, "echo-b": later, "bfs-a": other})
    with pytest.raises(PlanError, match="'echo-b'.*'echo-a'.*overlap"):
        load_plan(path, settings(WORKLOAD_SEED=1))
    back_to_back = {**CONSTANT_BODY, "startTime": "10s"}
    path = write(tmp_path, {"echo-a": CONSTANT_BODY, "echo-b": back_to_back})
    assert load_plan(path, settings(WORKLOAD_SEED=1)).end_ms == 20_000


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", ["not valid JSON"]),
        ("[]", ["'scenarios'"]),
        ('{"scenarios": []}', ["'scenarios'"]),
        ('{"scenarios": {"echo-0": 5}}', ["'echo-0'", "JSON object"]),
        ('{"scenarios": {}, "metadata": {"seed": -3}}', ["seed", "-3"]),
        ('{"scenarios": {}, "metadata": {"totalDuration": "soon"}}', ["totalDuration"]),
    ],
)
def test_a_malformed_plan_file_is_refused(tmp_path, text, words):
    path = tmp_path / "plan.json"
    path.write_text(text)
    with pytest.raises(PlanError) as caught:
        load_plan(path, settings(WORKLOAD_SEED=1))
    for word in words:
        assert word in str(caught.value)


def test_a_scenario_ending_after_the_total_duration_is_refused(tmp_path):
    path = write(tmp_path, {"echo-0": CONSTANT_BODY}, {"totalDuration": "5s"})
    with pytest.raises(PlanError, match="'echo-0' ends at 10s, after .* 5s"):
        load_plan(path, settings(WORKLOAD_SEED=1))


def test_a_missing_plan_file_is_refused(tmp_path):
    with pytest.raises(PlanError, match="cannot read plan file"):
        load_plan(tmp_path / "absent.json", settings(WORKLOAD_SEED=1))


@pytest.fixture
def clean_environment(monkeypatch):
    for setting in settings_table():
        monkeypatch.delenv(setting.env, raising=False)


def test_the_plan_command_prints_the_plan_as_json(
    capsys, clean_environment, monkeypatch
):
    monkeypatch.setenv("ECHO_MAX_SCENARIOS", "0")
    assert (
        main(["--workload-seed", "42", "--total-test-duration", "2m"], prog="plan") == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["metadata"]["seed"] == 42
    assert document["metadata"]["totalDuration"] == "2m"
    expected = generate_plan(
        settings(WORKLOAD_SEED=42, TOTAL_TEST_DURATION="2m", ECHO_MAX_SCENARIOS=0)
    )
    assert json.dumps(document["scenarios"], sort_keys=True) == scenarios_text(expected)
    assert not any(name.startswith("echo") for name in document["scenarios"])


def test_the_plan_command_writes_a_file_and_a_summary(
    tmp_path, capsys, clean_environment
):
    out = tmp_path / "plan.json"
    args = [
        "--workload-seed",
        "3",
        "--out",
        str(out),
        "--summary",
        "--bfs-min-scenarios",
        "2",
        "--bfs-max-scenarios",
        "2",
        "--bfs-constant-scenarios-ratio",
        "1",
        "--bfs-constant-rate-min",
        "10",
        "--bfs-constant-rate-max",
        "10",
        "--total-test-duration",
        "10s",
    ]
    assert main(args, prog="plan") == 0
    summary = capsys.readouterr().out
    plan = load_plan(out, settings(WORKLOAD_SEED=3))
    assert plan == generate_plan(
        load_settings(
            {
                "WORKLOAD_SEED": "3",
                "BFS_MIN_SCENARIOS": "2",
                "BFS_MAX_SCENARIOS": "2",
                "BFS_CONSTANT_SCENARIOS_RATIO": "1",
                "BFS_CONSTANT_RATE_MIN": "10",
                "BFS_CONSTANT_RATE_MAX": "10",
                "TOTAL_TEST_DURATION": "10s",
            }
        )
    )
    bfs_lines = [
        line.split() for line in summary.splitlines() if line.startswith("bfs-")
    ]
    assert [line[:6] for line in bfs_lines] == [
        [
            "bfs-0",
            "constant",
            "0s",
            "5s",
            "10",
            f"{plan.scenarios[0].preallocated_vus}/{plan.scenarios[0].max_vus}",
        ],
        [
            "bfs-1",
            "constant",
            "5s",
            "5s",
            "10",
            f"{plan.scenarios[1].preallocated_vus}/{plan.scenarios[1].max_vus}",
        ],
    ]
    assert [line[6] for line in bfs_lines] == ["50", "50"]


def test_the_plan_command_shows_a_plan_file(tmp_path, capsys, clean_environment):
    path = write(tmp_path, {"echo-0": CONSTANT_BODY})
    assert main(["--plan", str(path), "--summary"], prog="plan") == 0
    assert "echo-0" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workload-seed", "-1"], ["WORKLOAD_SEED (--workload-seed) = '-1'"]),
        (["--echo-constant-scenarios-ratio", "2"], ["ECHO_CONSTANT_SCENARIOS_RATIO"]),
    ],
)
def test_the_plan_command_reports_bad_settings_without_a_traceback(
    capsys, clean_environment, args, words
):
    assert main(args, prog="plan") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("plan: error: ")
    assert "Traceback" not in captured.err
    for word in words:
        assert word in captured.err


def test_the_plan_command_reports_a_bad_plan_file(tmp_path, capsys, clean_environment):
    path = write(tmp_path, {"echo-0": {**CONSTANT_BODY, "rate": -1}})
    assert main(["--plan", str(path)], prog="plan") == 2
    assert "'echo-0', key 'rate'" in capsys.readouterr().err


def test_environment_settings_reach_the_plan_command(
    capsys, clean_environment, monkeypatch
):
    monkeypatch.setenv("WORKLOAD_SEED", "5")
    monkeypatch.setenv("TOTAL_TEST_DURATION", "30s")
    assert main(["--total-test-duration", "40s"], prog="plan") == 0
    metadata = json.loads(capsys.readouterr().out)["metadata"]
    assert (metadata["seed"], metadata["totalDuration"]) == (5, "40s")


def test_a_plan_file_with_two_image_tags_for_one_function_is_refused(tmp_path):
    path = tmp_path / "plan.json"
    body = {
        "executor": "constant-arrival-rate",
        "function": "echo",
        "rate": 1,
        "duration": "1s",
        "preAllocatedVUs": 1,
    }
    path.write_text(
        json.dumps(
            {
                "scenarios": {
                    "echo-1": {**body, "startTime": "0s", "imageTag": "a:1"},
                    "echo-2": {**body, "startTime": "1s", "imageTag": "b:1"},
                }
            }
        )
    )
    with pytest.raises(
        PlanError, match=r"'echo-2' has imageTag 'b:1' but scenario 'echo-1'"
    ):
        load_plan(path)
