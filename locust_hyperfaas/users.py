"""Locust users that call HyperFaaS functions over gRPC.

``HyperFaaSUser`` is the base; ``EchoUser``, ``BfsUser`` and
``ThumbnailerUser`` are built from the function specs, and
``user_class_for(name)`` makes one for any other registered function.

Under an arrival-rate shape a user is one VU: it waits until the arrival
clock hands it a planned call, makes it, records it, and waits again. Without
such a shape it calls back to back (closed loop), paced by ``wait_time``.
"""

from __future__ import annotations

import random
import time

from gevent import GreenletExit
from locust import User, constant, task
from locust.user.users import LOCUST_STATE_RUNNING, LOCUST_STATE_WAITING

from . import plugin  # noqa: F401  (registers the event listeners)
from .client import CallResult
from .functions import FunctionSpec, Payload, registry
from .recording.rows import STATUS_CANCELLED, RequestRecord
from .runtime import Run, Runtime, get_runtime
from .scheduler import Ticket


class CallFailure(Exception):
    """A failed call as Locust shows it: status code name and details.

    Locust groups failures by the exception's repr, so the repr is the bare
    message: one row per status and details, the same on every process.
    """

    def __repr__(self) -> str:
        return str(self)


class HyperFaaSUser(User):
    """Calls one benchmark function (``function``) of the leaf at ``--host``."""

    abstract = True
    function: str = ""
    wait_time = constant(0)

    def __init__(self, environment) -> None:
        super().__init__(environment)
        self.spec: FunctionSpec = registry()[self.function]
        self.runtime: Runtime = get_runtime(environment)
        self.rng = random.Random(f"{self.runtime.tag}:{self.function}:{id(self)}")

    @task
    def call(self) -> None:
        """Wait for the run (and a planned instant, if any), then call once."""
        runtime = self.runtime
        self._state = LOCUST_STATE_WAITING
        runtime.run_ready.wait()
        run = runtime.run
        if run is None or self.function not in run.function_ids:
            return
        pool = runtime.pool(self.function)
        ticket = None
        if pool is not None:
            ticket = pool.wait_for_ticket(self._lost, self._running)
        self._running()
        try:
            self.call_once(run, ticket)
        finally:
            if pool is not None:
                pool.done()

    def _running(self) -> None:
        if self._state == LOCUST_STATE_WAITING:
            self._state = LOCUST_STATE_RUNNING

    def _lost(self, ticket: Ticket) -> None:
        self.runtime.record_drop(ticket, "the VU was stopped before it could send")

    def call_once(self, run: Run, ticket: Ticket | None) -> CallResult | None:
        """Make one call, fire Locust's request event and record the row."""
        # A planned call's payload depends only on the seed, the scenario and
        # the call's index, so the same plan sends the same bytes every run.
        rng = (
            random.Random(f"{run.seed}:{ticket.scenario}:{ticket.index}")
            if ticket
            else self.rng
        )
        payload = self.spec.make_payload(rng)
        function_id = run.function_ids[self.function]
        started_ns = time.time_ns()
        try:
            result = self.runtime.client.schedule_call(function_id, payload.data)
        except GreenletExit:
            self._record_cancelled(run, ticket, payload, started_ns)
            raise
        if result.ok:
            try:
                problem = self.spec.check_response(payload, result.data)
            except Exception as exc:
                problem = f"the response check failed: {exc!r}"
            if problem:
                result.error = f"unexpected response: {problem}"
        self.environment.events.request.fire(
            request_type="grpc",
            name=self.function,
            response_time=result.latency_ms,
            response_length=len(result.data),
            exception=None if result.ok else CallFailure(result.failure_message),
            context={"scenario": ticket.scenario if ticket else ""},
        )
        self.runtime.record(self._row(run, ticket, result))
        return result

    def _row(
        self, run: Run, ticket: Ticket | None, result: CallResult
    ) -> RequestRecord:
        """The row of a finished call, with its planned instant and trailers."""
        trailers = result.trailers
        scheduled_ns = ticket.scheduled_ns if ticket else None
        return RequestRecord(
            request_id=self.runtime.next_request_id(),
            run_id=run.run_id,
            function=self.function,
            function_id=run.function_ids[self.function],
            image_tag=run.image_tags[self.function],
            scenario=ticket.scenario if ticket else "",
            worker=self.runtime.worker_name,
            status=result.status,
            error=result.error,
            start_ns=result.sent_ns,
            scheduled_ns=scheduled_ns,
            sent_ns=result.sent_ns,
            lateness_ms=None
            if scheduled_ns is None
            else (result.sent_ns - scheduled_ns) / 1e6,
            latency_ms=result.latency_ms,
            request_bytes=result.request_bytes,
            response_bytes=len(result.data),
            instance_id=trailers.instance_id,
            call_queued_ns=trailers.call_queued_ns,
            got_response_ns=trailers.got_response_ns,
            function_processing_ns=trailers.function_processing_ns,
            leaf_got_request_ns=trailers.leaf_got_request_ns,
            leaf_scheduled_call_ns=trailers.leaf_scheduled_call_ns,
        )

    def _record_cancelled(
        self, run: Run, ticket: Ticket | None, payload: Payload, started_ns: int
    ) -> None:
        cancelled = CallResult(
            status=STATUS_CANCELLED,
            error="the run stopped while the call was in flight",
            data=b"",
            sent_ns=started_ns,
            latency_ms=(time.time_ns() - started_ns) / 1e6,
            request_bytes=len(payload.data),
        )
        self.environment.events.request.fire(
            request_type="grpc",
            name=self.function,
            response_time=cancelled.latency_ms,
            response_length=0,
            exception=CallFailure(cancelled.failure_message),
            context={"scenario": ticket.scenario if ticket else ""},
        )
        self.runtime.record(self._row(run, ticket, cancelled))


def user_class_for(name: str) -> type[HyperFaaSUser]:
    """A User class for the registered function ``name`` (e.g. ``EchoUser``)."""
    spec = registry()[name]
    class_name = (
        "".join(part.capitalize() for part in spec.name.replace("-", "_").split("_"))
        + "User"
    )
    return type(
        class_name,
        (HyperFaaSUser,),
        {
            "function": spec.name,
            "abstract": False,
            "__module__": __name__,
            "__doc__": f"Calls the {spec.name} function: {spec.description}.",
        },
    )


EchoUser = user_class_for("echo")
BfsUser = user_class_for("bfs")
ThumbnailerUser = user_class_for("thumbnailer")
