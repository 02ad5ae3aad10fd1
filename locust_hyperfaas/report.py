"""Summarise one run of a metrics database in tables and plots.

``locust-hyperfaas report metrics.db [--run ID] [--out DIR]`` reads the
database (read-only), picks the run (by default the one that started last) and
prints its summary; it also writes ``DIR/report.md``, ``DIR/report.html`` (the
plots embedded, one self-contained file) and four plots:

==============  ===============================================================
file            content
==============  ===============================================================
rate.png        calls per second over time per function: planned (from the
                ``scenarios`` table, constant or linear ramp) and achieved
                (calls by the second they were sent)
latency.png     latency p50, p95 and p99 of OK calls over time per function
instances.png   instances active over time per function (an instance counts
                from its first call to its last)
coldwarm.png    latency distribution (ECDF) of cold and warm OK calls
==============  ===============================================================

The tables give, per function and per scenario: calls, failures by status,
dropped calls, planned calls, planned and achieved rate (calls/s over the
scenario's planned span), latency of OK calls (p50/p90/p95/p99/max, ms, from
``grpc_req_duration``), lateness (p50/p99/max, ms), cold starts (a call served
by an instance not seen before in the run, per function, in the order calls
were sent) and the latency of cold and warm calls, and the split of each OK
call's latency into the part inside the worker (``gotresponsetimestamp -
callqueuedtimestamp``, when both trailers exist) and the rest.

A call's time is ``sent_ns``, else ``timestamp`` (whole seconds for runs
imported from k6), else ``scheduled_ns``. Percentiles interpolate linearly
between the closest ranks (numpy's default).

Exit codes: 0 for a report, 2 (with a message, no traceback) when the database
does not exist or holds no runs, the run is unknown, or the run has no calls
(the report is still written, with zeros).
"""

from __future__ import annotations

import argparse
import base64
import html
import logging
import sqlite3
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from locust_hyperfaas.exceptions import HyperFaaSError, SinkError
from locust_hyperfaas.recording.sqlite import connect_readonly, list_runs

logger = logging.getLogger(__name__)

PLOTS = ("rate", "latency", "instances", "coldwarm")
ALL_SCENARIOS = ""  # the scenario key of a function's totals
NO_STATUS = "(none)"
ECDF_POINTS = 2000  # at most this many steps per ECDF line


class ReportError(HyperFaaSError):
    """The report cannot be made: no database, no runs or an unknown run."""


@dataclass(frozen=True, slots=True)
class Summary:
    """Count and percentiles of a set of values (None when it is empty)."""

    count: int
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: np.ndarray) -> Summary:
        if values.size == 0:
            return cls(0)
        p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
        levels = (float(p) for p in (p50, p90, p95, p99, values.max()))
        return cls(int(values.size), *levels)


@dataclass(slots=True)
class GroupStats:
    """The numbers of one function (``scenario`` empty) or one scenario."""

    function: str
    scenario: str = ALL_SCENARIOS
    calls: int = 0
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    planned_calls: int | None = None
    span_s: float | None = None
    planned_rate: float | None = None
    achieved_rate: float | None = None
    latency_ms: Summary = Summary(0)
    lateness_ms: Summary = Summary(0)
    cold_starts: int = 0
    cold_latency_ms: Summary = Summary(0)
    warm_latency_ms: Summary = Summary(0)
    inside_ms: Summary = Summary(0)
    outside_ms: Summary = Summary(0)


@dataclass(slots=True)
class ReportResult:
    """What ``build_report`` found and wrote."""

    run_id: str
    run: dict[str, Any]
    out_dir: Path
    markdown_path: Path
    html_path: Path
    plots: dict[str, Path]
    functions: dict[str, GroupStats]
    scenarios: dict[str, GroupStats]
    """By scenario name (``function/scenario`` when two functions share one)."""
    calls: int
    failures: int
    dropped: int
    markdown: str

    @property
    def empty(self) -> bool:
        """True when the run has no calls."""
        return self.calls == 0


