"""Load the results of the k6 load generator into a metrics database.

``locust-hyperfaas import-k6 --csv test_results.csv --json
generated_scenarios.json --db metrics.db`` reads the CSV that ``k6 run --out
csv=...`` wrote and the ``generated_scenarios.json`` of the same run, and stores
them in the tables of ``docs/schema.md`` as one run with source ``k6`` and
status ``imported``, so that ``locust-hyperfaas report`` and the analysis
queries treat it like a Locust run.

What k6 writes, and where it goes:

- k6 writes one CSV row per metric sample. The samples of one iteration carry
  the same ``scenario`` and the ``vu=N&iter=M`` metadata (the generator enabled
  the ``vu`` and ``iter`` system tags); they are gathered per scenario and VU,
  and an iteration ends with its ``iterations`` sample. Each
  ``grpc_req_duration`` sample of an iteration is one call and becomes one
  ``metrics`` row. Its ``request_id`` is ``<scenario>/vu<N>/iter<M>``, with
  ``#<k>`` added when the same scenario, VU and iteration number come back
  after the iteration ended, and ``/call<k>`` when an iteration made several
  calls: two calls can never share an id.
- ``timestamp`` is k6's sample time, in whole Unix seconds as k6 writes it
  (it is when the sample was taken, after the response), stored unchanged.
  ``sent_ns``, ``scheduled_ns`` and ``lateness_ms`` stay empty: k6 does not
  write them.
- ``grpc_req_duration`` and ``iteration_duration`` are k6's, in ms.
  ``data_sent`` and ``data_received`` are k6's bytes on the wire for the whole
  iteration (connection set-up included), not the payload sizes a Locust run
  records.
- ``status`` is the name of the gRPC code in k6's ``status`` column. A CSV
  without that column gives ``DEADLINE_EXCEEDED`` for an iteration with a
  ``timeout`` sample, ``UNKNOWN`` for one with an ``error`` sample or an
  ``error`` column, ``OK`` for a call with trailers, and stays empty
  otherwise. ``error`` keeps k6's ``error`` column.
- The trailers come from the custom metrics ``callqueuedtimestamp``,
  ``gotresponsetimestamp``, ``leafgotrequesttimestamp`` and
  ``leafscheduledcalltimestamp`` and are stored as Unix ns. A value that is not
  a number is read as RFC 3339. A number is a Unix time whose unit is told by
  its size: from 1e17 nanoseconds, from 1e14 microseconds, from 1e11
  milliseconds, else seconds (each covers the years 1973 to 2286).
  ``functionprocessingtime`` is taken to be in nanoseconds. The instance id is
  the ``instanceId`` tag of the ``instanceid`` sample.
- ``service`` keeps k6's ``service`` column (the gRPC service, ``leaf.Leaf``);
  ``function`` holds the function name: the scenario's
  ``scenario_group`` tag, else its ``exec`` without ``Function``, else its name
  without the ``_<n>`` suffix. ``function_id`` comes from the plan's
  ``<name>FunctionId`` keys (or its ``functionIds`` map), ``image_tag`` from the
  ``<NAME>_IMAGE_TAG`` setting, else the ``image_tag`` tag of the function's
  scenarios, else the function's default image. ``extra_tags`` is k6's
  ``extra_tags`` as a JSON object.
- Each ``dropped_iterations`` sample becomes a ``dropped`` row, scheduled at
  its whole second.
- The plan's scenarios become ``scenarios`` rows. They start at the last
  second of ``setup()`` (whole seconds again), plus their ``startTime``.

The run id is derived from the CSV's content, so importing the same CSV again
adds nothing; the import is one transaction.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import logging
import math
import re
import shlex
import sqlite3
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import grpc

from locust_hyperfaas import __version__
from locust_hyperfaas.exceptions import HyperFaaSError, SinkError
from locust_hyperfaas.recording.sqlite import SqliteSink

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("metric_name", "timestamp", "metric_value", "scenario", "metadata")

# gRPC status code names by number, as k6 writes codes in its `status` column.
GRPC_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}

# Custom metrics holding a trailer that is a point in time, by metrics column.
TIMESTAMP_METRICS = {
    "callqueuedtimestamp": "callqueuedtimestamp",
    "gotresponsetimestamp": "gotresponsetimestamp",
    "leafgotrequesttimestamp": "leaf_got_request_ns",
    "leafscheduledcalltimestamp": "leaf_scheduled_call_ns",
}
INSTANCE_TAGS = ("instanceId", "instanceid", "instance_id")
DURATION_UNITS_MS = {"ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h)")

_METRICS_COLUMNS = (
    "run_id timestamp scenario service image_tag instance_id request_id"
    " grpc_req_duration callqueuedtimestamp gotresponsetimestamp data_sent"
    " data_received iteration_duration proto subproto group_name extra_tags"
    " function function_id status error worker function_processing_ns"
    " leaf_got_request_ns leaf_scheduled_call_ns"
).split()


class ImportK6Error(HyperFaaSError):
    """The k6 files cannot be read, or do not describe a k6 generator run."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What ``import_k6`` stored (or found already stored)."""

    run_id: str
    calls: int
    failures: int
    dropped: int
    scenarios: int
    functions: dict[str, str]
    """Function name -> image tag."""
    already_imported: bool = False


