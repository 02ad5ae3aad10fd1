"""A HyperFaaS leaf in one process: the ``leaf.Leaf`` gRPC service and its state.

Functions are registered with ``CreateFunction`` and run in emulated
instances: a call takes an idle instance of its function or starts one (a cold
start), each instance serves one call at a time, and instances idle for
longer than the idle timeout are stopped. Faults can be injected per call,
drawn from a generator seeded with ``EmulatorOptions.seed``.

The emulator counts every ``ScheduleCall`` it answered and, when given a stats
file, rewrites it (at most every ``STATS_INTERVAL_SEC``, and once at
shutdown) as JSON:

====================  ==========================================================
key                   value
====================  ==========================================================
address               ``host:port`` the emulator listens on
served                ScheduleCall calls answered, whatever their status
served_ok             of those, answered with status OK (injected function
                      errors included: they are OK at the gRPC level)
received              ScheduleCall calls that arrived (served + in flight)
by_status             ``{status code name: calls}``, e.g. ``{"OK": 10}``
by_function           ``{function_id: {"image_tag", "workload", "calls", "ok",
                      "instances_started"}}`` for known functions
functions             ``[{"function_id", "image_tag", "workload", "memory"
                      (bytes), "cpu_period", "cpu_quota" (µs), "timeout",
                      "max_concurrency"}]`` in creation order
instances_started     instances started (cold starts), all functions
instances_live        instances running now, busy or idle
====================  ==========================================================
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import random
import secrets
import threading
import time
import uuid
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc

from locust_hyperfaas.exceptions import ConfigError
from locust_hyperfaas.proto import common_pb2, leaf_pb2, leaf_pb2_grpc

from .workloads import WORKLOADS, workload_for_tag

logger = logging.getLogger(__name__)

STATS_INTERVAL_SEC = 0.2
HOUSEKEEPING_INTERVAL_SEC = 0.05
TIMESTAMP_FORMATS = ("rfc3339", "unix")
FALLBACK_WORKLOAD = "echo"
# The one line the command prints to stdout once it listens.
LISTENING_MESSAGE = "HyperFaaS leaf emulator listening on {address}"


@dataclass
class EmulatorOptions:
    """How the emulated leaf listens, starts instances and injects faults."""

    host: str = "127.0.0.1"
    port: int = 50050  # 0 picks a free port
    max_workers: int = 128
    cold_start_ms: float = 300.0
    idle_timeout_s: float = 30.0
    timestamp_format: str = "rfc3339"  # or "unix" (nanoseconds)
    later_trailers: bool = False
    extra_latency_ms: float = 0.0
    fail_rate: float = 0.0
    error_rate: float = 0.0
    max_instances: int = 0  # per function; 0 is unlimited
    seed: int | None = None
    stats_file: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", self.port, "an integer from 0 to 65535")
        if self.max_workers < 1:
            raise ConfigError("max_workers", self.max_workers, "an integer >= 1")
        if not self.cold_start_ms >= 0:
            raise ConfigError("cold_start_ms", self.cold_start_ms, "a number >= 0")
        if not self.idle_timeout_s >= 0:
            raise ConfigError("idle_timeout_s", self.idle_timeout_s, "seconds >= 0")
        if self.timestamp_format not in TIMESTAMP_FORMATS:
            accepted = " or ".join(TIMESTAMP_FORMATS)
            raise ConfigError("timestamp_format", self.timestamp_format, accepted)
        if not self.extra_latency_ms >= 0:
            latency = self.extra_latency_ms
            raise ConfigError("extra_latency_ms", latency, "a number >= 0")
        if not 0 <= self.fail_rate <= 1:
            raise ConfigError("fail_rate", self.fail_rate, "a fraction from 0 to 1")
        if not 0 <= self.error_rate <= 1 - self.fail_rate:
            accepted = f"a fraction from 0 to {1 - self.fail_rate:g} (1 - fail_rate)"
            raise ConfigError("error_rate", self.error_rate, accepted)
        if self.max_instances < 0:
            raise ConfigError("max_instances", self.max_instances, "an integer >= 0")

    @property
    def address(self) -> str:
        """``host:port`` as asked (the port may be 0)."""
        return format_address(self.host, self.port)


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_timestamp(unix_ns: int, timestamp_format: str) -> str:
    """A Unix time in nanoseconds as RFC 3339 (UTC, 9 digits) or a decimal string."""
    if timestamp_format == "unix":
        return str(unix_ns)
    seconds, nanos = divmod(unix_ns, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


@dataclass(eq=False)
class Instance:
    """An emulated container of one function."""

    instance_id: str
    idle_since: float = 0.0  # time.monotonic() when it last went idle


@dataclass(eq=False)
class Function:
    """A registered function, its instances and its call counts."""

    function_id: str
    image_tag: str
    workload: str
    memory: int
    cpu_period: int
    cpu_quota: int
    timeout: int
    max_concurrency: int
    idle: list[Instance] = field(default_factory=list)
    live: int = 0
    calls: int = 0
    ok: int = 0
    instances_started: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "function_id": self.function_id,
            "image_tag": self.image_tag,
            "workload": self.workload,
            "memory": self.memory,
            "cpu_period": self.cpu_period,
            "cpu_quota": self.cpu_quota,
            "timeout": self.timeout,
            "max_concurrency": self.max_concurrency,
        }


class CallFailed(Exception):
    """A call ends with a gRPC status other than OK."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class EmulatorState:
    """Functions, instances and counts of one emulated leaf; thread-safe."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self.address = options.address
        self._lock = threading.Lock()
        self._idle_calls = threading.Condition(self._lock)
        self._functions: dict[str, Function] = {}
        self._rng = random.Random(options.seed)
        self._received = 0
        self._in_flight = 0
        self._served = 0
        self._served_ok = 0
        self._by_status: dict[str, int] = {}
        self._instances_started = 0
        self._changed = True
        self._stats_written_at = 0.0
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.executor: futures.ThreadPoolExecutor | None = None  # serves the calls

    # Functions and instances.

    def create_function(self, image_tag: str, config: common_pb2.Config) -> Function:
        workload = workload_for_tag(image_tag)
        if workload is None:
            logger.warning(
                "Image tag %s names no known function (echo, bfs, thumbnail); "
                "its calls will be echoed.",
                image_tag,
            )
            workload = FALLBACK_WORKLOAD
        function = Function(
            function_id=str(uuid.uuid4()),
            image_tag=image_tag,
            workload=workload,
            memory=config.memory,
            cpu_period=config.cpu.period,
            cpu_quota=config.cpu.quota,
            timeout=config.timeout,
            max_concurrency=config.max_concurrency,
        )
        with self._lock:
            self._functions[function.function_id] = function
            self._changed = True
        logger.info(
            "Created function %s from %s (%s).",
            function.function_id,
            image_tag,
            workload,
        )
        return function

    def function(self, function_id: str) -> Function | None:
        with self._lock:
            return self._functions.get(function_id)

    def draw_fault(self) -> str | None:
        """``"fail"``, ``"error"`` or None for the next call, from the seeded draws."""
        if not (self.options.fail_rate or self.options.error_rate):
            return None
        with self._lock:
            draw = self._rng.random()
        if draw < self.options.fail_rate:
            return "fail"
        if draw < self.options.fail_rate + self.options.error_rate:
            return "error"
        return None

    def acquire_instance(self, function: Function) -> Instance:
        """An idle instance of ``function``, or a new one after a cold start.

        A new instance counts as live from the start of its cold start.
        Raises CallFailed(RESOURCE_EXHAUSTED) at ``max_instances``.
        """
        with self._lock:
            self._stop_expired(function, time.monotonic())
            if function.idle:
                return function.idle.pop()
            limit = self.options.max_instances
            if limit and function.live >= limit:
                raise CallFailed(grpc.StatusCode.RESOURCE_EXHAUSTED, "no capacity")
            function.live += 1
            function.instances_started += 1
            self._instances_started += 1
            self._changed = True
        instance = Instance(secrets.token_hex(6))
        time.sleep(self.options.cold_start_ms / 1000)
        logger.debug(
            "Started instance %s of function %s.",
            instance.instance_id,
            function.function_id,
        )
        return instance

    def release_instance(self, function: Function, instance: Instance) -> None:
        """Put an instance back in its function's idle pool."""
        with self._lock:
            instance.idle_since = time.monotonic()
            function.idle.append(instance)

    def _stop_expired(self, function: Function, now: float) -> None:
        """Stop the idle instances of ``function`` past the idle timeout (locked)."""
        deadline = now - self.options.idle_timeout_s
        expired = [i for i in function.idle if i.idle_since <= deadline]
        if not expired:
            return
        function.idle = [i for i in function.idle if i.idle_since > deadline]
        function.live -= len(expired)
        self._changed = True
        for instance in expired:
            logger.debug(
                "Stopped idle instance %s of function %s.",
                instance.instance_id,
                function.function_id,
            )

    def stop_expired_instances(self) -> None:
        """Stop every idle instance past the idle timeout."""
        now = time.monotonic()
        with self._lock:
            for function in self._functions.values():
                self._stop_expired(function, now)

    def live_instances(self, function_id: str | None = None) -> int:
        """Instances running now, busy or idle, of one function or of all."""
        with self._lock:
            if function_id is not None:
                return self._functions[function_id].live
            return sum(f.live for f in self._functions.values())

    # Counting.

    def call_received(self) -> None:
        with self._lock:
            self._received += 1
            self._in_flight += 1

    def call_answered(self, function: Function | None, code: grpc.StatusCode) -> None:
        """Count a call answered with ``code`` (``function`` None: not found)."""
        ok = code == grpc.StatusCode.OK
        with self._lock:
            self._in_flight -= 1
            self._served += 1
            self._served_ok += ok
            self._by_status[code.name] = self._by_status.get(code.name, 0) + 1
            if function is not None:
                function.calls += 1
                function.ok += ok
            self._changed = True
            if self._in_flight == 0:
                self._idle_calls.notify_all()

    def wait_until_idle(self, timeout: float) -> bool:
        """Wait until no call is in flight; False if some still are at the timeout."""
        with self._idle_calls:
            return self._idle_calls.wait_for(lambda: self._in_flight == 0, timeout)

    def stats(self) -> dict[str, Any]:
        """The counts, in the layout of the stats file."""
        with self._lock:
            functions = list(self._functions.values())
            return {
                "address": self.address,
                "served": self._served,
                "served_ok": self._served_ok,
                "received": self._received,
                "by_status": dict(self._by_status),
                "by_function": {
                    f.function_id: {
                        "image_tag": f.image_tag,
                        "workload": f.workload,
                        "calls": f.calls,
                        "ok": f.ok,
                        "instances_started": f.instances_started,
                    }
                    for f in functions
                },
                "functions": [f.describe() for f in functions],
                "instances_started": self._instances_started,
                "instances_live": sum(f.live for f in functions),
            }

    def write_stats(self) -> None:
        """Rewrite the stats file atomically, if there is one."""
        path = self.options.stats_file
        if not path:
            return
        with self._write_lock:
            with self._lock:
                self._changed = False
            text = json.dumps(self.stats(), indent=2)
            temporary = f"{path}.{os.getpid()}.tmp"
            with open(temporary, "w", encoding="utf-8") as file:
                file.write(text)
            os.replace(temporary, path)
            self._stats_written_at = time.monotonic()

    # Background work.

    def start_housekeeping(self) -> None:
        """Stop expired instances and flush the stats file in a daemon thread."""
        self._housekeeper = threading.Thread(
            target=self._housekeep, name="emulator-housekeeper", daemon=True
        )
        self._housekeeper.start()

    def _housekeep(self) -> None:
        while not self._stopping.wait(HOUSEKEEPING_INTERVAL_SEC):
            self.stop_expired_instances()
            due = time.monotonic() - self._stats_written_at >= STATS_INTERVAL_SEC
            if self._changed and due:
                try:
                    self.write_stats()
                except OSError as exc:
                    logger.error("Cannot write the stats file: %s; will retry.", exc)

    def close(self) -> None:
        """Stop the background thread and write the stats file a last time."""
        self._stopping.set()
        if self._housekeeper is not None:
            self._housekeeper.join()
        self.write_stats()