@dataclass
class _Calls:
    """The run's calls as columns, sorted by function then time sent."""

    function: np.ndarray
    scenario: np.ndarray
    status: np.ndarray
    latency_ms: np.ndarray
    lateness_ms: np.ndarray
    inside_ms: np.ndarray
    t_s: np.ndarray  # seconds since the run's time origin
    ok: np.ndarray
    has_instance: np.ndarray
    cold: np.ndarray
    instance_spans: dict[str, list[tuple[float, float]]]


@dataclass(frozen=True, slots=True)
class _Scenario:
    name: str
    function: str
    start_s: float | None
    duration_s: float | None
    start_rate: float | None
    end_rate: float | None
    planned_calls: int | None


# Reading the database.


def _open(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise ReportError(f"{db_path}: no such database file")
    try:
        conn = connect_readonly(db_path)
    except SinkError as exc:
        raise ReportError(str(exc)) from None
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    missing = {"runs", "metrics", "dropped", "scenarios"} - tables
    if missing:
        conn.close()
        raise ReportError(
            f"{db_path} is not a locust-hyperfaas metrics database"
            f" (no table {', '.join(sorted(missing))})"
        )
    return conn


def _pick_run(
    conn: sqlite3.Connection, db_path: Path, run_id: str | None
) -> dict[str, Any]:
    runs = conn.execute("SELECT * FROM runs ORDER BY started_ns DESC, run_id DESC")
    rows = [dict(r) for r in runs]
    if not rows:
        raise ReportError(f"no runs in {db_path}")
    if run_id is None:
        return rows[0]
    for row in rows:
        if row["run_id"] == run_id:
            return row
    known = ", ".join(r["run_id"] for r in reversed(rows))
    raise ReportError(f"unknown run {run_id!r} in {db_path}; known runs: {known}")


def _scenarios(conn: sqlite3.Connection, run_id: str, t0_ns: int) -> list[_Scenario]:
    rows = conn.execute(
        "SELECT name, function, start_ns, duration_ms, rate, start_rate,"
        " target_rate, planned_calls FROM scenarios WHERE run_id = ?"
        " ORDER BY function, start_ns, name",
        (run_id,),
    )
    found = []
    for row in rows:
        rate, duration_ms = row["rate"], row["duration_ms"]
        first = rate if rate is not None else row["start_rate"]
        last = rate if rate is not None else row["target_rate"]
        duration_s = None if duration_ms is None else duration_ms / 1000
        planned = row["planned_calls"]
        if planned is None and None not in (first, last, duration_s):
            planned = round((first + last) / 2 * duration_s)
        if first is None and planned is not None and duration_s:
            first = last = planned / duration_s
        start_ns = row["start_ns"]
        start_s = None if start_ns is None else (start_ns - t0_ns) / 1e9
        found.append(
            _Scenario(
                row["name"], row["function"], start_s, duration_s, first, last, planned
            )
        )
    return found


def _load_calls(conn: sqlite3.Connection, run_id: str, t0_ns: int) -> _Calls:
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: faster for many rows
    rows = cursor.execute(
        """
        SELECT COALESCE(function, service, '') AS function,
               COALESCE(scenario, ''),
               CASE WHEN status = 'OK' AND COALESCE(error, '') != ''
                    THEN 'OK with error' ELSE status END,
               grpc_req_duration, lateness_ms,
               (gotresponsetimestamp - callqueuedtimestamp) / 1e6,
               (COALESCE(sent_ns, CAST(round(timestamp * 1e9) AS INTEGER),
                         scheduled_ns) - ?) / 1e9 AS t,
               NULLIF(instance_id, '')
        FROM metrics WHERE run_id = ?
        ORDER BY function, t, callqueuedtimestamp, id
        """,
        (t0_ns, run_id),
    ).fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * 8
    function, scenario, status = (np.array(c, dtype=object) for c in columns[:3])
    latency, lateness, inside, t_s = (np.array(c, dtype=float) for c in columns[3:7])

    # A cold start is the first call of an instance, per function; calls are
    # in the order they were sent, so the last one seen is the last one.
    cold = np.zeros(len(rows), dtype=bool)
    times = t_s.tolist()
    first: dict[tuple[str, str], float] = {}
    last: dict[tuple[str, str], float] = {}
    for i, key in enumerate(zip(columns[0], columns[7], strict=True)):
        if key[1] is None:
            continue
        if key not in first:
            first[key] = times[i]
            cold[i] = True
        last[key] = times[i]
    spans: dict[str, list[tuple[float, float]]] = {}
    for key, start in first.items():
        spans.setdefault(key[0], []).append((start, last[key]))

    return _Calls(
        function=function,
        scenario=scenario,
        status=status,
        latency_ms=latency,
        lateness_ms=lateness,
        inside_ms=inside,
        t_s=t_s,
        ok=status == "OK",
        has_instance=np.array([i is not None for i in columns[7]], dtype=bool),
        cold=cold,
        instance_spans=spans,
    )


# The numbers.


def _group_stats(calls: _Calls, mask: np.ndarray, stats: GroupStats) -> None:
    ok = mask & calls.ok
    stats.calls = int(mask.sum())
    stats.ok = int(ok.sum())
    failed = calls.status[mask & ~calls.ok]
    if failed.size:
        names, counts = np.unique(
            np.array([s or NO_STATUS for s in failed], dtype=str), return_counts=True
        )
        stats.failures = {str(n): int(c) for n, c in zip(names, counts, strict=True)}

    latency = calls.latency_ms
    has_latency = ok & ~np.isnan(latency)
    stats.latency_ms = Summary.of(latency[has_latency])
    stats.lateness_ms = Summary.of(
        calls.lateness_ms[mask & ~np.isnan(calls.lateness_ms)]
    )

    stats.cold_starts = int((mask & calls.cold).sum())
    warm = calls.has_instance & ~calls.cold
    stats.cold_latency_ms = Summary.of(latency[has_latency & calls.cold])
    stats.warm_latency_ms = Summary.of(latency[has_latency & warm])

    split = has_latency & ~np.isnan(calls.inside_ms)
    stats.inside_ms = Summary.of(calls.inside_ms[split])
    stats.outside_ms = Summary.of(latency[split] - calls.inside_ms[split])


def _rates(stats: GroupStats, scenarios: Sequence[_Scenario]) -> None:
    spans = [
        (s.start_s, s.start_s + s.duration_s)
        for s in scenarios
        if s.start_s is not None and s.duration_s
    ]
    planned = [s.planned_calls for s in scenarios if s.planned_calls is not None]
    if planned:
        stats.planned_calls = int(sum(planned))
    if spans:
        stats.span_s = max(b for _, b in spans) - min(a for a, _ in spans)
    if stats.span_s:
        stats.achieved_rate = stats.calls / stats.span_s
        if stats.planned_calls is not None:
            stats.planned_rate = stats.planned_calls / stats.span_s


def _compute(
    calls: _Calls,
    scenarios: Sequence[_Scenario],
    dropped: dict[tuple[str, str], int],
    declared: Sequence[str],
) -> tuple[dict[str, GroupStats], dict[str, GroupStats]]:
    names = dict.fromkeys(sorted({*declared, *calls.function}))
    names.update(dict.fromkeys(s.function for s in scenarios))
    names.update(dict.fromkeys(f for f, _ in dropped))
    functions: dict[str, GroupStats] = {}
    per_scenario: dict[str, GroupStats] = {}

    for name in names:
        in_function = calls.function == name
        stats = functions[name] = GroupStats(name)
        _group_stats(calls, in_function, stats)
        stats.dropped = sum(n for (f, _), n in dropped.items() if f == name)
        planned = [s for s in scenarios if s.function == name]
        _rates(stats, planned)

        # Planned scenarios first, in plan order, then any others seen.
        known = [s.name for s in planned]
        known += sorted({*calls.scenario[in_function]} - {*known, ALL_SCENARIOS})
        known += sorted({s for f, s in dropped if f == name} - {*known, ALL_SCENARIOS})
        for scenario in known:
            part = GroupStats(name, scenario)
            _group_stats(calls, in_function & (calls.scenario == scenario), part)
            part.dropped = dropped.get((name, scenario), 0)
            _rates(part, [s for s in planned if s.name == scenario])
            key = scenario if scenario not in per_scenario else f"{name}/{scenario}"
            per_scenario[key] = part
    return functions, per_scenario


# Tables.


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _count(value: int | None) -> str:
    return "–" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class _Table:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(self.headers) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        return (
            f"<h3>{html.escape(self.title)}</h3>\n"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"
        )


_Column = tuple[str, Callable[[GroupStats], str]]


def _failures(g: GroupStats) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(g.failures.items())) or "0"


