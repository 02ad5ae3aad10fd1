"""The plugin's life in one Locust process: settings, runs, and messages.

Locust calls into this module through its events (registered in
``plugin.py``). There is one ``Runtime`` per Locust environment, in the
role Locust gave the process:

- local (a single process) and master: validate the settings, start the
  emulator when no ``--host`` is given, and at each test start create the
  functions, fix the plan's start instant, write ``generated_scenarios.json``
  and open the recorder. The master sends the plan, the function ids and each
  worker's share of the arrivals to the workers, and receives their rows.
- worker: waits for the master's setup, runs the arrival clocks for its share,
  and forwards its rows to the master.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import gevent
from gevent.event import Event
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from . import __version__
from .client import LeafClient, parse_address
from .config import Settings, settings_from_options
from .exceptions import HyperFaaSError, SetupError, SinkError
from .functions import registry
from .plan import Plan, build_metadata, plan_to_json
from .recording.recorder import Forwarder, Recorder
from .recording.rows import STATUS_DROPPED, RequestRecord
from .scheduler import ArrivalClock, Assignment, Ticket, VuPool

if TYPE_CHECKING:
    from locust.env import Environment

logger = logging.getLogger(__name__)

SETUP_MESSAGE = "hyperfaas_setup"
ASSIGN_MESSAGE = "hyperfaas_assign"
FLUSH_MESSAGE = "hyperfaas_flush"
ROWS_MESSAGE = Forwarder.MESSAGE

# How far ahead of "now" the plan starts, so that VUs exist at its first instant.
LEAD_LOCAL_SEC = 0.5
LEAD_DISTRIBUTED_SEC = 1.5
# A change of workers takes effect this far ahead, the same instant on every
# worker, after the shape's next tick has given a joining worker its VUs.
REASSIGN_AHEAD_MS = 2500
# When workers only leave, the others already have VUs: switch sooner.
REASSIGN_AFTER_LEAVE_MS = 500
# Extra time the master waits for the workers' last rows beyond the stop timeout.
FINAL_ROWS_MARGIN_SEC = 10.0
DROP_WARNING_INTERVAL_SEC = 5.0


@dataclass
class Run:
    """One test run: from Locust's test_start to its test_stop."""

    run_id: str
    plan: Plan | None
    function_ids: dict[str, str]
    image_tags: dict[str, str]
    plan_start_ns: int
    address: str
    call_timeout_s: float
    arrivals: str
    seed: int
    results_dir: Path | None = None
    recorder: Recorder | None = None
    forwarder: Forwarder | None = None
    pools: dict[str, VuPool] = field(default_factory=dict)
    clocks: dict[str, ArrivalClock] = field(default_factory=dict)
    assignment: Assignment = field(default_factory=Assignment)
    workers: list[str] = field(default_factory=list)
    assignments: dict[str, Assignment] = field(default_factory=dict)
    last_scheduled_ns: dict[tuple[str, str], int] = field(default_factory=dict)
    finals: set[str] = field(default_factory=set)
    all_finals: Event = field(default_factory=Event)
    completed: bool = False
    failed: bool = False
    drops_logged: int = 0

    def scenario_function(self, scenario: str) -> str:
        """The function a scenario of this run's plan calls."""
        if self.plan is not None:
            for candidate in self.plan.scenarios:
                if candidate.name == scenario:
                    return candidate.function
        return scenario.rsplit("-", 1)[0]


