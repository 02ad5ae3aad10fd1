"""The seeded workload plan: which function gets which arrival rate, and when.

``generate_plan`` is a pure function of the settings and the seed. Every
enabled function gets its own random generator, seeded from the workload seed
and the function's name, and draws N scenarios that run back to back and tile
the total duration exactly. Each scenario is constant-arrival-rate or
ramping-arrival-rate (one linear stage from a start rate to a target), with
preallocated and maximum VUs; functions run concurrently.

The plan's file form is ``generated_scenarios.json``::

    {"metadata": {"seed": 42, "totalDuration": "1m", "generatedAt": "...",
                  "configuration": {...}, "echoFunctionId": "...",
                  "functionIds": {"echo": "..."}},
     "scenarios": {"echo-0": {"executor": "constant-arrival-rate",
                              "function": "echo", "imageTag": "...",
                              "startTime": "0s", "duration": "20s",
                              "rate": 12, "timeUnit": "1s",
                              "preAllocatedVUs": 17, "maxVUs": 64}, ...}}

Scenarios use k6's keys. A ramping scenario has ``startRate`` and ``stages``
(``[{"target": 30, "duration": "20s"}]``) instead of ``duration`` and ``rate``.
A plan file written by hand may leave out ``imageTag`` (the function's
configured tag applies), ``timeUnit`` (``1s``), ``startTime`` (``0s``),
``startRate`` (0) and ``maxVUs`` (``preAllocatedVUs``). The function is the
``function`` key; without it, k6's ``exec`` (``echoFunction`` or ``echo``),
else the scenario name's prefix (``echo-0``, ``echo_burst``) names it.
k6's ``gracefulStop``, ``gracefulRampDown``, ``tags`` and ``env`` are accepted
and ignored. The scenarios of one function must not overlap in time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import (
    Settings,
    format_duration_ms,
    load_settings,
    parse_duration_ms,
    settings_table,
)
from .exceptions import ConfigError, PlanError
from .functions import registry

__all__ = [
    "CONSTANT",
    "PLAN_FILE_NAME",
    "RAMPING",
    "Plan",
    "Scenario",
    "Stage",
    "build_metadata",
    "function_rng",
    "generate_plan",
    "load_plan",
    "main",
    "plan_from_json",
    "plan_to_json",
    "save_plan",
    "write_plan",
]

CONSTANT = "constant-arrival-rate"
RAMPING = "ramping-arrival-rate"
EXECUTORS = (CONSTANT, RAMPING)
PLAN_FILE_NAME = "generated_scenarios.json"
DEFAULT_TIME_UNIT_MS = 1000

_SCENARIO_KEYS = {
    "executor",
    "function",
    "exec",
    "imageTag",
    "startTime",
    "duration",
    "rate",
    "startRate",
    "stages",
    "timeUnit",
    "preAllocatedVUs",
    "maxVUs",
    "gracefulStop",
    "gracefulRampDown",
    "tags",
    "env",
}


@dataclass(frozen=True)
class Stage:
    """A stage of a ramping scenario: the rate moves linearly to ``target``."""

    duration_ms: int
    target: float


@dataclass(frozen=True)
class Scenario:
    """One scenario of the plan; rates are calls per ``time_unit_ms``.

    ``start_ms`` counts from the start of the plan. A constant scenario has
    ``rate``; a ramping one has ``start_rate`` and ``stages``, whose durations
    add up to ``duration_ms``.
    """

    name: str
    function: str
    image_tag: str
    executor: str
    start_ms: int
    duration_ms: int
    rate: float | None
    start_rate: float | None
    stages: tuple[Stage, ...]
    preallocated_vus: int
    max_vus: int
    time_unit_ms: int = DEFAULT_TIME_UNIT_MS

    @property
    def end_ms(self) -> int:
        """When the scenario ends, from the start of the plan."""
        return self.start_ms + self.duration_ms

    @property
    def is_constant(self) -> bool:
        return self.executor == CONSTANT

    def per_second(self, rate: float) -> float:
        """A rate of this scenario (per time unit) in calls per second."""
        return rate * 1000 / self.time_unit_ms


@dataclass(frozen=True)
class Plan:
    """Every scenario of a run, ordered by function, then start."""

    seed: int
    total_duration_ms: int
    scenarios: tuple[Scenario, ...]

    def functions(self) -> list[str]:
        """Names of the functions that have scenarios, in plan order."""
        return list(dict.fromkeys(scenario.function for scenario in self.scenarios))

    def for_function(self, name: str) -> tuple[Scenario, ...]:
        """The scenarios of one function, in order of start."""
        return tuple(s for s in self.scenarios if s.function == name)

    @property
    def end_ms(self) -> int:
        """When the last scenario ends (0 for a plan without scenarios)."""
        return max((scenario.end_ms for scenario in self.scenarios), default=0)


def function_rng(seed: int, name: str) -> random.Random:
    """The random generator for ``name``, independent of other names."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _draw(rng: random.Random, low: float, high: float) -> float:
    if float(low).is_integer() and float(high).is_integer():
        return rng.randint(int(low), int(high))
    return round(rng.uniform(low, high), 3)