def _size(attr: str, header: str) -> _Column:
    return (header, lambda g: str(getattr(g, attr).count))


def _levels(attr: str, levels: Sequence[str], prefix: str = "") -> list[_Column]:
    def cell(level: str) -> Callable[[GroupStats], str]:
        return lambda g: _ms(getattr(getattr(g, attr), level))

    return [(prefix + level, cell(level)) for level in levels]


TABLES: list[tuple[str, list[_Column]]] = [
    (
        "Calls",
        [
            ("calls", lambda g: str(g.calls)),
            ("OK", lambda g: str(g.ok)),
            ("failures", _failures),
            ("dropped", lambda g: str(g.dropped)),
            ("planned", lambda g: _count(g.planned_calls)),
            ("planned calls/s", lambda g: _rate(g.planned_rate)),
            ("achieved calls/s", lambda g: _rate(g.achieved_rate)),
        ],
    ),
    (
        "Latency of OK calls (ms)",
        [
            _size("latency_ms", "calls"),
            *_levels("latency_ms", ("p50", "p90", "p95", "p99", "max")),
        ],
    ),
    (
        "Lateness: sent after the planned instant (ms)",
        [_size("lateness_ms", "calls"), *_levels("lateness_ms", ("p50", "p99", "max"))],
    ),
    (
        "Cold starts (first call of each instance) and latency (ms)",
        [
            ("cold starts", lambda g: str(g.cold_starts)),
            *_levels("cold_latency_ms", ("p50", "p99", "max"), "cold "),
            _size("warm_latency_ms", "warm calls"),
            *_levels("warm_latency_ms", ("p50", "p99", "max"), "warm "),
        ],
    ),
    (
        "Latency inside the worker (gotresponse - callqueued) and the rest (ms)",
        [
            _size("inside_ms", "calls with trailers"),
            *_levels("inside_ms", ("p50", "p99"), "inside "),
            *_levels("outside_ms", ("p50", "p99"), "rest "),
        ],
    ),
]