class Runtime:
    """The plugin's state in one Locust process."""

    instances: ClassVar[list[Runtime]] = []

    def __init__(self, environment: Environment) -> None:
        Runtime.instances.append(self)
        self.environment = environment
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            self.role = "master"
        elif isinstance(runner, WorkerRunner):
            self.role = "worker"
        else:
            self.role = "local"
        self.worker_name = runner.client_id if self.role == "worker" else self.role
        self.tag = uuid.uuid4().hex[:8]
        self.settings: Settings | None = None
        self.emulator: Any = None
        self.client: LeafClient | None = None
        self.run: Run | None = None
        self.last_results_dir: Path | None = None
        self.run_ready = Event()
        self._seq = 0
        self._prepared_plan: Plan | None = None
        self._seed_spent = False
        self._membership: gevent.Greenlet | None = None
        self._drop_greenlet: gevent.Greenlet | None = None

    # ----------------------------------------------------------------- start-up

    def initialise(self) -> None:
        """At Locust's init: validate everything and, if needed, start the emulator."""
        runner = self.environment.runner
        if self.role == "worker":
            runner.register_message(SETUP_MESSAGE, self._on_setup)
            runner.register_message(ASSIGN_MESSAGE, self._on_assign)
            runner.register_message(FLUSH_MESSAGE, self._on_flush, concurrent=True)
            return

        self.settings = settings_from_options(self.environment.parsed_options)
        if self.environment.host:
            self.environment.host = parse_address(self.environment.host)
        self.prepare_plan()
        if not self.environment.stop_timeout:
            # Let calls in flight at the end finish: the longest a call can take.
            self.environment.stop_timeout = self.settings.call_timeout_s
        if self.role == "master":
            runner.register_message(ROWS_MESSAGE, self._on_rows)
        if not self.environment.host:
            self._start_emulator()

    def _start_emulator(self) -> None:
        from .emulator import EmulatorProcess

        assert self.settings is not None
        self.emulator = EmulatorProcess.start(
            extra_args=(
                "--cold-start-ms",
                str(self.settings.emulator_cold_start_ms),
                "--idle-timeout",
                str(self.settings.emulator_idle_timeout_s),
            )
        )
        atexit.register(self._stop_emulator)
        self.environment.host = self.emulator.address
        logger.info(
            "No --host given: started the HyperFaaS leaf emulator at %s; it stops with Locust.",
            self.emulator.address,
        )

    def _stop_emulator(self) -> None:
        if self.emulator is None:
            return
        emulator, self.emulator = self.emulator, None
        emulator.stop()
        if self.last_results_dir is not None:
            try:
                stats = emulator.stats()
                (self.last_results_dir / "emulator_stats.json").write_text(
                    json.dumps(stats, indent=2)
                )
            except (OSError, ValueError) as exc:
                logger.warning("Could not save the emulator's call counts: %s", exc)

    def shutdown(self) -> None:
        """At Locust's quit: close what is open and stop the emulator."""
        if self.run is not None and self.role != "worker":
            self.finish_run()
        self._stop_emulator()
        if self.client is not None:
            self.client.close()

    # ------------------------------------------------------------------ the plan

    @property
    def shape(self) -> Any:
        from .shapes import ArrivalShape

        shape = self.environment.shape_class
        return shape if isinstance(shape, ArrivalShape) else None

    def functions_in_use(self) -> list[str]:
        """Functions whose User class is in the locustfile, in registry order."""
        names = {
            getattr(cls, "function", None) for cls in self.environment.user_classes
        }
        return [name for name in registry() if name in names]

    def prepare_plan(self) -> Plan | None:
        """The plan of the next run (built once per run, before its first tick)."""
        if self._prepared_plan is None and self.shape is not None:
            assert self.settings is not None
            self._prepared_plan = self.shape.build_plan(
                self.settings, self.functions_in_use()
            )
            if not self._prepared_plan.scenarios:
                if self.settings.plan_path:
                    raise HyperFaaSError(
                        f"the plan file {self.settings.plan_path} has no scenario for "
                        f"the functions of this locustfile ({', '.join(self.functions_in_use())})"
                    )
                raise HyperFaaSError(
                    "the plan has no scenarios: every function is disabled "
                    "(a *_MAX_SCENARIOS of 0) or not in the locustfile"
                )
        return self._prepared_plan

    def reload_settings(self) -> None:
        """Read the settings again: the web UI may have changed them.

        A seed drawn from the clock stays the same until the run ends, so the
        first tick and the run use one plan; the next run draws a new one.
        """
        fresh = settings_from_options(self.environment.parsed_options)
        old = self.settings
        if (
            fresh.seed_drawn
            and old is not None
            and old.seed_drawn
            and not self._seed_spent
        ):
            fresh = dataclasses.replace(fresh, seed=old.seed)
        self._seed_spent = False
        if fresh != self.settings:
            self.settings = fresh
            self._prepared_plan = None

    # ------------------------------------------------------------- run: master

    def begin_run(self) -> None:
        """At test_start on the master or the single process."""
        self.reload_settings()
        settings = self.settings
        assert settings is not None
        plan = self.prepare_plan()
        address = (
            parse_address(self.environment.host) if self.environment.host else None
        )
        if address is None:
            if self.emulator is None:
                self._start_emulator()
            address = self.emulator.address

        if self.client is None or self.client.address != address:
            self.client = LeafClient(address, settings.call_timeout_s)
        self.client.timeout_s = settings.call_timeout_s

        functions = (
            sorted({s.function for s in plan.scenarios})
            if plan
            else self.functions_in_use()
        )
        functions = [name for name in registry() if name in functions]
        image_tags = {name: self._image_tag(name, plan) for name in functions}
        seed = plan.seed if plan is not None else settings.seed
        started = datetime.now(UTC)
        run_id = f"{started:%Y%m%dT%H%M%SZ}-seed{seed}-{uuid.uuid4().hex[:4]}"
        run = Run(
            run_id=run_id,
            plan=plan,
            function_ids={},
            image_tags=image_tags,
            plan_start_ns=0,
            address=address,
            call_timeout_s=settings.call_timeout_s,
            arrivals=settings.arrivals,
            seed=seed,
        )
        run.results_dir = Path(settings.results_dir or Path("results") / run_id)
        try:
            function_ids = self._function_ids(functions, image_tags)
        except SetupError:
            self._record_failed_run(run, settings)
            raise
        run.function_ids = function_ids
        run.results_dir.mkdir(parents=True, exist_ok=True)
        self.last_results_dir = run.results_dir

        _warm_up(function_ids)
        lead = LEAD_DISTRIBUTED_SEC if self.role == "master" else LEAD_LOCAL_SEC
        run.plan_start_ns = time.time_ns() + int(lead * 1e9)
        metadata = build_metadata(plan, settings, function_ids) if plan else {}
        plan_json = plan_to_json(plan, metadata) if plan else {}
        if plan is not None:
            self._write_plan_files(run.results_dir, plan_json, settings)
        run.recorder = self._open_recorder(run, settings, plan_json)
        self.run = run
        self._start_run_greenlets()

        if settings.plan_path:
            logger.info(
                "Running the plan file %s as it is: the plan-generation settings "
                "(TOTAL_TEST_DURATION, *_SCENARIOS, rates, VUs) are not used.",
                settings.plan_path,
            )
        if plan is not None:
            logger.info(
                "Run %s: %d scenarios over %.1f s (seed %s); results in %s",
                run_id,
                len(plan.scenarios),
                plan.end_ms / 1000,
                seed,
                run.results_dir,
            )
        if self.role == "master":
            self._send_setup_to_all(run)
        else:
            self._start_clocks(run)
        self.run_ready.set()

    def _record_failed_run(self, run: Run, settings: Settings) -> None:
        """Leave a trace of a run that could not start: its row says failed."""
        assert run.results_dir is not None
        run.results_dir.mkdir(parents=True, exist_ok=True)
        run.failed = True
        run.recorder = self._open_recorder(run, settings, {})
        self.run = run
        self.finish_run()

    def _image_tag(self, name: str, plan: Plan | None) -> str:
        if plan is not None:
            for scenario in plan.scenarios:
                if scenario.function == name and scenario.image_tag:
                    return scenario.image_tag
        assert self.settings is not None
        return self.settings.functions[name].image_tag

    def _function_ids(
        self, functions: list[str], image_tags: dict[str, str]
    ) -> dict[str, str]:
        assert self.settings is not None and self.client is not None
        ids: dict[str, str] = {}
        for name in functions:
            reused = self.settings.function_ids.get(name)
            if reused:
                ids[name] = reused
                logger.info(
                    "Using existing function %s (%s): %s",
                    name,
                    image_tags[name],
                    reused,
                )
                continue
            fs = self.settings.functions[name]
            ids[name] = self.client.create_function(
                image_tags[name],
                fs.memory_mib * 1024 * 1024,
                fs.cpu_period,
                fs.cpu_quota,
            )
            logger.info(
                "created function %s (%s): %s", name, image_tags[name], ids[name]
            )
        return ids

    def _write_plan_files(
        self, results_dir: Path, plan_json: dict, settings: Settings
    ) -> None:
        text = json.dumps(plan_json, indent=2, sort_keys=True) + "\n"
        (results_dir / "generated_scenarios.json").write_text(text)
        if settings.persist_generation:
            Path("generated_scenarios.json").write_text(text)

    def _open_recorder(self, run: Run, settings: Settings, plan_json: dict) -> Recorder:
        from .recording.sinks import CsvSink
        from .recording.sqlite import FunctionRow, RunInfo, ScenarioRow, SqliteSink

        assert run.results_dir is not None
        sinks: dict[str, Any] = {"CSV": CsvSink(run.results_dir / "requests.csv")}
        db_path = (
            Path(settings.db_path)
            if settings.db_path
            else run.results_dir / "metrics.db"
        )
        database: SqliteSink | None = None
        try:
            database = SqliteSink(db_path)
            database.start_run(
                RunInfo(
                    run_id=run.run_id,
                    seed=run.seed,
                    started_ns=time.time_ns(),
                    command_line=" ".join(sys.argv),
                    configuration=settings.as_configuration(),
                    plan=plan_json,
                    target=run.address,
                    plugin_version=__version__,
                    locust_version=_locust_version(),
                )
            )
            database.write_functions(
                run.run_id,
                [
                    FunctionRow(
                        name=name,
                        function_id=run.function_ids[name],
                        image_tag=run.image_tags[name],
                        memory_bytes=settings.functions[name].memory_mib * 1024 * 1024,
                        cpu_period=settings.functions[name].cpu_period,
                        cpu_quota=settings.functions[name].cpu_quota,
                    )
                    for name in run.function_ids
                ],
            )
            if run.plan is not None and not run.failed:
                database.write_scenarios(run.run_id, _scenario_rows(run, ScenarioRow))
            sinks["SQLite"] = database
        except (SinkError, OSError) as exc:
            database = None
            logger.error(
                "Cannot write the database %s (%s); recording to %s only.",
                db_path,
                exc,
                run.results_dir / "requests.csv",
            )

        def finish() -> None:
            if database is not None:
                status = (
                    "failed"
                    if run.failed
                    else ("finished" if run.completed else "stopped")
                )
                database.finish_run(run.run_id, status, time.time_ns())

        recorder = Recorder(sinks, on_close=finish)
        recorder.start()
        atexit.register(recorder.close_without_gevent)
        return recorder

    def _start_run_greenlets(self) -> None:
        self._drop_greenlet = gevent.spawn(self._warn_drops)
        if self.role == "master":
            self._membership = gevent.spawn(self._watch_workers)

    def _warn_drops(self) -> None:
        while True:
            gevent.sleep(DROP_WARNING_INTERVAL_SEC)
            run = self.run
            if run is None or run.recorder is None:
                return
            dropped = run.recorder.dropped
            if dropped > run.drops_logged:
                logger.warning(
                    "%d planned calls dropped in the last %.0f s; %d in all. Calls are "
                    "dropped when no VU is free (raise the max VUs if the target keeps "
                    "up) or when the worker that was to send them left.",
                    dropped - run.drops_logged,
                    DROP_WARNING_INTERVAL_SEC,
                    dropped,
                )
                run.drops_logged = dropped

    def pool_targets(self, elapsed_ms: float) -> dict[str, int]:
        """VUs each function should have at this plan offset (used by the shape)."""
        plan = self.prepare_plan()
        run = self.run
        dropped = run.recorder.dropped_by_scenario if run and run.recorder else {}
        targets: dict[str, int] = {}
        from .shapes import LOOKAHEAD_MS

        for scenario in plan.scenarios if plan else ():
            if (
                scenario.start_ms - LOOKAHEAD_MS
                <= elapsed_ms
                < scenario.start_ms + scenario.duration_ms
            ):
                wanted = min(
                    scenario.max_vus,
                    scenario.preallocated_vus + dropped.get(scenario.name, 0),
                )
                targets[scenario.function] = max(
                    targets.get(scenario.function, 0), wanted
                )
        return targets

    def elapsed_ms(self) -> float | None:
        """Plan time now, or None before the run has started."""
        if self.run is None:
            return None
        return (time.time_ns() - self.run.plan_start_ns) / 1e6

    def stopping(self) -> None:
        """At test_stopping: no new calls; ask the workers for their last rows."""
        run = self.run
        if run is None:
            return
        for clock in run.clocks.values():
            clock.stop()
        if self.role == "master":
            for worker in run.workers:
                self._send(FLUSH_MESSAGE, {"run_id": run.run_id}, worker)

    def finish_run(self) -> None:
        """At test_stop on the master or the single process: write and close everything."""
        run = self.run
        if run is None:
            return
        if self.role == "master" and run.workers:
            timeout = (self.environment.stop_timeout or 0) + FINAL_ROWS_MARGIN_SEC
            if not run.all_finals.wait(timeout):
                missing = sorted(set(run.workers) - run.finals)
                logger.error(
                    "No final rows from %d worker(s) after %.0f s: %s. Their last calls may be missing.",
                    len(missing),
                    timeout,
                    ", ".join(missing),
                )
        for greenlet in (self._membership, self._drop_greenlet):
            if greenlet is not None:
                greenlet.kill(block=False)
        for clock in run.clocks.values():
            clock.stop()
        recorder = run.recorder
        self.run = None
        self.run_ready.clear()
        self._prepared_plan = None
        self._seed_spent = True
        if recorder is not None:
            recorder.close()
            logger.info(
                "Run %s %s: %d calls, %d dropped; rows in %s",
                run.run_id,
                "failed"
                if run.failed
                else ("finished" if run.completed else "stopped"),
                recorder.calls,
                recorder.dropped,
                run.results_dir,
            )

    # ------------------------------------------------------ messages: master side

    def _active_workers(self) -> list[str]:
        """Connected workers. One counts as gone only once Locust has removed it
        (it quit, after sending its last rows) or marked it missing (no
        heartbeat): a worker that is still stopping may have calls in flight."""
        clients = self.environment.runner.clients.all
        return sorted(node.id for node in clients if node.state != STATE_MISSING)

    def _send(
        self, msg_type: str, data: dict[str, Any], client_id: str | None = None
    ) -> None:
        self.environment.runner.send_message(msg_type, data, client_id)

    def _setup_payload(self, run: Run) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            "plan": plan_to_json(run.plan, {"seed": run.plan.seed})
            if run.plan
            else None,
            "function_ids": run.function_ids,
            "image_tags": run.image_tags,
            "plan_start_ns": run.plan_start_ns,
            "address": run.address,
            "call_timeout_s": run.call_timeout_s,
            "arrivals": run.arrivals,
            "seed": run.seed,
        }

    def _send_setup_to_all(self, run: Run) -> None:
        run.workers = self._active_workers()
        payload = self._setup_payload(run)
        for index, worker in enumerate(run.workers):
            run.assignments[worker] = Assignment(index, len(run.workers))
            assignment = [[float("-inf"), index, len(run.workers)]]
            self._send(SETUP_MESSAGE, {**payload, "assignment": assignment}, worker)
        logger.info("Sent the plan to %d worker(s).", len(run.workers))

    def _watch_workers(self) -> None:
        """Re-split the arrivals when workers join or leave during the run."""
        while True:
            gevent.sleep(0.5)
            run = self.run
            if run is None:
                return
            try:
                self._resplit(run)
            except Exception:
                logger.exception(
                    "Could not re-split the arrivals after a change of workers."
                )

    def _resplit(self, run: Run) -> None:
        """Send new shares when the set of workers changed; no-op otherwise."""
        current = self._active_workers()
        known = [w for w in run.workers if w in current]
        joined = [w for w in current if w not in run.workers]
        if not joined and len(known) == len(run.workers):
            return
        workers = known + joined
        # Locust moves users to new workers only with --enable-rebalancing;
        # forget the last tick so the shape sends every worker its VUs now.
        self.environment.runner.shape_last_tick = None
        ahead_ms = REASSIGN_AHEAD_MS if joined else REASSIGN_AFTER_LEAVE_MS
        effective_ms = max(0.0, self.elapsed_ms() or 0.0) + ahead_ms
        for index, worker in enumerate(workers):
            if worker in joined:
                run.assignments[worker] = Assignment(index, len(workers), effective_ms)
                assignment = [[effective_ms, index, len(workers)]]
                self._send(
                    SETUP_MESSAGE,
                    {**self._setup_payload(run), "assignment": assignment},
                    worker,
                )
            else:
                run.assignments[worker].change(effective_ms, index, len(workers))
                self._send(
                    ASSIGN_MESSAGE,
                    {
                        "run_id": run.run_id,
                        "effective_ms": effective_ms,
                        "index": index,
                        "count": len(workers),
                    },
                    worker,
                )
        left = sorted(set(run.workers) - set(current))
        for worker in left:
            self._record_orphans(run, worker, effective_ms)
        run.workers = workers
        logger.info(
            "Workers changed (%d joined, %d left): arrivals split %d ways from plan time %.1f s.",
            len(joined),
            len(left),
            len(workers),
            effective_ms / 1000,
        )
        self._check_finals(run)

    def _on_rows(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data
        run = self.run
        rows = [RequestRecord.from_tuple(values) for values in data["rows"]]
        if run is None or run.recorder is None or run.recorder.closed:
            if rows:
                logger.warning(
                    "%d rows from worker %s arrived after the run's files were closed; they are not recorded.",
                    len(rows),
                    data.get("worker"),
                )
            return
        accepted = [row for row in rows if row.run_id == run.run_id]
        run.recorder.add_many(accepted)
        last = run.last_scheduled_ns
        for row in accepted:
            if row.scheduled_ns is not None:
                key = (msg.node_id, row.scenario)
                last[key] = max(last.get(key, 0), row.scheduled_ns)
        if data.get("final"):
            run.finals.add(msg.node_id)
            self._check_finals(run)

    def _record_orphans(self, run: Run, worker: str, until_ms: float) -> None:
        """Record as dropped the calls a departed worker owned but never sent.

        They are its share of each scenario's instants after the last one it
        reported for that scenario and before the others take over its share.
        """
        from .arrivals import arrival_offsets_ms

        assignment = run.assignments.pop(worker, None)
        if assignment is None or run.plan is None:
            return
        # Compare whole nanoseconds, as rows carry them: float offsets would
        # count the last call it reported as unsent too.
        orphans = 0
        for scenario in run.plan.scenarios:
            key = (worker, scenario.name)
            last_ns = run.last_scheduled_ns.get(key, run.plan_start_ns - 1)
            after_ms = (last_ns - run.plan_start_ns) / 1e6 - 1.0
            if scenario.start_ms + scenario.duration_ms <= after_ms:
                continue
            if scenario.start_ms >= until_ms:
                continue
            offsets = arrival_offsets_ms(scenario, mode=run.arrivals, seed=run.seed)
            for k, offset_ms in enumerate(offsets):
                if offset_ms >= until_ms:
                    break
                scheduled_ns = run.plan_start_ns + round(offset_ms * 1e6)
                if scheduled_ns > last_ns and assignment.owns(k, offset_ms):
                    ticket = Ticket(scenario.name, k, scheduled_ns)
                    self.record_drop(
                        ticket,
                        "the worker that was to send it left the run",
                        worker=worker,
                    )
                    orphans += 1
        if orphans:
            logger.warning(
                "Worker %s left; %d planned calls of its share were not sent and are recorded as dropped.",
                worker,
                orphans,
            )

    def _check_finals(self, run: Run) -> None:
        if run.workers and set(run.workers) <= run.finals:
            run.all_finals.set()
        elif not run.workers:
            run.all_finals.set()

    # ------------------------------------------------------ messages: worker side

    def _on_setup(self, environment: Environment, msg: Any, **_: Any) -> None:
        from .plan import plan_from_json

        data = msg.data
        if self.run is not None and self.run.run_id == data["run_id"]:
            return
        plan = plan_from_json(data["plan"]) if data["plan"] else None
        run = Run(
            run_id=data["run_id"],
            plan=plan,
            function_ids=data["function_ids"],
            image_tags=data["image_tags"],
            plan_start_ns=data["plan_start_ns"],
            address=data["address"],
            call_timeout_s=data["call_timeout_s"],
            arrivals=data["arrivals"],
            seed=data["seed"],
        )
        effective, index, count = data["assignment"][0]
        run.assignment = Assignment(index, count, effective)
        if self.client is None or self.client.address != run.address:
            self.client = LeafClient(run.address, run.call_timeout_s)
        self.client.timeout_s = run.call_timeout_s
        _warm_up(run.function_ids)
        forwarder = Forwarder(self._send, self.worker_name)
        forwarder.start()
        run.forwarder = forwarder
        self.run = run
        self._start_clocks(run)
        self.run_ready.set()
        logger.info(
            "Got the plan of run %s: share %d of %d.", run.run_id, index + 1, count
        )

    def _on_assign(self, environment: Environment, msg: Any, **_: Any) -> None:
        data = msg.data
        run = self.run
        if run is None or run.run_id != data["run_id"]:
            return
        run.assignment.change(data["effective_ms"], data["index"], data["count"])

    def _on_flush(self, environment: Environment, msg: Any, **_: Any) -> None:
        self.drain()

    def drain(self) -> None:
        """On a worker: stop sending, let calls in flight end, send every row.

        Runs when the master asks for the last rows, and when this worker
        quits (before Locust tells the master it is gone, so that the master
        has its rows before it hands its share to the others).
        """
        run = self.run
        if run is None or run.forwarder is None:
            return
        for clock in run.clocks.values():
            clock.stop()
        deadline = time.monotonic() + (self.environment.stop_timeout or 0)
        for pool in run.pools.values():
            while pool.busy and time.monotonic() < deadline:
                pool.became_idle.wait(timeout=max(0.0, deadline - time.monotonic()))
        run.forwarder.flush(final=True)

    def worker_stopped(self) -> None:
        """At test_stop on a worker: send whatever is left (e.g. cancelled calls)."""
        run = self.run
        if run is None or run.forwarder is None:
            return
        for clock in run.clocks.values():
            clock.stop()
        run.forwarder.flush()
        run.forwarder.stop()
        self.run = None
        self.run_ready.clear()

    # ---------------------------------------------------------------- all roles

    def _start_clocks(self, run: Run) -> None:
        if run.plan is None:
            return
        for function in run.function_ids:
            pool = run.pools.setdefault(function, VuPool(function))
            scenarios = [s for s in run.plan.scenarios if s.function == function]
            if not scenarios:
                continue
            clock = ArrivalClock(
                pool,
                scenarios,
                run.plan_start_ns,
                run.assignment,
                on_drop=self.record_drop,
                mode=run.arrivals,
                seed=run.seed,
            )
            run.clocks[function] = clock
            clock.start(
                on_error=lambda exc, f=function: self._clock_failed(run, f, exc)
            )

    def _clock_failed(self, run: Run, function: str, exc: BaseException) -> None:
        run.failed = True
        self.environment.process_exit_code = 2
        logger.error(
            "The arrival clock of %s stopped (%r): the rest of its plan is not sent, "
            "and the run is marked failed.",
            function,
            exc,
        )

    def pool(self, function: str) -> VuPool | None:
        run = self.run
        if run is None or run.plan is None:
            return None
        return run.pools.setdefault(function, VuPool(function))

    def next_request_id(self) -> str:
        self._seq += 1
        return f"{self.tag}-{self._seq}"

    def record(self, row: RequestRecord) -> None:
        run = self.run
        if run is None:
            return
        if run.recorder is not None:
            run.recorder.add(row)
        elif run.forwarder is not None:
            run.forwarder.add(row)

    def record_drop(
        self,
        ticket: Ticket,
        reason: str = "no free VU at the planned instant",
        worker: str | None = None,
    ) -> None:
        run = self.run
        if run is None:
            return
        function = run.scenario_function(ticket.scenario)
        self.record(
            RequestRecord(
                request_id=self.next_request_id(),
                run_id=run.run_id,
                function=function,
                function_id=run.function_ids.get(function, ""),
                image_tag=run.image_tags.get(function, ""),
                scenario=ticket.scenario,
                worker=worker or self.worker_name,
                status=STATUS_DROPPED,
                error=reason,
                start_ns=ticket.scheduled_ns,
                scheduled_ns=ticket.scheduled_ns,
            )
        )


def _warm_up(functions: Any) -> None:
    """Build one payload of each function now, not at the first planned instant."""
    import random

    for name in functions:
        registry()[name].make_payload(random.Random(0))


def _scenario_rows(run: Run, row_type: Any) -> list[Any]:
    from .arrivals import planned_count

    rows = []
    assert run.plan is not None
    for s in run.plan.scenarios:
        target = s.stages[-1].target if s.stages else None
        rows.append(
            row_type(
                name=s.name,
                function=s.function,
                image_tag=run.image_tags.get(s.function, s.image_tag),
                executor=s.executor,
                start_ns=run.plan_start_ns + s.start_ms * 1_000_000,
                duration_ms=s.duration_ms,
                rate=_per_second(s.rate, s.time_unit_ms),
                start_rate=_per_second(s.start_rate, s.time_unit_ms),
                target_rate=_per_second(target, s.time_unit_ms),
                planned_calls=planned_count(s, mode=run.arrivals, seed=run.seed),
                preallocated_vus=s.preallocated_vus,
                max_vus=s.max_vus,
            )
        )
    return rows


def _per_second(rate: float | None, time_unit_ms: int) -> float | None:
    return None if rate is None else rate * 1000.0 / time_unit_ms


def _locust_version() -> str:
    from locust import __version__ as locust_version

    return locust_version


def get_runtime(environment: Environment) -> Runtime:
    """The Runtime of this environment (created at Locust's init event)."""
    runtime = getattr(environment, "hyperfaas", None)
    if runtime is None:
        raise HyperFaaSError(
            "locust_hyperfaas was not initialised: import it in the locustfile"
        )
    return runtime
