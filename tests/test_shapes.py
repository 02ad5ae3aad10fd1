"""The shape classes users put in their own locustfiles, and the pool dispatcher."""

from __future__ import annotations

import textwrap
from collections import Counter
from types import SimpleNamespace

from conftest import run_locust

from locust_hyperfaas.dispatch import PoolCounts, PoolDispatcher

STEADY = textwrap.dedent(
    """
    from locust_hyperfaas import BfsUser, ConstantArrivalRateShape, EchoUser

    class Steady(ConstantArrivalRateShape):
        rate = 25
        duration = "3s"
        preallocated_vus = 5
        max_vus = 20
        functions = ("echo",)
    """
)

RAMP = textwrap.dedent(
    """
    from locust_hyperfaas import BfsUser, EchoUser, RampingArrivalRateShape

    class Ramp(RampingArrivalRateShape):
        start_rate = 0
        stages = (("2s", 20), ("2s", 20))
        preallocated_vus = 5
        max_vus = 20
    """
)


def test_a_constant_rate_shape_in_a_custom_locustfile_sends_rate_times_duration(
    tmp_path, emulator
):
    locustfile = tmp_path / "steady.py"
    locustfile.write_text(STEADY)
    run = run_locust(
        tmp_path, locustfile, args=("--headless", "--host", emulator.address)
    )

    assert run.returncode == 0, run.output
    sent = Counter(row["scenario"] for row in run.rows() if row["status"] == "OK")
    assert sent == {"echo-0": 75}


def test_a_ramping_shape_runs_every_user_class_through_its_stages(tmp_path, emulator):
    locustfile = tmp_path / "ramp.py"
    locustfile.write_text(RAMP)
    run = run_locust(
        tmp_path, locustfile, args=("--headless", "--host", emulator.address)
    )

    assert run.returncode == 0, run.output
    sent = Counter(row["scenario"] for row in run.rows() if row["status"] == "OK")
    # 0 -> 20/s over 2 s is 20 calls, then 20/s for 2 s is 40
    assert sent == {"echo-0": 60, "bfs-0": 60}


def node(name: str) -> SimpleNamespace:
    return SimpleNamespace(id=name)


class Echo:
    pass


class Bfs:
    pass


def test_the_dispatcher_splits_each_class_evenly_and_keeps_one_per_worker():
    dispatcher = PoolDispatcher([node("b"), node("a"), node("c")], [Echo, Bfs])
    dispatcher.new_dispatch(8, 100, PoolCounts({Echo: 7, Bfs: 1}))

    (distribution,) = list(dispatcher)
    assert distribution == {
        "a": {"Bfs": 1, "Echo": 3},
        "b": {"Bfs": 1, "Echo": 2},
        "c": {"Bfs": 1, "Echo": 2},
    }
    assert list(dispatcher) == []


def test_a_new_worker_triggers_a_new_distribution_with_the_same_counts():
    dispatcher = PoolDispatcher([node("a")], [Echo, Bfs])
    dispatcher.new_dispatch(4, 100, PoolCounts({Echo: 4, Bfs: 0}))
    list(dispatcher)
    dispatcher.add_worker(node("b"))
    dispatcher.new_dispatch(4, 100, None)

    assert list(dispatcher) == [
        {"a": {"Bfs": 0, "Echo": 2}, "b": {"Bfs": 0, "Echo": 2}}
    ]


def test_ticks_differ_when_any_count_differs():
    assert PoolCounts({Echo: 2, Bfs: 1}) == PoolCounts({Echo: 2, Bfs: 1})
    assert (3, 100, PoolCounts({Echo: 2, Bfs: 1})) != (
        3,
        100,
        PoolCounts({Echo: 1, Bfs: 2}),
    )
    assert list(PoolCounts({Echo: 2, Bfs: 0})) == [Echo]