def _tables(groups: list[GroupStats]) -> list[_Table]:
    tables = []
    for title, columns in TABLES:
        headers = ("function", "scenario", *(h for h, _ in columns))
        rows = [
            (g.function, g.scenario or "(all)", *(cell(g) for _, cell in columns))
            for g in groups
        ]
        tables.append(_Table(title, headers, rows))
    return tables


def _ordered_groups(
    functions: dict[str, GroupStats], scenarios: dict[str, GroupStats]
) -> list[GroupStats]:
    groups = []
    for name, stats in functions.items():
        groups.append(stats)
        groups += [s for s in scenarios.values() if s.function == name]
    return groups


_Lines = list[tuple[str, str]]


def _run_lines(run: dict[str, Any], calls: int, failures: int, dropped: int) -> _Lines:
    duration = "–"
    if run.get("ended_ns") and run.get("started_ns"):
        duration = f"{(run['ended_ns'] - run['started_ns']) / 1e9:.1f} s"
    return [
        ("run", run["run_id"]),
        ("source", run.get("source") or "locust"),
        ("status", run.get("status") or ""),
        ("started", run.get("started_at") or ""),
        ("duration", duration),
        ("target", run.get("target") or "–"),
        ("seed", _count(run.get("seed"))),
        ("calls", str(calls)),
        ("failures", str(failures)),
        ("dropped", str(dropped)),
    ]


