import json
import os
import subprocess
import sys
import types

import pytest

from locust_hyperfaas.config import (
    FunctionSettings,
    add_locust_arguments,
    format_duration_ms,
    load_settings,
    parse_duration_ms,
    settings_from_env,
    settings_from_options,
    settings_table,
)
from locust_hyperfaas.exceptions import ConfigError
from locust_hyperfaas.functions import FunctionSpec, Payload, registry

TABLE = settings_table()

# Values each kind of setting must refuse, by variable name (or the part after
# the function prefix for per-function variables).
INTEGER = ["abc", "1.5", "-1", "1e3"]
RATE = ["abc", "-1", "-0.5", "nan", "inf"]
DURATION = ["abc", "0", "0s", "-5s", "10 parsecs", "1h 30m", "1500us"]
BAD_VALUES = {
    "WORKLOAD_SEED": ["abc", "-1", "1.5"],
    "TOTAL_TEST_DURATION": DURATION,
    "MIN_PREALLOCATED_VUS": INTEGER,
    "MAX_PREALLOCATED_VUS": INTEGER,
    "MIN_MAX_VUS": INTEGER,
    "MAX_MAX_VUS": INTEGER,
    "RAMPING_START_RATE_MIN": RATE,
    "RAMPING_START_RATE_MAX": RATE,
    "PERSIST_GENERATION": ["maybe", "2", "on"],
    "MIN_SCENARIOS": INTEGER,
    "MAX_SCENARIOS": INTEGER,
    "CONSTANT_SCENARIOS_RATIO": ["abc", "1.5", "-0.1", "nan"],
    "CONSTANT_RATE_MIN": RATE,
    "CONSTANT_RATE_MAX": RATE,
    "BURST_TARGET_RATE_MIN": RATE,
    "BURST_TARGET_RATE_MAX": RATE,
    "IMAGE_TAG": ["my image:latest"],
    "MEMORY_MIB": [*INTEGER, "0"],
    "CPU_PERIOD": [*INTEGER, "0"],
    "CPU_QUOTA": [*INTEGER, "0"],
    "HYPERFAAS_CALL_TIMEOUT": DURATION,
    "HYPERFAAS_PLAN": ["/nonexistent/plan.json", "."],
    "HYPERFAAS_FUNCTION_IDS": ["echo", "echo=", "=abc", "echo=1,echo=2", "nosuch=1"],
    "HYPERFAAS_ARRIVALS": ["burst", "uniform"],
    "HYPERFAAS_EMULATOR_COLD_START_MS": INTEGER,
    "HYPERFAAS_EMULATOR_IDLE_TIMEOUT": DURATION,
}
FREE_TEXT = {"HYPERFAAS_RESULTS_DIR", "HYPERFAAS_DB"}


def bad_values_for(env):
    if env in BAD_VALUES:
        return BAD_VALUES[env]
    for spec in registry().values():
        if env.startswith(spec.env_prefix + "_"):
            return BAD_VALUES[env[len(spec.env_prefix) + 1 :]]
    raise KeyError(env)


BAD_CASES = [
    pytest.param(setting, value, id=f"{setting.env}={value}")
    for setting in TABLE
    if setting.env not in FREE_TEXT
    for value in bad_values_for(setting.env)
]


@pytest.mark.parametrize(("setting", "value"), BAD_CASES)
def test_a_bad_value_is_refused_with_the_variable_flag_and_value(setting, value):
    with pytest.raises(ConfigError) as caught:
        load_settings({setting.env: value})
    message = str(caught.value)
    assert caught.value.setting == setting.env
    assert message.startswith(
        f"{setting.env} ({setting.flag}) = {value!r} is not valid"
    )
    assert "expected" in message


def test_the_error_message_says_what_is_accepted():
    with pytest.raises(ConfigError) as caught:
        load_settings({"BFS_CONSTANT_SCENARIOS_RATIO": "1.5"})
    assert str(caught.value) == (
        "BFS_CONSTANT_SCENARIOS_RATIO (--bfs-constant-scenarios-ratio) = '1.5' "
        "is not valid: expected a number from 0 to 1"
    )


def test_every_setting_has_a_flag_derived_from_its_variable():
    for setting in TABLE:
        assert setting.flag == "--" + setting.env.lower().replace("_", "-") or (
            setting.env.startswith("HYPERFAAS_")
        )
        assert setting.dest == setting.flag[2:].replace("-", "_")
    flags = [setting.flag for setting in TABLE]
    assert len(flags) == len(set(flags))
    assert "--call-timeout" in flags and "--echo-image-tag" in flags


