"""Open-loop dispatch: an arrival clock per function hands planned instants to
idle virtual users, and drops the instants no user is free for.

This is what makes the load independent of response times. The clock sleeps
until each planned instant of this process's share; at the instant it gives
the call to the longest-idle VU of that function, or, when every VU is busy,
records the call as dropped, as k6's arrival-rate executors do.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent
from gevent.event import AsyncResult, Event

from .arrivals import arrival_offsets_ms
from .plan import Scenario

logger = logging.getLogger(__name__)

# Sleep until this long before an instant, then wait in the loop's idle phase
# until it arrives: gevent's timers alone are often ~0.5 ms late.
SPIN_SEC = 0.0005


@dataclass(frozen=True, slots=True)
class Ticket:
    """One planned call handed to a VU."""

    scenario: str
    index: int
    scheduled_ns: int


class Assignment:
    """Which share of every scenario's arrivals this process sends.

    Arrival k of a scenario belongs to the process whose index equals
    ``k % count``. When workers join or leave, the master sends a new
    (index, count) effective from a plan offset, the same for every worker.
    """

    def __init__(
        self, index: int = 0, count: int = 1, effective_ms: float = float("-inf")
    ) -> None:
        self._steps: list[tuple[float, int, int]] = [(effective_ms, index, count)]

    def change(self, effective_ms: float, index: int, count: int) -> None:
        self._steps.append((effective_ms, index, count))
        self._steps.sort(key=lambda step: step[0])

    def owns(self, k: int, offset_ms: float) -> bool:
        index, count = -1, 1
        for effective_ms, step_index, step_count in self._steps:
            if effective_ms <= offset_ms:
                index, count = step_index, step_count
            else:
                break
        return index >= 0 and k % count == index

    def as_list(self) -> list[list[float]]:
        return [list(step) for step in self._steps]


class VuPool:
    """The idle VUs of one function in this process, longest idle first."""

    def __init__(self, function: str) -> None:
        self.function = function
        self._idle: deque[tuple[AsyncResult, Callable[[], None]]] = deque()
        self.busy = 0
        self.became_idle = Event()

    def wait_for_ticket(
        self, on_lost: Callable[[Ticket], None], on_handed: Callable[[], None]
    ) -> Ticket:
        """Block until the clock hands this VU a ticket (killable).

        ``on_handed`` runs in the clock's greenlet at the hand-over, before the
        VU wakes: the VU must count as busy from that instant, so that Locust
        does not kill it on the way to sending. A ticket handed to a VU that is
        killed anyway goes to ``on_lost``.
        """
        waiter = AsyncResult()
        entry = (waiter, on_handed)
        self._idle.append(entry)
        try:
            ticket = waiter.get()
        except BaseException:
            try:
                self._idle.remove(entry)
            except ValueError:
                pass
            if waiter.successful():
                self.done()
                on_lost(waiter.value)
            raise
        return ticket

    def done(self) -> None:
        self.busy -= 1
        if self.busy == 0:
            self.became_idle.set()

    def hand_out(self, ticket: Ticket) -> bool:
        """Give the ticket to an idle VU; False when none is idle."""
        if not self._idle:
            return False
        self.became_idle.clear()
        waiter, on_handed = self._idle.popleft()
        self.busy += 1
        on_handed()
        waiter.set(ticket)
        return True

    @property
    def idle_count(self) -> int:
        return len(self._idle)


class ArrivalClock:
    """Sends this process's share of one function's planned calls."""

    def __init__(
        self,
        pool: VuPool,
        scenarios: Sequence[Scenario],
        plan_start_ns: int,
        assignment: Assignment,
        on_drop: Callable[[Ticket], None],
        mode: str = "even",
        seed: int = 0,
    ) -> None:
        self.pool = pool
        self.scenarios = sorted(scenarios, key=lambda s: s.start_ms)
        self.plan_start_ns = plan_start_ns
        self.assignment = assignment
        self.on_drop = on_drop
        self.mode = mode
        self.seed = seed
        self.handed = 0
        self.dropped = 0
        self._greenlet: gevent.Greenlet | None = None
        self.finished = Event()

    def start(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Start sending; ``on_error`` hears of an exception that stopped it."""
        self._greenlet = gevent.spawn(self._run)
        if on_error is not None:
            self._greenlet.link_exception(lambda g: on_error(g.exception))

    def stop(self) -> None:
        if self._greenlet is not None and self._greenlet is not gevent.getcurrent():
            self._greenlet.kill(block=True)
        self.finished.set()

    def _run(self) -> None:
        # perf_counter is monotonic; the plan's start is a Unix time shared by all processes.
        perf_start = time.perf_counter() + (self.plan_start_ns - time.time_ns()) / 1e9
        try:
            for scenario in self.scenarios:
                logger.debug(
                    "Clock for %s enters scenario %s.",
                    self.pool.function,
                    scenario.name,
                )
                offsets = arrival_offsets_ms(scenario, mode=self.mode, seed=self.seed)
                for k, offset_ms in enumerate(offsets):
                    if not self.assignment.owns(k, offset_ms):
                        continue
                    _sleep_until(perf_start + offset_ms / 1000.0)
                    ticket = Ticket(
                        scenario.name, k, self.plan_start_ns + round(offset_ms * 1e6)
                    )
                    if self.pool.hand_out(ticket):
                        self.handed += 1
                    else:
                        self.dropped += 1
                        self.on_drop(ticket)
        finally:
            self.finished.set()


def _sleep_until(deadline: float) -> None:
    while True:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return
        if remaining > SPIN_SEC:
            gevent.sleep(remaining - SPIN_SEC)
        else:
            # idle(), not sleep(0): sleep(0) runs callbacks without polling for
            # I/O, which starves gRPC's completions at high rates.
            gevent.idle()