class LeafServicer(leaf_pb2_grpc.LeafServicer):
    """The ``leaf.Leaf`` service on top of an EmulatorState."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.options = state.options

    def CreateFunction(
        self, request: leaf_pb2.CreateFunctionRequest, context: grpc.ServicerContext
    ) -> leaf_pb2.CreateFunctionResponse:
        image_tag = request.image_tag.tag
        if not image_tag:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image tag is empty")
        function = self.state.create_function(image_tag, request.config)
        return leaf_pb2.CreateFunctionResponse(
            functionID=common_pb2.FunctionID(id=function.function_id)
        )

    def ScheduleCall(
        self, request: leaf_pb2.ScheduleCallRequest, context: grpc.ServicerContext
    ) -> leaf_pb2.ScheduleCallResponse:
        got_request_ns = time.time_ns()
        self.state.call_received()
        function = self.state.function(request.functionID.id)
        try:
            response = self._schedule(request, function, got_request_ns, context)
        except CallFailed as failure:
            self.state.call_answered(function, failure.code)
            context.abort(failure.code, failure.details)
        except Exception:
            logger.exception("ScheduleCall failed; answering INTERNAL.")
            self.state.call_answered(function, grpc.StatusCode.INTERNAL)
            context.abort(grpc.StatusCode.INTERNAL, "emulator error")
        self.state.call_answered(function, grpc.StatusCode.OK)
        return response

    def _schedule(
        self,
        request: leaf_pb2.ScheduleCallRequest,
        function: Function | None,
        got_request_ns: int,
        context: grpc.ServicerContext,
    ) -> leaf_pb2.ScheduleCallResponse:
        if self.options.extra_latency_ms:
            time.sleep(self.options.extra_latency_ms / 1000)
        if function is None:
            message = f"function {request.functionID.id} not found"
            raise CallFailed(grpc.StatusCode.NOT_FOUND, message)
        fault = self.state.draw_fault()
        if fault == "fail":
            raise CallFailed(grpc.StatusCode.UNAVAILABLE, "injected failure")

        scheduled_ns = time.time_ns()
        queued_ns = time.time_ns()
        instance = self.state.acquire_instance(function)
        try:
            if fault == "error":
                response = leaf_pb2.ScheduleCallResponse(
                    error=common_pb2.Error(message="injected function error")
                )
            else:
                data = WORKLOADS[function.workload](request.data)
                response = leaf_pb2.ScheduleCallResponse(data=data)
            responded_ns = time.time_ns()
        finally:
            self.state.release_instance(function, instance)

        fmt = self.options.timestamp_format
        trailers = [
            ("callqueuedtimestamp", format_timestamp(queued_ns, fmt)),
            ("gotresponsetimestamp", format_timestamp(responded_ns, fmt)),
            ("instanceid", instance.instance_id),
        ]
        if self.options.later_trailers:
            trailers += [
                ("functionprocessingtime", str(responded_ns - queued_ns)),
                ("leafgotrequesttimestamp", str(got_request_ns)),
                ("leafscheduledcalltimestamp", str(scheduled_ns)),
            ]
        context.set_trailing_metadata(trailers)
        return response


def serve(options: EmulatorOptions) -> tuple[grpc.Server, int, EmulatorState]:
    """Start an emulated leaf in this process; answer the server, port and state.

    Stop it with ``shutdown(server, state)``. Raises RuntimeError when the
    address cannot be bound and OSError when the stats file cannot be written.
    """
    executor = futures.ThreadPoolExecutor(
        max_workers=options.max_workers, thread_name_prefix="leaf"
    )
    # Without SO_REUSEPORT a port that is in use fails to bind instead of
    # being shared with another server.
    server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
    try:
        port = server.add_insecure_port(options.address)
    except RuntimeError:
        port = 0
    if port == 0:
        executor.shutdown(wait=False)
        raise RuntimeError(f"cannot listen on {options.address}")
    state = EmulatorState(options)
    state.address = format_address(options.host, port)
    state.executor = executor
    try:
        state.write_stats()
    except OSError:
        server.stop(None)
        executor.shutdown(wait=False)
        raise
    leaf_pb2_grpc.add_LeafServicer_to_server(LeafServicer(state), server)
    server.start()
    state.start_housekeeping()
    logger.info("HyperFaaS leaf emulator started at %s.", state.address)
    return server, port, state


def shutdown(server: grpc.Server, state: EmulatorState, grace_s: float = 5.0) -> None:
    """Stop accepting calls, let those in flight finish, write the stats file."""
    server.stop(grace_s).wait()
    if not state.wait_until_idle(grace_s):
        logger.error("Calls still run after %.1f s; not counting them.", grace_s)
    state.close()
    if state.executor is not None:
        state.executor.shutdown(wait=False)
    logger.info("HyperFaaS leaf emulator at %s stopped.", state.address)