def test_defaults_are_those_of_the_k6_generator():
    settings = load_settings({"WORKLOAD_SEED": "1"})
    assert settings.total_duration_ms == 60_000
    assert (settings.min_preallocated_vus, settings.max_preallocated_vus) == (10, 50)
    assert (settings.min_max_vus, settings.max_max_vus) == (20, 100)
    assert (settings.ramping_start_rate_min, settings.ramping_start_rate_max) == (1, 5)
    assert settings.persist_generation is False
    assert list(settings.functions) == list(registry())
    for name, spec in registry().items():
        assert settings.functions[name] == FunctionSettings(
            name=name,
            prefix=spec.env_prefix,
            min_scenarios=1,
            max_scenarios=3,
            constant_ratio=0.5,
            constant_rate_min=5,
            constant_rate_max=20,
            burst_target_rate_min=10,
            burst_target_rate_max=40,
            image_tag=spec.image_tag,
            memory_mib=spec.memory_mib,
            cpu_period=spec.cpu_period,
            cpu_quota=spec.cpu_quota,
        )
    assert settings.functions["echo"].image_tag == "hyperfaas-echo:latest"
    assert settings.call_timeout_s == 60.0
    assert settings.arrivals == "even"
    assert settings.emulator_cold_start_ms == 300
    assert settings.emulator_idle_timeout_s == 30.0
    assert settings.function_ids == {}
    assert (settings.results_dir, settings.db_path, settings.plan_path) == ("", "", "")


def test_zero_max_scenarios_leaves_the_function_out_by_itself():
    settings = load_settings({"BFS_MAX_SCENARIOS": "0"})
    assert settings.functions["bfs"].max_scenarios == 0
    assert settings.functions["bfs"].min_scenarios == 1
    assert not settings.functions["bfs"].enabled
    assert settings.functions["echo"].enabled


def test_zero_is_a_value_and_never_the_default():
    settings = load_settings(
        {
            "WORKLOAD_SEED": "0",
            "MIN_PREALLOCATED_VUS": "0",
            "ECHO_MIN_SCENARIOS": "0",
            "ECHO_CONSTANT_SCENARIOS_RATIO": "0",
            "ECHO_CONSTANT_RATE_MIN": "0",
            "RAMPING_START_RATE_MIN": "0",
            "HYPERFAAS_EMULATOR_COLD_START_MS": "0",
        }
    )
    assert settings.seed == 0 and settings.seed_drawn is False
    assert settings.min_preallocated_vus == 0
    assert settings.functions["echo"].min_scenarios == 0
    assert settings.functions["echo"].constant_ratio == 0
    assert settings.functions["echo"].constant_rate_min == 0
    assert settings.ramping_start_rate_min == 0
    assert settings.emulator_cold_start_ms == 0


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_only_an_empty_value_means_the_default(empty):
    settings = load_settings(
        {"ECHO_MAX_SCENARIOS": empty, "TOTAL_TEST_DURATION": empty}
    )
    assert settings.functions["echo"].max_scenarios == 3
    assert settings.total_duration_ms == 60_000


def test_an_empty_seed_is_drawn_from_the_clock():
    settings = load_settings({})
    assert settings.seed_drawn is True
    assert settings.seed > 1_700_000_000_000
    assert load_settings({"WORKLOAD_SEED": "42"}).seed == 42


RANGES = [
    ("MIN_PREALLOCATED_VUS", "MAX_PREALLOCATED_VUS", "60", "50"),
    ("MIN_MAX_VUS", "MAX_MAX_VUS", "30", "25"),
    ("RAMPING_START_RATE_MIN", "RAMPING_START_RATE_MAX", "6", "5.5"),
    ("ECHO_MIN_SCENARIOS", "ECHO_MAX_SCENARIOS", "4", "3"),
    ("BFS_CONSTANT_RATE_MIN", "BFS_CONSTANT_RATE_MAX", "21", "20"),
    (
        "THUMBNAILER_BURST_TARGET_RATE_MIN",
        "THUMBNAILER_BURST_TARGET_RATE_MAX",
        "9",
        "8",
    ),
]


@pytest.mark.parametrize(("low", "high", "low_value", "high_value"), RANGES)
def test_a_minimum_above_its_maximum_names_both(low, high, low_value, high_value):
    with pytest.raises(ConfigError) as caught:
        load_settings({low: low_value, high: high_value})
    message = str(caught.value)
    assert caught.value.setting == low
    assert f"{low} (" in message and f"= {low_value!r}" in message
    assert f"at most {high} (" in message and f"which is {high_value}" in message


def test_a_minimum_above_the_default_maximum_is_refused():
    with pytest.raises(ConfigError, match="ECHO_MIN_SCENARIOS.*ECHO_MAX_SCENARIOS"):
        load_settings({"ECHO_MIN_SCENARIOS": "4"})