def generate_plan(settings: Settings) -> Plan:
    """The plan for ``settings``: the same settings and seed give the same plan."""
    total = settings.total_duration_ms
    scenarios: list[Scenario] = []
    for function in settings.functions.values():
        if not function.enabled:
            continue
        rng = function_rng(settings.seed, function.name)
        count = rng.randint(function.min_scenarios, function.max_scenarios)

        for index in range(count):
            start_ms = total * index // count
            duration_ms = total * (index + 1) // count - start_ms
            if rng.random() < function.constant_ratio:
                executor = CONSTANT
                rate = _draw(
                    rng, function.constant_rate_min, function.constant_rate_max
                )
                start_rate, stages = None, ()
            else:
                executor, rate = RAMPING, None
                start_rate = _draw(
                    rng,
                    settings.ramping_start_rate_min,
                    settings.ramping_start_rate_max,
                )
                target = _draw(
                    rng, function.burst_target_rate_min, function.burst_target_rate_max
                )
                stages = (Stage(duration_ms, target),)
            preallocated = rng.randint(
                settings.min_preallocated_vus, settings.max_preallocated_vus
            )
            max_vus = max(
                rng.randint(settings.min_max_vus, settings.max_max_vus), preallocated
            )
            scenarios.append(
                Scenario(
                    name=f"{function.name}-{index}",
                    function=function.name,
                    image_tag=function.image_tag,
                    executor=executor,
                    start_ms=start_ms,
                    duration_ms=duration_ms,
                    rate=rate,
                    start_rate=start_rate,
                    stages=stages,
                    preallocated_vus=preallocated,
                    max_vus=max_vus,
                )
            )
    return Plan(settings.seed, total, tuple(scenarios))


# JSON form


def _scenario_to_json(scenario: Scenario) -> dict[str, Any]:
    document: dict[str, Any] = {
        "executor": scenario.executor,
        "function": scenario.function,
        "imageTag": scenario.image_tag,
        "startTime": format_duration_ms(scenario.start_ms),
    }
    if scenario.is_constant:
        document["duration"] = format_duration_ms(scenario.duration_ms)
        document["rate"] = scenario.rate
    else:
        document["startRate"] = scenario.start_rate
        document["stages"] = [
            {"target": stage.target, "duration": format_duration_ms(stage.duration_ms)}
            for stage in scenario.stages
        ]
    document["timeUnit"] = format_duration_ms(scenario.time_unit_ms)
    document["preAllocatedVUs"] = scenario.preallocated_vus
    document["maxVUs"] = scenario.max_vus
    return document