# Plots.


def _figure(count: int, title: str) -> tuple[Any, list[Any]]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    rows = max(count, 1)
    fig, axes = pyplot.subplots(
        rows, 1, figsize=(10, 1.2 + 2.6 * rows), squeeze=False, sharex=True
    )
    fig.suptitle(title)
    return fig, list(axes[:, 0])


def _save(fig: Any, path: Path) -> Path:
    from matplotlib import pyplot

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    return path


def _no_data(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)


def _bin_width_s(calls: _Calls) -> float:
    span = float(np.nanmax(calls.t_s) - np.nanmin(calls.t_s)) if calls.t_s.size else 0
    if span <= 120:
        return 1.0
    if span <= 3000:
        return 5.0
    return float(np.ceil(span / 600))


def _plot_rate(
    path: Path, names: Sequence[str], calls: _Calls, scenarios: Sequence[_Scenario]
) -> Path:
    fig, axes = _figure(len(names), "Calls per second: planned and achieved")
    for ax, name in zip(axes, names or [None], strict=True):
        times = calls.t_s[(calls.function == name) & ~np.isnan(calls.t_s)]
        if times.size:
            first = np.floor(times.min())
            counts = np.bincount((times - first).astype(np.int64))
            edges = first + np.arange(counts.size + 1)
            ax.stairs(counts, edges, label="achieved (sent per second)", color="C0")
        label = "planned"
        for s in scenarios:
            if s.function != name or None in (s.start_s, s.duration_s, s.start_rate):
                continue
            xs = [s.start_s, s.start_s + s.duration_s]
            ax.plot(xs, [s.start_rate, s.end_rate], color="C1", lw=2, label=label)
            label = None
        if not times.size:
            _no_data(ax, "no calls")
        ax.set_title(name or "no functions")
        ax.set_ylabel("calls/s")
        ax.set_ylim(bottom=0)
        ax.legend(loc="lower right", fontsize="small")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time since the start of the plan (s)")
    return _save(fig, path)


def _plot_latency(path: Path, names: Sequence[str], calls: _Calls) -> Path:
    width = _bin_width_s(calls)
    fig, axes = _figure(len(names), f"Latency of OK calls per {width:g} s")
    for ax, name in zip(axes, names or [None], strict=True):
        chosen = (calls.function == name) & calls.ok & ~np.isnan(calls.latency_ms)
        times, latency = calls.t_s[chosen], calls.latency_ms[chosen]
        if not times.size:
            _no_data(ax, "no OK calls")
        else:
            bins = np.floor(times / width)
            order = np.argsort(bins, kind="stable")
            bins, latency = bins[order], latency[order]
            starts, index = np.unique(bins, return_index=True)
            parts = np.split(latency, index[1:])
            levels = np.array([np.percentile(p, [50, 95, 99]) for p in parts])
            x = (starts + 0.5) * width
            for column, label in enumerate(("p50", "p95", "p99")):
                ax.plot(x, levels[:, column], marker=".", label=label)
            if levels.max() > 20 * max(levels.min(), 1e-3):
                ax.set_yscale("log")
            ax.legend(loc="upper right", fontsize="small")
        ax.set_title(name or "no functions")
        ax.set_ylabel("latency (ms)")
        ax.grid(alpha=0.3, which="both")
    axes[-1].set_xlabel("time since the start of the plan (s)")
    return _save(fig, path)


def _plot_instances(path: Path, names: Sequence[str], calls: _Calls) -> Path:
    width = _bin_width_s(calls)
    fig, axes = _figure(len(names), "Instances active (first call to last call)")
    for ax, name in zip(axes, names or [None], strict=True):
        spans = calls.instance_spans.get(name, [])
        if not spans:
            _no_data(ax, "no instance ids")
        else:
            first = np.sort([a for a, _ in spans])
            last = np.sort([b for _, b in spans])
            grid = np.arange(np.floor(first[0]), np.ceil(last[-1]) + width, width)
            active = np.searchsorted(first, grid + width, side="left")
            active = active - np.searchsorted(last, grid, side="left")
            ax.stairs(active[:-1], grid, color="C2", fill=True, alpha=0.6)
        ax.set_title(name or "no functions")
        ax.set_ylabel("instances")
        ax.set_ylim(bottom=0)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time since the start of the plan (s)")
    return _save(fig, path)