def test_max_max_vus_below_one_is_refused_only_while_a_function_has_scenarios():
    low_vus = {"MIN_MAX_VUS": "0", "MAX_MAX_VUS": "0"}
    with pytest.raises(ConfigError, match=r"^MAX_MAX_VUS \(--max-max-vus\) = '0'"):
        load_settings(low_vus)
    nothing = {f"{spec.env_prefix}_MAX_SCENARIOS": "0" for spec in registry().values()}
    settings = load_settings({**low_vus, **nothing})
    assert settings.max_max_vus == 0
    assert not any(function.enabled for function in settings.functions.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60s", 60_000),
        ("15m", 900_000),
        ("1h30m", 5_400_000),
        ("500ms", 500),
        ("1.5s", 1_500),
        ("90", 90_000),
        ("0.25", 250),
        ("2h0m5s", 7_205_000),
        ("1000us", 1),
        ("2000000ns", 2),
        (" 10s ", 10_000),
        ("0", 0),
    ],
)
def test_durations_parse_to_whole_milliseconds(text, expected):
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize("text", ["", "s", "1x", "1h 30m", "-5s", "1.5.5s", "1500us"])
def test_bad_durations_raise_value_error(text):
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_a_bad_duration_is_also_a_config_error():
    with pytest.raises(ConfigError) as caught:
        parse_duration_ms("soon")
    assert str(caught.value).startswith("duration='soon' is not valid: expected")
    assert isinstance(caught.value, ValueError)


def test_a_bare_number_can_be_refused_as_a_duration():
    with pytest.raises(ValueError):
        parse_duration_ms("30", bare_seconds=False)
    assert parse_duration_ms("0", bare_seconds=False) == 0


@pytest.mark.parametrize(
    ("duration_ms", "text"),
    [
        (60_000, "1m"),
        (20_000, "20s"),
        (6_666, "6666ms"),
        (5_400_000, "1h30m"),
        (0, "0s"),
    ],
)
def test_durations_are_written_exactly_in_k6_syntax(duration_ms, text):
    assert format_duration_ms(duration_ms) == text
    assert parse_duration_ms(text) == duration_ms


def test_written_durations_read_back_unchanged():
    for duration_ms in [*range(0, 5000, 7), 3_599_999, 3_600_001, 86_400_000]:
        assert parse_duration_ms(format_duration_ms(duration_ms)) == duration_ms


def test_values_are_parsed_to_their_types():
    settings = load_settings(
        {
            "TOTAL_TEST_DURATION": "1h30m",
            "PERSIST_GENERATION": "YES",
            "ECHO_CONSTANT_RATE_MAX": "20.5",
            "ECHO_IMAGE_TAG": "registry.local/echo:v2",
            "HYPERFAAS_CALL_TIMEOUT": "1.5",
            "HYPERFAAS_FUNCTION_IDS": " echo = abc , bfs=def",
            "HYPERFAAS_ARRIVALS": "Poisson",
            "HYPERFAAS_EMULATOR_IDLE_TIMEOUT": "2m",
        }
    )
    assert settings.total_duration_ms == 5_400_000
    assert settings.total_duration_text == "1h30m"
    assert settings.persist_generation is True
    assert settings.functions["echo"].constant_rate_max == 20.5
    assert settings.functions["echo"].image_tag == "registry.local/echo:v2"
    assert settings.call_timeout_s == 1.5
    assert settings.function_ids == {"echo": "abc", "bfs": "def"}
    assert settings.arrivals == "poisson"
    assert settings.emulator_idle_timeout_s == 120.0


