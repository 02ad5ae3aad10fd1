"""Every setting of locust-hyperfaas, in one table, and their validation.

A setting can be given as an environment variable (``WORKLOAD_SEED``), as a
command-line flag (``--workload-seed``) or, for most of them, in the Locust web
UI. All of them arrive as text and are checked here, once, before anything
runs: a bad value raises ``ConfigError`` naming the variable, the flag, the
value and what is accepted. An empty value means "use the default"; zero is a
value like any other (``BFS_MAX_SCENARIOS=0`` leaves bfs out of the plan).

Global settings (default in brackets):

    WORKLOAD_SEED [empty: drawn from the clock]   TOTAL_TEST_DURATION [60s]
    MIN_PREALLOCATED_VUS [10]  MAX_PREALLOCATED_VUS [50]
    MIN_MAX_VUS [20]           MAX_MAX_VUS [100]
    RAMPING_START_RATE_MIN [1] RAMPING_START_RATE_MAX [5]
    PERSIST_GENERATION [false]

Per function, with the function's prefix P (``ECHO``, ``BFS``, ...):

    P_MIN_SCENARIOS [1]  P_MAX_SCENARIOS [3]  P_CONSTANT_SCENARIOS_RATIO [0.5]
    P_CONSTANT_RATE_MIN [5]  P_CONSTANT_RATE_MAX [20]
    P_BURST_TARGET_RATE_MIN [10]  P_BURST_TARGET_RATE_MAX [40]
    P_IMAGE_TAG  P_MEMORY_MIB  P_CPU_PERIOD  P_CPU_QUOTA [from the function]

Plugin settings:

    HYPERFAAS_CALL_TIMEOUT [60]  HYPERFAAS_RESULTS_DIR  HYPERFAAS_DB
    HYPERFAAS_PLAN  HYPERFAAS_FUNCTION_IDS  HYPERFAAS_ARRIVALS [even]
    HYPERFAAS_EMULATOR_COLD_START_MS [300]  HYPERFAAS_EMULATOR_IDLE_TIMEOUT [30s]

Rates are calls per second. Durations use the k6 (Go) syntax: ``500ms``,
``1.5s``, ``15m``, ``1h30m``; a bare number is seconds.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from .exceptions import ConfigError
from .functions import FunctionSpec, registry

__all__ = [
    "ARRIVAL_MODES",
    "DurationError",
    "FunctionSettings",
    "Setting",
    "Settings",
    "add_locust_arguments",
    "format_duration_ms",
    "load_settings",
    "parse_duration_ms",
    "settings_from_env",
    "settings_from_options",
    "settings_table",
]

ARRIVAL_MODES = ("even", "poisson")

_UNIT_MS = {
    "ns": Fraction(1, 1_000_000),
    "us": Fraction(1, 1000),
    "µs": Fraction(1, 1000),
    "μs": Fraction(1, 1000),
    "ms": Fraction(1),
    "s": Fraction(1000),
    "m": Fraction(60_000),
    "h": Fraction(3_600_000),
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_BARE_NUMBER = re.compile(_NUMBER)
_DURATION_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_INTEGER = re.compile(r"[+-]?\d+")
DURATION_FORMS = "a duration such as 60s, 15m, 1h30m, 500ms or 1.5s"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class DurationError(ConfigError, ValueError):
    """Text that is not a duration; both a ConfigError and a ValueError."""

    def __init__(self, text: str, accepted: str) -> None:
        super().__init__("duration", text, accepted)


def parse_duration_ms(text: str, *, bare_seconds: bool = True) -> int:
    """Whole milliseconds in a k6/Go duration such as ``1h30m`` or ``1.5s``.

    A bare number is seconds (``"90"`` is 90 000 ms) unless ``bare_seconds`` is
    false, when only ``"0"`` may go without a unit. Raises DurationError (a
    ValueError) for text that does not parse, is negative, or is not a whole
    number of milliseconds.
    """
    stripped = text.strip()
    if _BARE_NUMBER.fullmatch(stripped):
        if not bare_seconds and Fraction(stripped) != 0:
            raise DurationError(text, "a duration with a unit, such as 30s or 500ms")
        total = Fraction(stripped) * 1000
    else:
        total = Fraction(0)
        position = 0
        while position < len(stripped):
            part = _DURATION_PART.match(stripped, position)
            if part is None:
                raise DurationError(text, DURATION_FORMS)
            total += Fraction(part[1]) * _UNIT_MS[part[2]]
            position = part.end()
        if not stripped:
            raise DurationError(text, DURATION_FORMS)
    if total.denominator != 1:
        raise DurationError(text, "a whole number of milliseconds")
    return int(total)


def format_duration_ms(duration_ms: int) -> str:
    """The k6 spelling of a whole number of milliseconds, exact.

    Whole seconds read as hours, minutes and seconds (``"1h30m"``, ``"20s"``);
    anything else as milliseconds (``"6666ms"``).
    """
    if duration_ms < 0:
        raise ValueError(f"negative duration {duration_ms} ms")
    if duration_ms == 0:
        return "0s"
    if duration_ms % 1000:
        return f"{duration_ms}ms"
    hours, rest = divmod(duration_ms // 1000, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{amount}{unit}" for amount, unit in parts if amount)


# Parsers turn the text of a setting into its value or raise ValueError; the
# Setting that uses one turns the ValueError into a ConfigError.


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _INTEGER.fullmatch(text):
            raise ValueError(text)
        value = int(text)
        if value < minimum:
            raise ValueError(text)
        return value

    return parse


def _number(minimum: float, maximum: float = math.inf) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value: float = int(text) if _INTEGER.fullmatch(text) else float(text)
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise ValueError(text)
        return value

    return parse


def _seed(text: str) -> int | None:
    return None if text == "" else _integer(0)(text)


def _duration(text: str) -> int:
    value = parse_duration_ms(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    return _duration(text) / 1000


def _boolean(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(text)


def _text(text: str) -> str:
    return text


def _image_tag(text: str) -> str:
    if any(character.isspace() for character in text):
        raise ValueError(text)
    return text


def _arrivals(text: str) -> str:
    if text.lower() not in ARRIVAL_MODES:
        raise ValueError(text)
    return text.lower()


def _plan_path(text: str) -> str:
    if text and not Path(text).is_file():
        raise ValueError(text)
    return text


def _function_ids(text: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    for item in text.split(",") if text else []:
        name, equals, function_id = (part.strip() for part in item.partition("="))
        if not name or not equals or not function_id or name in ids:
            raise ValueError(text)
        ids[name] = function_id
    return ids


def _dump_duration_s(value: float) -> str:
    return format_duration_ms(round(value * 1000))


def _dump_function_ids(value: Mapping[str, str]) -> str:
    return ",".join(f"{name}={function_id}" for name, function_id in value.items())


def _identity(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Setting:
    """One setting: its names, default, help and how its text is read.

    ``field`` is the attribute it fills in ``Settings``, or in the
    ``FunctionSettings`` of ``function`` when that is set. ``dump`` turns the
    value back into a JSON-friendly form that reads back as the same value.
    """

    env: str
    flag: str
    default: str
    help: str
    accepted: str
    parse: Callable[[str], Any]
    field: str
    function: str | None = None
    web_ui: bool = True
    dump: Callable[[Any], Any] = _identity

    @property
    def dest(self) -> str:
        """The attribute name argparse gives the flag (``workload_seed``)."""
        return self.flag.lstrip("-").replace("-", "_")

    def error(self, value: object, accepted: str | None = None) -> ConfigError:
        return ConfigError(self.env, value, accepted or self.accepted, flag=self.flag)

    def read(self, raw: str | None) -> Any:
        """The value of ``raw``; None, empty or blank text gives the default."""
        text = self.default if raw is None or str(raw).strip() == "" else str(raw)
        try:
            return self.parse(text.strip())
        except ValueError:
            raise self.error(raw if raw not in (None, "") else text) from None


WHOLE = "a whole number of 0 or more"
POSITIVE = "a whole number of 1 or more"
# Far above what one process sends (a few thousand calls/s); a larger value
# is a typo that would plan billions of calls.
MAX_RATE = 100_000
RATE = f"a number from 0 to {MAX_RATE:,} (calls per second)"
DURATION = "a duration above 0 such as 60s, 15m, 1h30m or 500ms"


@dataclass(frozen=True)
class _FunctionDefaults:
    """What the table needs to know of a function: names and resources."""

    name: str
    prefix: str
    image_tag: str
    memory_mib: int
    cpu_period: int
    cpu_quota: int


def _global(env: str, field: str, default: str, help: str, accepted: str, parse, **kw):
    flag = "--" + env.lower().replace("_", "-")
    return Setting(env, flag, default, help, accepted, parse, field, **kw)


def _global_settings() -> list[Setting]:
    return [
        _global(
            "WORKLOAD_SEED",
            "seed",
            "",
            "Seed of the workload plan; empty draws one from the clock",
            "a whole number of 0 or more, or empty to draw one from the clock",
            _seed,
        ),
        _global(
            "TOTAL_TEST_DURATION",
            "total_duration_ms",
            "60s",
            "Length of the workload plan (60s, 15m, 1h30m)",
            f"{DURATION} (a bare number is seconds)",
            _duration,
            dump=format_duration_ms,
        ),
        _global(
            "MIN_PREALLOCATED_VUS",
            "min_preallocated_vus",
            "10",
            "Fewest VUs a scenario starts with",
            WHOLE,
            _integer(0),
        ),
        _global(
            "MAX_PREALLOCATED_VUS",
            "max_preallocated_vus",
            "50",
            "Most VUs a scenario starts with",
            WHOLE,
            _integer(0),
        ),
        _global(
            "MIN_MAX_VUS",
            "min_max_vus",
            "20",
            "Lowest VU limit of a scenario",
            WHOLE,
            _integer(0),
        ),
        _global(
            "MAX_MAX_VUS",
            "max_max_vus",
            "100",
            "Highest VU limit of a scenario",
            WHOLE,
            _integer(0),
        ),
        _global(
            "RAMPING_START_RATE_MIN",
            "ramping_start_rate_min",
            "1",
            "Lowest start rate of a ramping scenario (calls/s)",
            RATE,
            _number(0, MAX_RATE),
        ),
        _global(
            "RAMPING_START_RATE_MAX",
            "ramping_start_rate_max",
            "5",
            "Highest start rate of a ramping scenario (calls/s)",
            RATE,
            _number(0, MAX_RATE),
        ),
        _global(
            "PERSIST_GENERATION",
            "persist_generation",
            "false",
            "Also copy the plan to ./generated_scenarios.json",
            "true or false (also 1/0, yes/no)",
            _boolean,
        ),
    ]


def _function_settings(function: _FunctionDefaults) -> list[Setting]:
    def setting(suffix: str, field: str, default: object, help: str, accepted, parse):
        env = f"{function.prefix}_{suffix}"
        flag = "--" + env.lower().replace("_", "-")
        text = f"{function.name}: {help}"
        return Setting(
            env, flag, str(default), text, accepted, parse, field, function.name
        )

    return [
        setting(
            "MIN_SCENARIOS",
            "min_scenarios",
            1,
            "fewest scenarios in the plan",
            WHOLE,
            _integer(0),
        ),
        setting(
            "MAX_SCENARIOS",
            "max_scenarios",
            3,
            "most scenarios in the plan; 0 leaves the function out",
            WHOLE,
            _integer(0),
        ),
        setting(
            "CONSTANT_SCENARIOS_RATIO",
            "constant_ratio",
            0.5,
            "share of constant-rate scenarios (the others ramp)",
            "a number from 0 to 1",
            _number(0, 1),
        ),
        setting(
            "CONSTANT_RATE_MIN",
            "constant_rate_min",
            5,
            "lowest constant rate (calls/s)",
            RATE,
            _number(0, MAX_RATE),
        ),
        setting(
            "CONSTANT_RATE_MAX",
            "constant_rate_max",
            20,
            "highest constant rate (calls/s)",
            RATE,
            _number(0, MAX_RATE),
        ),
        setting(
            "BURST_TARGET_RATE_MIN",
            "burst_target_rate_min",
            10,
            "lowest rate a ramp ends at (calls/s)",
            RATE,
            _number(0, MAX_RATE),
        ),
        setting(
            "BURST_TARGET_RATE_MAX",
            "burst_target_rate_max",
            40,
            "highest rate a ramp ends at (calls/s)",
            RATE,
            _number(0, MAX_RATE),
        ),
        setting(
            "IMAGE_TAG",
            "image_tag",
            function.image_tag,
            "container image tag",
            "an image tag without spaces",
            _image_tag,
        ),
        setting(
            "MEMORY_MIB",
            "memory_mib",
            function.memory_mib,
            "memory limit (MiB)",
            POSITIVE,
            _integer(1),
        ),
        setting(
            "CPU_PERIOD",
            "cpu_period",
            function.cpu_period,
            "CFS CPU period (microseconds)",
            f"{POSITIVE} (microseconds)",
            _integer(1),
        ),
        setting(
            "CPU_QUOTA",
            "cpu_quota",
            function.cpu_quota,
            "CFS CPU quota (microseconds)",
            f"{POSITIVE} (microseconds)",
            _integer(1),
        ),
    ]


def _plugin_settings(names: list[str]) -> list[Setting]:
    return [
        Setting(
            "HYPERFAAS_CALL_TIMEOUT",
            "--call-timeout",
            "60",
            "Deadline of every call, in seconds or as a duration (1m30s)",
            "a duration above 0 such as 60 (seconds), 1m30s or 500ms",
            _seconds,
            "call_timeout_s",
            dump=_dump_duration_s,
        ),
        Setting(
            "HYPERFAAS_RESULTS_DIR",
            "--results-dir",
            "",
            "Folder for the run's files; empty: a new folder under results/",
            "a folder path",
            _text,
            "results_dir",
            web_ui=False,
        ),
        Setting(
            "HYPERFAAS_DB",
            "--db",
            "",
            "SQLite database of the calls; empty: metrics.db in the results folder",
            "a file path",
            _text,
            "db_path",
            web_ui=False,
        ),
        Setting(
            "HYPERFAAS_PLAN",
            "--plan",
            "",
            "Plan JSON file to run as it is, instead of generating a plan",
            "the path of an existing plan file, or empty to generate a plan",
            _plan_path,
            "plan_path",
        ),
        Setting(
            "HYPERFAAS_FUNCTION_IDS",
            "--function-ids",
            "",
            "Reuse existing functions instead of creating them: echo=ID,bfs=ID",
            "name=ID pairs separated by commas, such as echo=ID,bfs=ID,"
            f" with names from: {', '.join(names)}",
            _function_ids,
            "function_ids",
            dump=_dump_function_ids,
        ),
        Setting(
            "HYPERFAAS_ARRIVALS",
            "--arrivals",
            "even",
            "Start instants of the calls: even (as k6) or poisson",
            " or ".join(ARRIVAL_MODES),
            _arrivals,
            "arrivals",
        ),
        Setting(
            "HYPERFAAS_EMULATOR_COLD_START_MS",
            "--emulator-cold-start-ms",
            "300",
            "Built-in emulator: cold start delay in milliseconds",
            "a whole number of milliseconds, 0 or more",
            _integer(0),
            "emulator_cold_start_ms",
            web_ui=False,
        ),
        Setting(
            "HYPERFAAS_EMULATOR_IDLE_TIMEOUT",
            "--emulator-idle-timeout",
            "30s",
            "Built-in emulator: an instance idle this long is stopped",
            f"{DURATION} (a bare number is seconds)",
            _seconds,
            "emulator_idle_timeout_s",
            web_ui=False,
            dump=_dump_duration_s,
        ),
    ]


def _table(functions: list[_FunctionDefaults]) -> tuple[Setting, ...]:
    table = _global_settings()
    for function in functions:
        table += _function_settings(function)
    table += _plugin_settings([function.name for function in functions])
    return tuple(table)


def _defaults_of(specs: Mapping[str, FunctionSpec]) -> list[_FunctionDefaults]:
    return [
        _FunctionDefaults(
            spec.name,
            spec.env_prefix,
            spec.image_tag,
            spec.memory_mib,
            spec.cpu_period,
            spec.cpu_quota,
        )
        for spec in specs.values()
    ]


def settings_table(
    functions: Mapping[str, FunctionSpec] | None = None,
) -> tuple[Setting, ...]:
    """Every setting: the global ones, then each function's, then the plugin's.

    ``functions`` defaults to the registry of benchmark functions.
    """
    return _table(_defaults_of(registry() if functions is None else functions))


@dataclass(frozen=True)
class FunctionSettings:
    """The settings of one benchmark function; rates in calls per second."""

    name: str
    prefix: str
    min_scenarios: int
    max_scenarios: int
    constant_ratio: float
    constant_rate_min: float
    constant_rate_max: float
    burst_target_rate_min: float
    burst_target_rate_max: float
    image_tag: str
    memory_mib: int
    cpu_period: int
    cpu_quota: int

    @property
    def enabled(self) -> bool:
        """False when the plan gives this function no scenario."""
        return self.max_scenarios > 0


@dataclass(frozen=True)
class Settings:
    """Every setting in effect, validated. Rates are calls per second."""

    seed: int
    seed_drawn: bool
    total_duration_ms: int
    total_duration_text: str
    min_preallocated_vus: int
    max_preallocated_vus: int
    min_max_vus: int
    max_max_vus: int
    ramping_start_rate_min: float
    ramping_start_rate_max: float
    persist_generation: bool
    functions: dict[str, FunctionSettings]
    call_timeout_s: float
    results_dir: str
    db_path: str
    plan_path: str
    function_ids: dict[str, str]
    arrivals: str
    emulator_cold_start_ms: int
    emulator_idle_timeout_s: float

    def as_configuration(self) -> dict[str, Any]:
        """Every setting in effect by environment variable name, for JSON.

        The seed is the one in effect, even when it was drawn. Given back as
        text to ``load_settings``, these values give equal settings.
        """
        functions = [
            _FunctionDefaults(
                f.name, f.prefix, f.image_tag, f.memory_mib, f.cpu_period, f.cpu_quota
            )
            for f in self.functions.values()
        ]
        configuration: dict[str, Any] = {}
        for setting in _table(functions):
            owner = (
                self if setting.function is None else self.functions[setting.function]
            )
            configuration[setting.env] = setting.dump(getattr(owner, setting.field))
        return configuration


def load_settings(
    values: Mapping[str, str | None],
    functions: Mapping[str, FunctionSpec] | None = None,
) -> Settings:
    """Validated settings from text values keyed by environment variable name.

    A missing, None or empty value gives the default; ``functions`` defaults to
    the registry. Raises ConfigError for the first value that is not accepted.
    """
    functions = registry() if functions is None else functions
    table = settings_table(functions)
    by_env = {setting.env: setting for setting in table}
    read = {setting.env: setting.read(values.get(setting.env)) for setting in table}

    def raw_of(env: str) -> str:
        return values.get(env) or by_env[env].default

    def check_range(low_env: str, high_env: str) -> None:
        if read[low_env] > read[high_env]:
            high = by_env[high_env]
            raise by_env[low_env].error(
                raw_of(low_env),
                f"at most {high_env} ({high.flag}), which is {raw_of(high_env)}",
            )

    check_range("MIN_PREALLOCATED_VUS", "MAX_PREALLOCATED_VUS")
    check_range("MIN_MAX_VUS", "MAX_MAX_VUS")
    check_range("RAMPING_START_RATE_MIN", "RAMPING_START_RATE_MAX")

    function_settings: dict[str, FunctionSettings] = {}
    for spec in functions.values():
        fields = {
            setting.field: read[setting.env]
            for setting in table
            if setting.function == spec.name
        }
        function = FunctionSettings(name=spec.name, prefix=spec.env_prefix, **fields)
        prefix = spec.env_prefix
        if function.enabled:
            check_range(f"{prefix}_MIN_SCENARIOS", f"{prefix}_MAX_SCENARIOS")
        check_range(f"{prefix}_CONSTANT_RATE_MIN", f"{prefix}_CONSTANT_RATE_MAX")
        check_range(
            f"{prefix}_BURST_TARGET_RATE_MIN", f"{prefix}_BURST_TARGET_RATE_MAX"
        )
        function_settings[spec.name] = function

    if read["MAX_MAX_VUS"] < 1 and any(f.enabled for f in function_settings.values()):
        raise by_env["MAX_MAX_VUS"].error(
            raw_of("MAX_MAX_VUS"),
            "1 or more while a function has scenarios"
            " (P_MAX_SCENARIOS=0 leaves function P out)",
        )
    if any(name not in functions for name in read["HYPERFAAS_FUNCTION_IDS"]):
        raise by_env["HYPERFAAS_FUNCTION_IDS"].error(raw_of("HYPERFAAS_FUNCTION_IDS"))

    fields = {
        setting.field: read[setting.env]
        for setting in table
        if setting.function is None
    }
    drawn = fields["seed"] is None
    if drawn:
        fields["seed"] = time.time_ns() // 1_000_000
    return Settings(
        seed_drawn=drawn,
        total_duration_text=format_duration_ms(fields["total_duration_ms"]),
        functions=function_settings,
        **fields,
    )


def settings_from_env(
    environ: Mapping[str, str] = os.environ,
    functions: Mapping[str, FunctionSpec] | None = None,
) -> Settings:
    """Validated settings from environment variables."""
    return load_settings(environ, functions)


def settings_from_options(
    options: Any, functions: Mapping[str, FunctionSpec] | None = None
) -> Settings:
    """Validated settings from a parsed Locust or argparse namespace.

    Each setting is read from the attribute of its flag (``workload_seed``,
    ``echo_min_scenarios``); a missing attribute gives the default.
    """
    values = {
        setting.env: getattr(options, setting.dest, None)
        for setting in settings_table(functions)
    }
    return load_settings(values, functions)


def add_locust_arguments(
    parser: Any, functions: Mapping[str, FunctionSpec] | None = None
) -> None:
    """Register every setting as an option of Locust's argument parser.

    Call it from an ``init_command_line_parser`` listener. Values stay text
    (``type=str``) so that ``load_settings`` alone judges them.
    """
    group = parser.add_argument_group(
        "HyperFaaS", "Settings of the workload plan and the plugin."
    )
    for setting in settings_table(functions):
        default = repr(setting.default) if setting.default else "empty"
        action = group.add_argument(
            setting.flag,
            env_var=setting.env,
            default=setting.default,
            type=str,
            metavar="VALUE",
            help=f"{setting.help} [env {setting.env}, default {default}]",
        )
        # An argument group does not take Locust's extra keywords; these are the
        # attributes LocustArgumentParser.add_argument sets from them.
        action.include_in_web_ui = setting.web_ui
        action.is_secret = False
        action.is_required = False
        action.is_multiple = False