def _plot_coldwarm(path: Path, names: Sequence[str], calls: _Calls) -> Path:
    fig, axes = _figure(len(names), "Latency of cold and warm OK calls (ECDF)")
    for ax, name in zip(axes, names or [None], strict=True):
        chosen = (calls.function == name) & calls.ok & ~np.isnan(calls.latency_ms)
        drawn = False
        for label, kind, color in (
            ("warm", chosen & calls.has_instance & ~calls.cold, "C0"),
            ("cold", chosen & calls.cold, "C3"),
        ):
            values = np.sort(calls.latency_ms[kind])
            if not values.size:
                continue
            legend = f"{label} ({values.size} calls)"
            if values.size > ECDF_POINTS:  # drawing every call would be slow
                share = np.linspace(0, 1, ECDF_POINTS + 1)[1:]
                quantiles = np.quantile(values, share, method="inverted_cdf")
                ax.step(quantiles, share, where="post", color=color, label=legend)
            else:
                ax.ecdf(values, color=color, label=legend)
            if values.size <= 50:  # a few calls: show each one
                share = np.arange(1, values.size + 1) / values.size
                ax.plot(values, share, "o", color=color, ms=4)
            drawn = True
        if drawn:
            ax.set_xscale("log")
            ax.legend(loc="lower right", fontsize="small")
        else:
            _no_data(ax, "no OK calls with an instance id")
        ax.set_title(name or "no functions")
        ax.set_ylabel("share of calls")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("latency (ms)")
    return _save(fig, path)


# Writing.


def _markdown(
    run_lines: _Lines, tables: list[_Table], plots: dict[str, Path], note: str
) -> str:
    parts = [f"# Run {run_lines[0][1]}", ""]
    parts += [f"- **{k}**: {v}" for k, v in run_lines]
    if note:
        parts += ["", f"> {note}"]
    parts += ["", "## Per function and per scenario", ""]
    parts += [t.markdown() for t in tables]
    parts += ["## Plots", ""]
    parts += [f"![{name}]({p.name})" for name, p in plots.items()]
    return "\n".join(parts) + "\n"


def _html(
    run_lines: _Lines, tables: list[_Table], plots: dict[str, Path], note: str
) -> str:
    items = "".join(
        f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in run_lines
    )
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption>{p.name}'
        "</figcaption></figure>\n"
        for name, p in plots.items()
    )
    warning = f"<p class=note>{html.escape(note)}</p>" if note else ""
    title = html.escape(f"Run {run_lines[0][1]}")
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse;margin-bottom:1.5em}"
        "th,td{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
        "td:nth-child(-n+2),th:nth-child(-n+2){text-align:left}"
        "th{background:#eee}.note{background:#fff3cd;padding:.5em}"
        "img{max-width:100%}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>\n<h1>{title}</h1><ul>{items}</ul>"
        f"{warning}\n<h2>Per function and per scenario</h2>\n"
        + "".join(t.html() for t in tables)
        + f"<h2>Plots</h2>\n{images}</body></html>\n"
    )