def test_an_existing_plan_file_is_accepted(tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text("{}")
    assert load_settings({"HYPERFAAS_PLAN": str(plan)}).plan_path == str(plan)


def test_the_configuration_lists_every_setting_and_reads_back_equal():
    settings = load_settings(
        {
            "WORKLOAD_SEED": "7",
            "TOTAL_TEST_DURATION": "90s",
            "BFS_MAX_SCENARIOS": "0",
            "ECHO_CONSTANT_RATE_MIN": "2.5",
            "PERSIST_GENERATION": "true",
            "HYPERFAAS_FUNCTION_IDS": "echo=abc,bfs=def",
            "HYPERFAAS_CALL_TIMEOUT": "1.5",
        }
    )
    configuration = settings.as_configuration()
    assert list(configuration) == [setting.env for setting in TABLE]
    assert configuration["WORKLOAD_SEED"] == 7
    assert configuration["TOTAL_TEST_DURATION"] == "1m30s"
    assert configuration["BFS_MAX_SCENARIOS"] == 0
    assert configuration["PERSIST_GENERATION"] is True
    assert configuration["HYPERFAAS_CALL_TIMEOUT"] == "1500ms"
    assert configuration["HYPERFAAS_FUNCTION_IDS"] == "echo=abc,bfs=def"
    json.dumps(configuration)

    def as_text(value):
        return str(value).lower() if isinstance(value, bool) else str(value)

    again = load_settings({env: as_text(value) for env, value in configuration.items()})
    assert again == settings


def test_a_drawn_seed_is_kept_in_the_configuration():
    settings = load_settings({})
    assert settings.as_configuration()["WORKLOAD_SEED"] == settings.seed


def test_settings_come_from_the_environment():
    settings = settings_from_env({"WORKLOAD_SEED": "3", "ECHO_MAX_SCENARIOS": "0"})
    assert settings.seed == 3
    assert not settings.functions["echo"].enabled


def test_settings_come_from_parsed_options_by_flag_name():
    options = types.SimpleNamespace(
        workload_seed="5",
        echo_min_scenarios="0",
        total_test_duration="",
        call_timeout="2",
    )
    settings = settings_from_options(options)
    assert settings.seed == 5
    assert settings.functions["echo"].min_scenarios == 0
    assert settings.total_duration_ms == 60_000
    assert settings.call_timeout_s == 2.0


def _spec(name, prefix):
    return FunctionSpec(
        name=name,
        env_prefix=prefix,
        image_tag=f"{name}:1",
        memory_mib=64,
        cpu_period=100_000,
        cpu_quota=10_000,
        make_payload=lambda rng: Payload(b""),
        check_response=lambda payload, response: None,
    )


def test_an_added_function_gets_its_own_settings():
    functions = {"my-fn": _spec("my-fn", "MY_FN")}
    table = settings_table(functions)
    flags = {setting.env: setting.flag for setting in table}
    assert flags["MY_FN_MIN_SCENARIOS"] == "--my-fn-min-scenarios"
    assert flags["MY_FN_IMAGE_TAG"] == "--my-fn-image-tag"
    settings = load_settings({"MY_FN_MEMORY_MIB": "96"}, functions)
    assert list(settings.functions) == ["my-fn"]
    assert settings.functions["my-fn"].memory_mib == 96
    assert settings.functions["my-fn"].image_tag == "my-fn:1"
    with pytest.raises(ConfigError, match="HYPERFAAS_FUNCTION_IDS"):
        load_settings({"HYPERFAAS_FUNCTION_IDS": "echo=1"}, functions)


class _RecordingGroup:
    def __init__(self):
        self.calls = []

    def add_argument(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return types.SimpleNamespace()


def test_every_setting_is_registered_as_a_text_option():
    group = _RecordingGroup()
    parser = types.SimpleNamespace(add_argument_group=lambda *args: group)
    add_locust_arguments(parser)
    assert [args[0] for args, _ in group.calls] == [s.flag for s in TABLE]
    for (_, kwargs), setting in zip(group.calls, TABLE, strict=True):
        assert kwargs["env_var"] == setting.env
        assert kwargs["default"] == setting.default
        assert kwargs["type"] is str


LOCUST_PARSER_SCRIPT = """
import json
from locust.argument_parser import get_empty_argument_parser
from locust_hyperfaas.config import add_locust_arguments, settings_from_options

parser = get_empty_argument_parser(add_help=False, default_config_files=[])
add_locust_arguments(parser)
options = parser.parse_args(["--echo-min-scenarios", "0", "--workload-seed", "9"])
settings = settings_from_options(options)
print(json.dumps({
    "seed": settings.seed,
    "echo_min": settings.functions["echo"].min_scenarios,
    "bfs_enabled": settings.functions["bfs"].enabled,
    "echo_min_text": options.echo_min_scenarios,
    "web_ui": sorted(parser.args_included_in_web_ui),
}))
"""


def test_options_registered_with_locust_read_flags_and_environment():
    environment = {"PATH": os.environ.get("PATH", ""), "BFS_MAX_SCENARIOS": "0"}
    completed = subprocess.run(
        [sys.executable, "-c", LOCUST_PARSER_SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=True,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["seed"] == 9
    assert result["echo_min"] == 0
    assert result["echo_min_text"] == "0"
    assert result["bfs_enabled"] is False
    assert "workload_seed" in result["web_ui"]
    assert "echo_image_tag" in result["web_ui"]
    assert "results_dir" not in result["web_ui"]


def test_importing_the_modules_does_not_import_locust_or_gevent():
    script = (
        "import sys, locust_hyperfaas.config, locust_hyperfaas.plan, "
        "locust_hyperfaas.arrivals\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('locust', 'gevent')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "name",
    ["ECHO_CONSTANT_RATE_MAX", "BFS_BURST_TARGET_RATE_MAX", "RAMPING_START_RATE_MAX"],
)
def test_a_rate_above_the_ceiling_is_refused_as_a_typo(name):
    with pytest.raises(
        ConfigError, match=rf"{name} .* expected a number from 0 to 100,000"
    ):
        load_settings({name: "1e6"})
