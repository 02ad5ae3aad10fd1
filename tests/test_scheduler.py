"""Arrival clocks, VU pools and worker shares, in one process with gevent."""

from __future__ import annotations

import time

import gevent

from locust_hyperfaas.plan import Scenario
from locust_hyperfaas.scheduler import ArrivalClock, Assignment, Ticket, VuPool


def constant(rate: float, duration_ms: int, name: str = "echo-0") -> Scenario:
    return Scenario(
        name=name,
        function="echo",
        image_tag="hyperfaas-echo:latest",
        executor="constant-arrival-rate",
        start_ms=0,
        duration_ms=duration_ms,
        rate=rate,
        start_rate=None,
        stages=(),
        preallocated_vus=1,
        max_vus=1,
    )


def test_shares_split_every_scenario_exactly_and_change_at_the_same_offset():
    first, second = Assignment(0, 2), Assignment(1, 2)
    first.change(1000.0, 0, 1)  # the second worker leaves at plan time 1 s

    before = [(first.owns(k, k * 100.0), second.owns(k, k * 100.0)) for k in range(10)]
    assert before == [(True, False), (False, True)] * 5
    assert all(first.owns(k, k * 100.0) for k in range(10, 20))


def test_a_share_that_starts_later_owns_nothing_before_it():
    late = Assignment(1, 2, effective_ms=500.0)

    assert not late.owns(1, 100.0)
    assert late.owns(7, 700.0)


def test_idle_vus_get_tickets_longest_idle_first_and_count_as_busy_at_once():
    pool = VuPool("echo")
    got: list[tuple[str, Ticket]] = []
    handed: list[str] = []

    def vu(name: str) -> None:
        ticket = pool.wait_for_ticket(lambda t: None, lambda: handed.append(name))
        got.append((name, ticket))

    workers = [gevent.spawn(vu, name) for name in ("a", "b")]
    gevent.sleep(0)
    assert pool.idle_count == 2
    assert pool.hand_out(Ticket("echo-0", 0, 1))
    assert handed == ["a"] and pool.busy == 1
    assert pool.hand_out(Ticket("echo-0", 1, 2))
    assert not pool.hand_out(Ticket("echo-0", 2, 3))
    gevent.joinall(workers)
    assert got == [("a", Ticket("echo-0", 0, 1)), ("b", Ticket("echo-0", 1, 2))]


def test_a_vu_killed_while_idle_leaves_the_pool_and_loses_nothing():
    pool = VuPool("echo")
    lost: list[Ticket] = []
    vu = gevent.spawn(pool.wait_for_ticket, lost.append, lambda: None)
    gevent.sleep(0)
    assert pool.idle_count == 1
    vu.kill()

    assert pool.idle_count == 0 and pool.busy == 0 and lost == []
    assert not pool.hand_out(Ticket("echo-0", 0, 1))


def test_the_clock_hands_out_planned_instants_and_drops_when_no_vu_is_free():
    pool = VuPool("echo")
    drops: list[Ticket] = []
    served: list[tuple[Ticket, int]] = []

    def vu() -> None:
        while True:
            ticket = pool.wait_for_ticket(drops.append, lambda: None)
            served.append((ticket, time.time_ns()))
            gevent.sleep(0.025)  # a 25 ms call: one VU serves every other 10 ms instant
            pool.done()

    start_ns = time.time_ns() + 50_000_000
    clock = ArrivalClock(
        pool, [constant(100, 500)], start_ns, Assignment(), drops.append
    )
    vus = [gevent.spawn(vu)]
    clock.start()
    clock.finished.wait(5)
    gevent.killall(vus)

    assert len(served) + len(drops) == 50
    assert 12 <= len(served) <= 20 and len(drops) >= 30
    assert {t.index for t, _ in served} | {t.index for t in drops} == set(range(50))
    lateness_ms = sorted((sent - t.scheduled_ns) / 1e6 for t, sent in served)
    assert lateness_ms[0] >= 0 and lateness_ms[len(lateness_ms) // 2] < 5


def test_a_clock_that_fails_reports_it():
    errors: list[BaseException] = []
    clock = ArrivalClock(
        VuPool("echo"),
        [constant(100, 500)],
        time.time_ns(),
        Assignment(),
        lambda t: None,
        mode="bogus",
    )
    clock.start(on_error=errors.append)
    clock.finished.wait(2)
    gevent.sleep(0.01)

    assert len(errors) == 1 and isinstance(errors[0], ValueError)