def build_report(
    db_path: str | Path, run_id: str | None = None, out_dir: str | Path = "report"
) -> ReportResult:
    """Summarise a run (the latest when ``run_id`` is None) and write the report.

    Raises ReportError when the database is missing, has no runs or does not
    have the run. A run without calls still gets a report (``result.empty``).
    """
    db_path, out_dir = Path(db_path), Path(out_dir)
    conn = _open(db_path)
    try:
        run = _pick_run(conn, db_path, run_id)
        run_id = run["run_id"]
        (first_scenario_ns,) = conn.execute(
            "SELECT min(start_ns) FROM scenarios WHERE run_id = ?", (run_id,)
        ).fetchone()
        # Time 0 of the plots is the plan's first instant, so per-second bins
        # line up with the plan; k6 imports keep the earlier of the two.
        if first_scenario_ns is not None and run["source"] == "locust":
            t0_ns = first_scenario_ns
        else:
            t0_ns = min(run["started_ns"], first_scenario_ns or run["started_ns"])
        scenarios = _scenarios(conn, run_id, t0_ns)
        calls = _load_calls(conn, run_id, t0_ns)
        dropped = {
            (f, s): n
            for f, s, n in conn.execute(
                "SELECT COALESCE(function, ''), COALESCE(scenario, ''), count(*)"
                " FROM dropped WHERE run_id = ? GROUP BY 1, 2",
                (run_id,),
            )
        }
        declared = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM functions WHERE run_id = ?", (run_id,)
            )
        ]
    finally:
        conn.close()

    functions, per_scenario = _compute(calls, scenarios, dropped, declared)
    names = list(functions)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = {
        "rate": _plot_rate(out_dir / "rate.png", names, calls, scenarios),
        "latency": _plot_latency(out_dir / "latency.png", names, calls),
        "instances": _plot_instances(out_dir / "instances.png", names, calls),
        "coldwarm": _plot_coldwarm(out_dir / "coldwarm.png", names, calls),
    }

    total_calls = int(calls.function.size)
    failures = total_calls - int(calls.ok.sum())
    total_dropped = sum(dropped.values())
    note = (
        f"Run {run_id} has no calls: every number is zero." if not total_calls else ""
    )
    run_lines = _run_lines(run, total_calls, failures, total_dropped)
    tables = _tables(_ordered_groups(functions, per_scenario))
    markdown = _markdown(run_lines, tables, plots, note)
    markdown_path = out_dir / "report.md"
    markdown_path.write_text(markdown, encoding="utf-8")
    html_path = out_dir / "report.html"
    html_path.write_text(_html(run_lines, tables, plots, note), encoding="utf-8")
    logger.info("Report of run %s written to %s.", run_id, out_dir)
    return ReportResult(
        run_id=run_id,
        run=run,
        out_dir=out_dir,
        markdown_path=markdown_path,
        html_path=html_path,
        plots=plots,
        functions=functions,
        scenarios=per_scenario,
        calls=total_calls,
        failures=failures,
        dropped=total_dropped,
        markdown=markdown,
    )


def _print_runs(db_path: Path) -> None:
    conn = _open(db_path)
    try:
        runs = list_runs(conn)
    finally:
        conn.close()
    if not runs:
        raise ReportError(f"no runs in {db_path}")
    print(
        f"{'run':<44} {'source':<6} {'status':<9} {'started':<27} calls failed dropped"
    )
    for r in runs:
        print(
            f"{r.run_id:<44} {r.source:<6} {r.status:<9} {r.started_at:<27}"
            f" {r.calls:>5} {r.failures:>6} {r.dropped:>7}"
        )


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Summarise a run of a metrics database: tables and plots.",
    )
    parser.add_argument("db", help="the SQLite metrics database (e.g. metrics.db)")
    parser.add_argument("--run", help="run id (default: the run that started last)")
    parser.add_argument(
        "--out",
        default="report",
        help="folder to write the report to (default: report)",
    )
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """``locust-hyperfaas report``: 0 when reported, 2 with a message otherwise."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        if args.list:
            _print_runs(Path(args.db))
            return 0
        result = build_report(args.db, args.run, args.out)
    except ReportError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"{parser.prog}: error: cannot write the report to {args.out}: {exc}",
            file=sys.stderr,
        )
        return 2

    print(result.markdown)
    print(f"Report written to {result.markdown_path} and {result.html_path}.")
    if result.empty:
        print(
            f"{parser.prog}: run {result.run_id} has no calls; the report shows zeros.",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