@dataclass
class _Call:
    timestamp: float
    latency_ms: float | None
    status: str | None
    error: str
    proto: str
    subproto: str
    group: str
    extra_tags: dict[str, str]
    service: str = ""
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Iteration:
    scenario: str
    vu: str
    iteration: str
    occurrence: int
    calls: list[_Call] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    @property
    def request_id(self) -> str:
        base = f"{self.scenario}/vu{self.vu}/iter{self.iteration}"
        return base if self.occurrence == 1 else f"{base}#{self.occurrence}"


@dataclass(frozen=True, slots=True)
class _Plan:
    text: str
    data: dict[str, Any]
    function_ids: dict[str, str]
    image_tags: dict[str, str]
    scenario_functions: dict[str, str]
    scenario_tags: dict[str, str]

    def function_of(self, scenario: str) -> str:
        """The function a scenario calls (from the plan, else from its name)."""
        found = self.scenario_functions.get(scenario)
        return found or re.sub(r"[_-]\d+$", "", scenario)

    def image_tag_of(self, scenario: str) -> str | None:
        """The image of the scenario's function (one function, one image)."""
        found = self.image_tags.get(self.function_of(scenario))
        return found or self.scenario_tags.get(scenario)


# Reading values.


def parse_tags(text: str) -> dict[str, str]:
    """k6's ``a=b&c=d`` tag lists (``extra_tags``, ``metadata``) as a dict."""
    tags: dict[str, str] = {}
    for part in text.split("&") if text else ():
        key, _, value = part.partition("=")
        if key:
            tags[key] = value
    return tags


def parse_rfc3339_ns(text: str) -> int:
    """An RFC 3339 time with up to nine fractional digits as Unix ns."""
    match = re.fullmatch(
        r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)",
        text.strip(),
    )
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    base, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    moment = datetime.fromisoformat(base + zone)
    nanos = int((fraction or "").ljust(9, "0")) if fraction else 0
    return int(moment.timestamp()) * 1_000_000_000 + nanos


def timestamp_ns(value: str) -> int | None:
    """A trailer time as Unix ns: RFC 3339 text, or a number in s/ms/µs/ns."""
    text = value.strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return parse_rfc3339_ns(text)
    if not number.is_finite() or number <= 0:
        return None
    if number >= Decimal("1e17"):
        scale = 1
    elif number >= Decimal("1e14"):
        scale = 1_000
    elif number >= Decimal("1e11"):
        scale = 1_000_000
    else:
        scale = 1_000_000_000
    return int((number * scale).to_integral_value())