def plan_to_json(plan: Plan, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as the ``generated_scenarios.json`` document.

    The metadata gets the plan's ``seed`` and ``totalDuration`` unless it has
    them, so that ``plan_from_json`` gives the same plan back.
    """
    own = {
        "seed": plan.seed,
        "totalDuration": format_duration_ms(plan.total_duration_ms),
    }
    return {
        "metadata": {**own, **metadata},
        "scenarios": {s.name: _scenario_to_json(s) for s in plan.scenarios},
    }


def build_metadata(
    plan: Plan, settings: Settings, function_ids: Mapping[str, str]
) -> dict[str, Any]:
    """The ``metadata`` of a plan file: seed, duration, time, settings and ids."""
    generated_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    metadata: dict[str, Any] = {
        "seed": plan.seed,
        "totalDuration": format_duration_ms(plan.total_duration_ms),
        "generatedAt": generated_at.replace("+00:00", "Z"),
        "configuration": settings.as_configuration(),
    }
    for name, function_id in function_ids.items():
        metadata[f"{name}FunctionId"] = function_id
    metadata["functionIds"] = dict(function_ids)
    return metadata


def write_plan(
    path: str | os.PathLike[str], plan: Plan, metadata: Mapping[str, Any]
) -> Path:
    """Write the plan file at ``path`` (making its folder); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(plan_to_json(plan, metadata), indent=2) + "\n"
    target.write_text(text, encoding="utf-8")
    return target


def save_plan(
    results_dir: str | os.PathLike[str],
    plan: Plan,
    metadata: Mapping[str, Any],
    settings: Settings,
) -> list[Path]:
    """Write the plan file into the results folder; return the files written.

    With ``PERSIST_GENERATION`` on, the file is also copied to the working
    directory, for tools that look for it there.
    """
    written = [write_plan(Path(results_dir) / PLAN_FILE_NAME, plan, metadata)]
    if settings.persist_generation:
        copy = Path.cwd() / PLAN_FILE_NAME
        shutil.copyfile(written[0], copy)
        written.append(copy)
    return written


def load_plan(path: str | os.PathLike[str], settings: Settings | None = None) -> Plan:
    """Read a plan file (see ``plan_from_json``); PlanError says what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(
            f"cannot read plan file {os.fspath(path)!r}: {exc.strerror}"
        ) from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise PlanError(
            f"plan file {os.fspath(path)!r} is not valid JSON: {exc}"
        ) from exc
    return plan_from_json(document, settings, source=os.fspath(path))


def plan_from_json(
    document: Any, settings: Settings | None = None, source: str = "plan"
) -> Plan:
    """The plan a ``generated_scenarios.json`` document describes.

    Scenarios run as written; see the module docstring for the keys. The seed
    and total duration come from ``metadata`` when it has them, else from the
    settings (seed 0 without settings) and the end of the last scenario.
    Without settings, the registry's functions and image tags apply.
    """
    if not isinstance(document, dict) or not isinstance(
        document.get("scenarios"), dict
    ):
        raise PlanError(f"{source}: expected a JSON object with a 'scenarios' object")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise PlanError(f"{source}: 'metadata' must be a JSON object")

    image_tags = _image_tags(settings)
    reader = _ScenarioReader(image_tags, source)
    scenarios = [
        reader.read(name, body) for name, body in document["scenarios"].items()
    ]
    order = {name: index for index, name in enumerate(image_tags)}
    scenarios.sort(key=lambda s: (order[s.function], s.start_ms, s.name))
    _check_no_overlap(scenarios, source)
    _check_one_image_per_function(scenarios, source)

    seed = metadata.get("seed", 0 if settings is None else settings.seed)
    if isinstance(seed, str) and seed.isdigit():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise PlanError(f"{source}: metadata seed {seed!r} is not a whole number >= 0")
    end_ms = max((s.end_ms for s in scenarios), default=0)
    total_ms = end_ms
    if "totalDuration" in metadata:
        total_ms = _duration(
            metadata["totalDuration"], f"{source}: metadata totalDuration"
        )
        late = [s for s in scenarios if s.end_ms > total_ms]
        if late:
            raise PlanError(
                f"{source}: scenario {late[0].name!r} ends at "
                f"{format_duration_ms(late[0].end_ms)}, after the plan's totalDuration "
                f"{format_duration_ms(total_ms)}"
            )
    return Plan(seed, total_ms, tuple(scenarios))


def _image_tags(settings: Settings | None) -> dict[str, str]:
    """The image tag of every known function, in registry order."""
    if settings is not None:
        return {name: f.image_tag for name, f in settings.functions.items()}
    return {name: spec.image_tag for name, spec in registry().items()}


def _duration(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise PlanError(f"{where}: {value!r} is not a duration string such as '30s'")
    try:
        return parse_duration_ms(value, bare_seconds=False)
    except ValueError:
        raise PlanError(
            f"{where}: {value!r} is not a duration such as '30s', '1m30s' or '500ms'"
        ) from None


def _check_no_overlap(scenarios: Sequence[Scenario], source: str) -> None:
    previous: dict[str, Scenario] = {}
    for scenario in scenarios:
        before = previous.get(scenario.function)
        if before is not None and scenario.start_ms < before.end_ms:
            raise PlanError(
                f"{source}: scenario {scenario.name!r} starts at "
                f"{format_duration_ms(scenario.start_ms)}, before scenario "
                f"{before.name!r} of the same function ends at "
                f"{format_duration_ms(before.end_ms)}; the scenarios of one "
                "function must not overlap"
            )
        if before is None or scenario.end_ms > before.end_ms:
            previous[scenario.function] = scenario


def _check_one_image_per_function(scenarios: Sequence[Scenario], source: str) -> None:
    # One function is created per name and run, so one image tag serves them all.
    first: dict[str, Scenario] = {}
    for scenario in scenarios:
        seen = first.setdefault(scenario.function, scenario)
        if scenario.image_tag != seen.image_tag:
            raise PlanError(
                f"{source}: scenario {scenario.name!r} has imageTag "
                f"{scenario.image_tag!r} but scenario {seen.name!r} of the same "
                f"function {scenario.function!r} has {seen.image_tag!r}; one function "
                "is created per run, so its scenarios must share one image tag"
            )


class _ScenarioReader:
    """Turns one scenario of a plan file into a Scenario, or a PlanError."""

    def __init__(self, image_tags: Mapping[str, str], source: str) -> None:
        self.image_tags = image_tags
        self.source = source

    def read(self, name: str, body: Any) -> Scenario:
        self.name = name
        if not isinstance(body, dict):
            raise self.error(None, "expected a JSON object")
        unknown = sorted(set(body) - _SCENARIO_KEYS)
        if unknown:
            raise self.error(
                unknown[0],
                f"unknown key; accepted: {', '.join(sorted(_SCENARIO_KEYS))}",
            )
        self.body = body

        function = self.function()
        executor = body.get("executor")
        if executor not in EXECUTORS:
            raise self.error(
                "executor", f"{executor!r} is not one of {', '.join(EXECUTORS)}"
            )
        image_tag = body.get("imageTag", self.image_tags[function])
        if not isinstance(image_tag, str) or not image_tag.strip():
            raise self.error("imageTag", f"{image_tag!r} is not an image tag")
        start_ms = self.duration("startTime", "0s")
        time_unit_ms = self.duration("timeUnit", "1s")
        if time_unit_ms <= 0:
            raise self.error("timeUnit", "must be above 0")

        if executor == CONSTANT:
            for key in ("startRate", "stages"):
                if key in body:
                    raise self.error(key, f"not a key of {CONSTANT} scenarios")
            duration_ms = self.duration("duration")
            rate, start_rate, stages = self.number("rate"), None, ()
        else:
            for key in ("rate", "duration"):
                if key in body:
                    raise self.error(
                        key, f"not a key of {RAMPING} scenarios (use stages)"
                    )
            rate, start_rate = None, self.number("startRate", 0)
            stages = self.stages()
            duration_ms = sum(stage.duration_ms for stage in stages)

        preallocated = self.whole("preAllocatedVUs")
        max_vus = self.whole("maxVUs", preallocated)
        if max_vus < preallocated:
            raise self.error(
                "maxVUs", f"{max_vus} is below preAllocatedVUs {preallocated}"
            )
        return Scenario(
            name=name,
            function=function,
            image_tag=image_tag,
            executor=executor,
            start_ms=start_ms,
            duration_ms=duration_ms,
            rate=rate,
            start_rate=start_rate,
            stages=stages,
            preallocated_vus=preallocated,
            max_vus=max_vus,
            time_unit_ms=time_unit_ms,
        )

    def error(self, key: str | None, problem: str) -> PlanError:
        where = f"scenario {self.name!r}" + (f", key {key!r}" if key else "")
        return PlanError(f"{self.source}: {where}: {problem}")

    def function(self) -> str:
        known = self.image_tags
        if "function" in self.body:
            name = self.body["function"]
            if name not in known:
                raise self.error(
                    "function", f"{name!r} is not one of {', '.join(known)}"
                )
            return name
        if "exec" in self.body:
            exec_name = str(self.body["exec"])
            name = exec_name.removesuffix("Function")
            if name not in known:
                raise self.error(
                    "exec",
                    f"{exec_name!r} names no known function ({', '.join(known)}); "
                    "add a 'function' key",
                )
            return name
        prefixes = [
            name
            for name in known
            if self.name == name or self.name.startswith((f"{name}-", f"{name}_"))
        ]
        if not prefixes:
            raise self.error(
                "function",
                f"missing, and the name does not start with a function name "
                f"({', '.join(known)}) followed by '-' or '_'",
            )
        return max(prefixes, key=len)

    def duration(self, key: str, default: str | None = None) -> int:
        if key not in self.body and default is not None:
            return parse_duration_ms(default)
        if key not in self.body:
            raise self.error(key, "missing")
        return _duration(
            self.body[key], f"{self.source}: scenario {self.name!r}, key {key!r}"
        )

    def number(self, key: str, default: float | None = None) -> float:
        if key not in self.body and default is not None:
            return default
        if key not in self.body:
            raise self.error(key, "missing")
        return self.check_number(key, self.body[key])

    def check_number(self, key: str, value: Any) -> float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 <= value < math.inf:
            raise self.error(key, f"{value!r} is not a number of 0 or more")
        return value

    def whole(self, key: str, default: int | None = None) -> int:
        if key not in self.body and default is not None:
            return default
        if key not in self.body:
            raise self.error(key, "missing")
        value = self.body[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(key, f"{value!r} is not a whole number of 0 or more")
        return value

    def stages(self) -> tuple[Stage, ...]:
        stages = self.body.get("stages")
        if not isinstance(stages, list) or not stages:
            raise self.error("stages", "expected a list of {target, duration} objects")
        result = []
        for index, stage in enumerate(stages):
            key = f"stages[{index}]"
            if not isinstance(stage, dict) or set(stage) != {"target", "duration"}:
                raise self.error(key, "expected an object with target and duration")
            target = self.check_number(f"{key}.target", stage["target"])
            where = f"{self.source}: scenario {self.name!r}, key '{key}.duration'"
            result.append(Stage(_duration(stage["duration"], where), target))
        return tuple(result)


# The ``locust-hyperfaas plan`` command


def _summary(plan: Plan, settings: Settings) -> str:
    from .arrivals import planned_count

    lines = [
        f"seed {plan.seed}, {format_duration_ms(plan.total_duration_ms)}, "
        f"{len(plan.scenarios)} scenarios, {settings.arrivals} arrivals",
        f"{'scenario':<16} {'executor':<8} {'start':>9} {'duration':>9} "
        f"{'rate/s':>15} {'VUs':>9} {'calls':>8}",
    ]
    for s in plan.scenarios:
        if s.is_constant:
            rates = f"{s.per_second(s.rate or 0):g}"
        else:
            targets = [s.per_second(stage.target) for stage in s.stages]
            rates = " > ".join(
                f"{r:g}" for r in [s.per_second(s.start_rate or 0), *targets]
            )
        calls = str(planned_count(s, mode=settings.arrivals, seed=plan.seed))
        start, duration = (
            format_duration_ms(s.start_ms),
            format_duration_ms(s.duration_ms),
        )
        executor = "constant" if s.is_constant else "ramping"
        vus = f"{s.preallocated_vus}/{s.max_vus}"
        lines.append(
            f"{s.name:<16} {executor:<8} {start:>9} {duration:>9} "
            f"{rates:>15} {vus:>9} {calls:>8}"
        )
    return "\n".join(lines)


def _print(text: str) -> None:
    """Print to stdout; a reader that stops early (``| head``) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: Sequence[str] | None = None, prog: str = "locust-hyperfaas plan") -> int:
    """Print the plan the settings give (environment, then flags) as JSON."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Print or write the seeded workload plan. Settings come from "
        "environment variables (WORKLOAD_SEED, TOTAL_TEST_DURATION, ...) and the "
        "flags below, which win. With --plan, the plan file is checked and shown.",
    )
    parser.add_argument("--out", metavar="FILE", help="write the plan JSON to FILE")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print a table of the scenarios instead of the JSON (with --out, "
        "the JSON still goes to FILE)",
    )
    table = settings_table()
    for setting in table:
        parser.add_argument(setting.flag, metavar="VALUE", help=f"[env {setting.env}]")
    args = parser.parse_args(None if argv is None else list(argv))

    values: dict[str, str | None] = {s.env: os.environ.get(s.env) for s in table}
    for setting in table:
        given = getattr(args, setting.dest)
        if given is not None:
            values[setting.env] = given
    try:
        settings = load_settings(values)
        if settings.plan_path:
            plan = load_plan(settings.plan_path, settings)
        else:
            plan = generate_plan(settings)
    except (ConfigError, PlanError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2

    metadata = build_metadata(plan, settings, settings.function_ids)
    if args.out:
        folder = Path(args.out).resolve().parent
        try:
            if not folder.is_dir():
                raise FileNotFoundError(f"no folder {folder}")
            write_plan(args.out, plan, metadata)
        except OSError as exc:
            print(f"{prog}: error: cannot write {args.out}: {exc}", file=sys.stderr)
            return 2
    if args.summary:
        _print(_summary(plan, settings))
    elif not args.out:
        _print(json.dumps(plan_to_json(plan, metadata), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="python -m locust_hyperfaas.plan"))