def duration_ms(text: str | int | float | None) -> float | None:
    """A k6 duration (``90s``, ``1m30s``, ``500ms``) in ms; a number is seconds."""
    if text is None:
        return None
    if isinstance(text, int | float):
        return float(text) * 1000
    parts = DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ImportK6Error(f"{text!r} is not a k6 duration such as 30s or 1m30s")
    total = 0.0
    for number, unit in parts:
        if unit in ("us", "µs"):
            total += float(number) / 1000
        elif unit == "ns":
            total += float(number) / 1_000_000
        else:
            total += float(number) * DURATION_UNITS_MS[unit]
    return total


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _status_name(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return GRPC_STATUS_NAMES.get(int(text), text)
    return text.upper()


# The plan.


def _read_plan(path: Path) -> _Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImportK6Error(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportK6Error(f"{path}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ImportK6Error(f"{path}: not a text file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportK6Error(f"{path}: not JSON ({exc})") from None
    metadata = data.get("metadata") if isinstance(data, dict) else None
    scenarios = data.get("scenarios") if isinstance(data, dict) else None
    if (
        not isinstance(metadata, dict)
        or not isinstance(scenarios, dict)
        or not all(isinstance(s, dict) for s in scenarios.values())
    ):
        raise ImportK6Error(
            f"{path}: not a generated_scenarios.json (expected an object with"
            " a 'metadata' object and a 'scenarios' object of scenarios)"
        )
    configuration = metadata.get("configuration")
    if not isinstance(configuration, dict):
        configuration = {}

    function_ids: dict[str, str] = {}
    for key, value in metadata.items():
        match = re.fullmatch(r"([A-Za-z0-9]+)FunctionId", key)
        if match and isinstance(value, str) and value:
            function_ids[match.group(1)] = value
    extra_ids = metadata.get("functionIds")
    if isinstance(extra_ids, dict):
        function_ids.update({str(k): str(v) for k, v in extra_ids.items() if v})

    scenario_functions = {
        name: _scenario_function(name, s) for name, s in scenarios.items()
    }
    scenario_tags: dict[str, str] = {}
    for name, scenario in scenarios.items():
        tag = (scenario.get("tags") or {}).get("image_tag")
        if tag:
            scenario_tags[name] = tag

    # A <NAME>_IMAGE_TAG setting wins over the tags of the function's scenarios.
    image_tags: dict[str, str] = {}
    for name, tag in scenario_tags.items():
        image_tags.setdefault(scenario_functions[name], tag)
    for function in {*function_ids, *scenario_functions.values()}:
        tag = configuration.get(f"{function.upper()}_IMAGE_TAG")
        if isinstance(tag, str) and tag:
            image_tags[function] = tag
        elif function not in image_tags:
            image_tags[function] = _default_image_tag(function)
    return _Plan(
        text, data, function_ids, image_tags, scenario_functions, scenario_tags
    )


def _scenario_function(name: str, scenario: Mapping[str, Any]) -> str:
    group = (scenario.get("tags") or {}).get("scenario_group")
    if group:
        return str(group)
    exec_name = scenario.get("exec")
    if isinstance(exec_name, str) and exec_name.endswith("Function"):
        return exec_name[: -len("Function")]
    return re.sub(r"[_-]\d+$", "", name)


def _default_image_tag(function: str) -> str:
    from locust_hyperfaas import functions

    spec = functions.registry().get(function)
    return spec.image_tag if spec is not None else ""


def _scenario_rows(plan: _Plan, start_ns: int) -> list[tuple[Any, ...]]:
    rows = []
    for name, scenario in plan.data["scenarios"].items():
        try:
            rows.append(_scenario_row(plan, name, scenario, start_ns))
        except (TypeError, ValueError, AttributeError) as exc:
            raise ImportK6Error(f"scenario {name!r} of the plan: {exc}") from None
    return rows


def _scenario_row(
    plan: _Plan, name: str, scenario: dict[str, Any], start_ns: int
) -> tuple[Any, ...]:
    function = plan.scenario_functions[name]
    per_s = 1000.0 / (duration_ms(scenario.get("timeUnit", "1s")) or 1000.0)
    offset_ms = duration_ms(scenario.get("startTime", "0s")) or 0.0
    executor = scenario.get("executor")
    rate = start_rate = target_rate = None

    if executor == "ramping-arrival-rate":
        start_rate = previous = float(scenario.get("startRate", 0)) * per_s
        length_ms = planned = 0.0
        for stage in scenario.get("stages") or []:
            stage_ms = duration_ms(stage.get("duration")) or 0.0
            target = float(stage.get("target", 0)) * per_s
            planned += (previous + target) / 2 * stage_ms / 1000
            length_ms += stage_ms
            previous = target
        target_rate = previous
    else:
        length_ms = duration_ms(scenario.get("duration")) or 0.0
        rate = float(scenario.get("rate", 0)) * per_s
        planned = rate * length_ms / 1000

    image_tag = plan.image_tag_of(name)
    return (
        (name, function, image_tag, executor)
        + (start_ns + round(offset_ms * 1_000_000), round(length_ms))
        + (rate, start_rate, target_rate, round(planned))
        + (scenario.get("preAllocatedVUs"), scenario.get("maxVUs"))
    )


# The CSV.


@dataclass
class _Samples:
    iterations: list[_Iteration]
    dropped: list[tuple[str, float]]
    first_s: float | None
    last_s: float | None
    setup_end_s: float | None
    scenario_start_s: float | None


def _read_samples(path: Path) -> _Samples:
    try:
        file = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise ImportK6Error(f"{path}: no such file") from None
    except OSError as exc:
        raise ImportK6Error(f"{path}: cannot be read: {exc.strerror}") from None
    with file:
        try:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ImportK6Error(
                    f"{path}: not a k6 CSV output: missing columns {', '.join(missing)}"
                )
            return _gather(reader, path)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportK6Error(f"{path}: not a k6 CSV output ({exc})") from None


def _gather(rows: Iterable[dict[str, str]], path: Path) -> _Samples:
    samples = _Samples([], [], None, None, None, None)
    current: dict[tuple[str, str], _Iteration] = {}
    seen: dict[tuple[str, str, str], int] = {}

    for line, row in enumerate(rows, start=2):
        name = row["metric_name"]
        moment = _number(row["timestamp"])
        if moment is None:
            raise ImportK6Error(f"{path}:{line}: timestamp {row['timestamp']!r}")
        samples.first_s = min(moment, samples.first_s or moment)
        samples.last_s = max(moment, samples.last_s or moment)

        group = row.get("group") or ""
        if group.startswith("::setup") or group.startswith("::teardown"):
            if group.startswith("::setup"):
                samples.setup_end_s = max(samples.setup_end_s or moment, moment)
            continue
        scenario = row["scenario"]
        if not scenario:
            continue  # vus, vus_max: about the whole test
        if name == "dropped_iterations":
            samples.dropped.append((scenario, moment))
            continue
        if samples.scenario_start_s is None or moment < samples.scenario_start_s:
            samples.scenario_start_s = moment

        meta = parse_tags(row["metadata"])
        if "vu" not in meta or "iter" not in meta:
            raise ImportK6Error(
                f"{path}:{line}: sample {name!r} has no vu/iter metadata"
                f" ({row['metadata']!r}); calls can only be told apart when k6"
                " ran with the 'vu' and 'iter' system tags"
            )
        slot = (scenario, meta["vu"])
        iteration = current.get(slot)
        if iteration is None or iteration.closed or iteration.iteration != meta["iter"]:
            key = (scenario, meta["vu"], meta["iter"])
            seen[key] = seen.get(key, 0) + 1
            iteration = _Iteration(scenario, meta["vu"], meta["iter"], seen[key])
            current[slot] = iteration
            samples.iterations.append(iteration)
        try:
            _add_sample(iteration, name, moment, row)
        except ValueError as exc:
            raise ImportK6Error(f"{path}:{line}: {name}: {exc}") from None
    return samples


def _add_sample(
    iteration: _Iteration, name: str, moment: float, row: dict[str, str]
) -> None:
    value = row["metric_value"]
    tags = parse_tags(row.get("extra_tags") or "")
    call = iteration.calls[-1] if iteration.calls else None

    if name == "grpc_req_duration":
        iteration.calls.append(
            _Call(
                timestamp=moment,
                latency_ms=_number(value),
                status=_status_name(row.get("status") or ""),
                error=row.get("error") or "",
                proto=row.get("proto") or "",
                subproto=row.get("subproto") or "",
                group=row.get("group") or "",
                extra_tags=tags,
                service=row.get("service") or "",
            )
        )
    elif name == "iterations":
        iteration.closed = True
    elif name in ("data_sent", "data_received", "iteration_duration"):
        iteration.values[name] = _number(value)
    elif call is None:
        return  # a custom metric of an iteration that made no call
    elif name in TIMESTAMP_METRICS:
        text = tags.get(name) or value
        call.values[TIMESTAMP_METRICS[name]] = timestamp_ns(text)
    elif name == "functionprocessingtime":
        number = _number(value)
        call.values["function_processing_ns"] = (
            None if number is None else round(number)
        )
    elif name == "instanceid":
        instance = next((tags[t] for t in INSTANCE_TAGS if tags.get(t)), None)
        if instance:
            call.values["instance_id"] = instance
    elif name == "timeout":
        call.values["k6_failure"] = "DEADLINE_EXCEEDED"
    elif name == "error":
        call.values["k6_failure"] = "UNKNOWN"


def _tags_json(tags: dict[str, str]) -> str:
    return json.dumps(tags, sort_keys=True) if tags else ""


def _call_status(call: _Call) -> str | None:
    if call.status is not None:
        return call.status
    if "k6_failure" in call.values:
        return call.values["k6_failure"]
    if call.error:
        return "UNKNOWN"
    if call.values.get("callqueuedtimestamp") or call.values.get("instance_id"):
        return "OK"
    return None


def _metrics_rows(
    run_id: str, plan: _Plan, iterations: Sequence[_Iteration]
) -> list[tuple[Any, ...]]:
    rows = []
    for iteration in iterations:
        function = plan.function_of(iteration.scenario)
        for number, call in enumerate(iteration.calls, start=1):
            request_id = iteration.request_id
            if len(iteration.calls) > 1:
                request_id += f"/call{number}"
            # Iteration-wide samples belong to its last call.
            whole = iteration.values if number == len(iteration.calls) else {}
            sent, received = whole.get("data_sent"), whole.get("data_received")
            row = {
                "run_id": run_id,
                "timestamp": call.timestamp,
                "scenario": iteration.scenario,
                "service": call.service or "leaf.Leaf",
                "image_tag": plan.image_tag_of(iteration.scenario),
                "request_id": request_id,
                "grpc_req_duration": call.latency_ms,
                "data_sent": None if sent is None else round(sent),
                "data_received": None if received is None else round(received),
                "iteration_duration": whole.get("iteration_duration"),
                "proto": call.proto or "grpc",
                "subproto": call.subproto or "unary",
                "group_name": call.group,
                "extra_tags": _tags_json(call.extra_tags),
                "function": function,
                "function_id": plan.function_ids.get(function),
                "status": _call_status(call),
                "error": call.error,
                "worker": f"k6-vu{iteration.vu}",
            }
            rows.append(tuple(row.get(c, call.values.get(c)) for c in _METRICS_COLUMNS))
    return rows


def _dropped_rows(
    run_id: str, plan: _Plan, dropped: Sequence[tuple[str, float]]
) -> list[tuple[Any, ...]]:
    rows = []
    counts: dict[str, int] = {}
    for scenario, moment in dropped:
        counts[scenario] = counts.get(scenario, 0) + 1
        function = plan.function_of(scenario)
        rows.append(
            (run_id, f"{scenario}/dropped{counts[scenario]}", function)
            + (plan.function_ids.get(function), plan.image_tag_of(scenario))
            + (scenario, round(moment * 1e9), "k6")
        )
    return rows


# The import.


def _run_id(csv_digest: str, first_s: float | None, seed: Any) -> str:
    moment = datetime.fromtimestamp(first_s or 0, UTC).strftime("%Y%m%dT%H%M%SZ")
    seed_part = f"-seed{seed}" if isinstance(seed, int) else ""
    return f"k6-{moment}{seed_part}-{csv_digest[:10]}"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_k6(
    csv_path: str | Path,
    json_path: str | Path,
    db_path: str | Path,
    *,
    command_line: str | None = None,
) -> ImportResult:
    """Import one k6 run; raises ImportK6Error for unreadable or unknown input.

    Importing a CSV that is already in the database changes nothing and
    answers its run with ``already_imported`` set.
    """
    csv_path, json_path, db_path = Path(csv_path), Path(json_path), Path(db_path)
    plan = _read_plan(json_path)
    samples = _read_samples(csv_path)
    metadata = plan.data.get("metadata") or {}
    seed = metadata.get("seed")
    run_id = _run_id(_digest(csv_path), samples.first_s, seed)

    first_s = samples.first_s or 0.0
    plan_start_s = samples.setup_end_s or samples.scenario_start_s or first_s
    started_ns = round(first_s * 1e9)
    ended_ns = round((samples.last_s or first_s) * 1e9)
    metrics = _metrics_rows(run_id, plan, samples.iterations)
    dropped = _dropped_rows(run_id, plan, samples.dropped)
    scenario_rows = _scenario_rows(plan, round(plan_start_s * 1e9))
    functions = sorted({*plan.function_ids, *plan.scenario_functions.values()})
    tags = {f: plan.image_tags.get(f, "") for f in functions}
    status = _METRICS_COLUMNS.index("status")
    failures = sum(1 for row in metrics if row[status] != "OK")
    result = ImportResult(
        run_id, len(metrics), failures, len(dropped), len(scenario_rows), tags
    )

    try:
        SqliteSink(db_path).close()  # creates or checks the tables
    except SinkError as exc:
        raise ImportK6Error(str(exc)) from None
    configuration = metadata.get("configuration")
    target = configuration.get("address") if isinstance(configuration, dict) else None
    if command_line is None:
        files = ["--csv", str(csv_path), "--json", str(json_path), "--db", str(db_path)]
        command_line = shlex.join(["locust-hyperfaas", "import-k6", *files])

    conn = sqlite3.connect(db_path, isolation_level=None, timeout=5.0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        stored = conn.execute(
            "SELECT plan FROM runs WHERE run_id = ?", (run_id,)
        ).fetchone()
        if stored is not None:
            conn.execute("ROLLBACK")
            if stored[0] != plan.text:
                logger.warning(
                    "Run %s was imported with another plan file; kept as it is.",
                    run_id,
                )
            return dataclasses.replace(result, already_imported=True)

        conn.execute(
            "INSERT INTO runs (run_id, seed, started_ns, ended_ns, started_at,"
            " ended_at, status, command_line, configuration, plan, target,"
            " plugin_version, locust_version, source)"
            " VALUES (?, ?, ?, ?, ?, ?, 'imported', ?, ?, ?, ?, ?, NULL, 'k6')",
            (
                run_id,
                seed if isinstance(seed, int) else None,
                started_ns,
                ended_ns,
                _iso(started_ns),
                _iso(ended_ns),
                command_line,
                None if configuration is None else json.dumps(configuration),
                plan.text,
                target,
                __version__,
            ),
        )
        conn.executemany(
            "INSERT INTO functions (run_id, name, function_id, image_tag)"
            " VALUES (?, ?, ?, ?)",
            [(run_id, f, plan.function_ids.get(f, ""), tags[f]) for f in functions],
        )
        conn.executemany(
            "INSERT INTO function_images (function_id, image_tag) VALUES (?, ?)"
            " ON CONFLICT (function_id) DO UPDATE SET image_tag = excluded.image_tag",
            [
                (plan.function_ids[f], tags[f])
                for f in functions
                if f in plan.function_ids
            ],
        )
        conn.executemany(
            "INSERT INTO scenarios (run_id, name, function, image_tag, executor,"
            " start_ns, duration_ms, rate, start_rate, target_rate, planned_calls,"
            " preallocated_vus, max_vus)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, *row) for row in scenario_rows],
        )
        marks = ", ".join("?" * len(_METRICS_COLUMNS))
        conn.executemany(
            f"INSERT INTO metrics ({', '.join(_METRICS_COLUMNS)}) VALUES ({marks})",
            metrics,
        )
        conn.executemany(
            "INSERT INTO dropped (run_id, request_id, function, function_id,"
            " image_tag, scenario, scheduled_ns, worker)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            dropped,
        )
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise ImportK6Error(f"cannot import into {db_path}: {exc}") from None
    finally:
        conn.close()

    logger.info("Imported k6 run %s: %d calls into %s.", run_id, len(metrics), db_path)
    return result


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Load a run of the k6 load generator into a metrics database.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--csv", default="test_results.csv", help="k6 CSV output")
    parser.add_argument(
        "--json", default="generated_scenarios.json", help="the run's plan file"
    )
    parser.add_argument("--db", default="metrics.db", help="SQLite database to fill")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``locust-hyperfaas import-k6``: 0 when imported (or already there), else 2."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    words = (prog or "locust-hyperfaas import-k6").split()
    given = sys.argv[1:] if argv is None else list(argv)
    command_line = shlex.join([*words, *given])
    try:
        result = import_k6(args.csv, args.json, args.db, command_line=command_line)
    except ImportK6Error as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2

    if result.already_imported:
        print(f"{args.csv} is already in {args.db} as run {result.run_id}.")
        print("Nothing imported.")
        return 0
    print(
        f"Imported run {result.run_id} into {args.db}: {result.calls} calls"
        f" ({result.failures} failed), {result.dropped} dropped,"
        f" {result.scenarios} scenarios."
    )
    for function, tag in result.functions.items():
        print(f"  {function}: {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
