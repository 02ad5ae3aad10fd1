import itertools
import math
import time

import pytest

from locust_hyperfaas.arrivals import (
    arrival_offsets_ms,
    expected_count,
    planned_count,
    rate_at,
)
from locust_hyperfaas.plan import CONSTANT, RAMPING, Scenario, Stage


def constant(rate, duration_ms, start_ms=0, time_unit_ms=1000, name="echo-0"):
    return Scenario(
        name,
        "echo",
        "e",
        CONSTANT,
        start_ms,
        duration_ms,
        rate,
        None,
        (),
        1,
        1,
        time_unit_ms,
    )


def ramping(start_rate, stages, start_ms=0, name="echo-1"):
    stages = tuple(Stage(duration_ms, target) for duration_ms, target in stages)
    duration_ms = sum(stage.duration_ms for stage in stages)
    return Scenario(
        name,
        "echo",
        "e",
        RAMPING,
        start_ms,
        duration_ms,
        None,
        start_rate,
        stages,
        1,
        1,
    )


def test_a_constant_rate_gives_evenly_spaced_instants():
    instants = list(arrival_offsets_ms(constant(100, 10_000)))
    assert len(instants) == 1000
    assert instants == [10.0 * k for k in range(1000)]
    assert planned_count(constant(100, 10_000)) == 1000


def test_instants_count_from_the_start_of_the_plan():
    instants = list(arrival_offsets_ms(constant(4, 2000, start_ms=5000)))
    assert instants == [5000.0, 5250.0, 5500.0, 5750.0, 6000.0, 6250.0, 6500.0, 6750.0]


@pytest.mark.parametrize(
    ("rate", "duration_ms", "count"),
    [(3, 1500, 5), (0.1, 10_000, 1), (0.3, 10_000, 3), (7, 1000, 7), (1, 999, 1)],
)
def test_a_constant_scenario_plans_the_calls_its_rate_allows(rate, duration_ms, count):
    scenario = constant(rate, duration_ms)
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == planned_count(scenario) == count
    assert all(0 <= t < duration_ms for t in instants)
    assert instants[1:2] in ([], [pytest.approx(1000 / rate)])


def test_the_time_unit_is_honoured():
    scenario = constant(60, 10_000, time_unit_ms=60_000)
    assert list(arrival_offsets_ms(scenario)) == [1000.0 * k for k in range(10)]
    assert rate_at(scenario, 0) == 1.0


def test_a_ramp_from_10_to_100_per_second_over_10_seconds_plans_550_calls():
    scenario = ramping(10, [(10_000, 100)], start_ms=2000)
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == planned_count(scenario) == 550
    assert instants[0] == 2000.0
    assert all(b > a for a, b in zip(instants, instants[1:], strict=False))
    assert 2000 <= instants[-1] < 12_000
    # Call n is where the rate's integral, 0.01 t + 4.5e-6 t^2 (t in ms), is n.
    for n, instant in enumerate(instants):
        t = instant - 2000
        assert 0.01 * t + 4.5e-6 * t * t == pytest.approx(n, abs=1e-6)
    gaps = [b - a for a, b in zip(instants, instants[1:], strict=False)]
    assert gaps[0] > 90 and gaps[-1] < 10.1


def test_a_ramp_from_zero_starts_at_once_and_follows_the_square_root():
    scenario = ramping(0, [(10_000, 100)])
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == 500
    # integral = 5e-6 t^2, so call n is at sqrt(n / 5e-6)
    assert instants == pytest.approx([math.sqrt(n / 5e-6) for n in range(500)])


def test_a_falling_ramp_to_zero_stays_inside_the_scenario():
    scenario = ramping(100, [(10_000, 0)])
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == 500
    assert all(b > a for a, b in zip(instants, instants[1:], strict=False))
    assert instants[-1] < 10_000
    gaps = [b - a for a, b in zip(instants, instants[1:], strict=False)]
    assert gaps[0] == pytest.approx(10, rel=1e-3) and gaps[-1] > 100


def test_stages_chain_from_the_previous_target():
    scenario = ramping(10, [(5000, 10), (5000, 10), (0, 50), (5000, 50)])
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == planned_count(scenario) == 100 + 250
    assert instants[:100] == pytest.approx([100.0 * k for k in range(100)])
    assert instants[100:] == pytest.approx([10_000 + 20.0 * k for k in range(250)])


def test_a_triangle_of_two_stages_is_symmetric():
    scenario = ramping(0, [(10_000, 10), (10_000, 0)])
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == 100
    assert rate_at(scenario, 5000) == pytest.approx(5)
    assert rate_at(scenario, 15_000) == pytest.approx(5)
    # call 50 is at the peak; calls 50 + k and 50 - k mirror around it
    assert instants[50] == pytest.approx(10_000)
    for k in range(1, 50):
        assert instants[50 + k] - 10_000 == pytest.approx(10_000 - instants[50 - k])


def test_zero_rates_plan_nothing():
    assert list(arrival_offsets_ms(constant(0, 10_000))) == []
    assert planned_count(constant(0, 10_000)) == 0
    scenario = ramping(0, [(5000, 0), (5000, 20)])
    instants = list(arrival_offsets_ms(scenario))
    assert len(instants) == 50
    assert instants[0] == 5000.0


def test_even_counts_match_the_closed_form():
    scenarios = [
        constant(2.5, 3333),
        constant(17, 6667, start_ms=13_333),
        ramping(1.5, [(7001, 33.3)]),
        ramping(3, [(1000, 7), (2500, 2), (0, 9), (999, 9)]),
        ramping(0, [(1, 1000)]),
    ]
    for scenario in scenarios:
        instants = list(arrival_offsets_ms(scenario))
        assert len(instants) == planned_count(scenario)
        assert len(instants) == math.ceil(expected_count(scenario) - 1e-9)
        assert all(b > a for a, b in zip(instants, instants[1:], strict=False))
        assert all(scenario.start_ms <= t < scenario.end_ms for t in instants)


def test_instants_are_generated_lazily():
    started = time.perf_counter()
    scenario = constant(10_000, 3_600_000)
    assert planned_count(scenario) == 36_000_000
    first = list(itertools.islice(arrival_offsets_ms(scenario), 5))
    assert first == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert time.perf_counter() - started < 0.5


def test_poisson_arrivals_keep_the_mean_rate():
    scenario = constant(1000, 10_000, start_ms=1000)
    instants = list(arrival_offsets_ms(scenario, "poisson", seed=1))
    assert abs(len(instants) - 10_000) < 500  # five standard deviations
    assert all(b >= a for a, b in zip(instants, instants[1:], strict=False))
    assert all(1000 <= t < 11_000 for t in instants)
    assert planned_count(scenario, "poisson", seed=1) == len(instants)
    first_half = sum(1 for t in instants if t < 6000)
    assert abs(first_half - 5000) < 360


def test_poisson_arrivals_follow_a_ramp():
    scenario = ramping(10, [(10_000, 100)])
    counts = [planned_count(scenario, "poisson", seed=s) for s in range(20)]
    assert abs(sum(counts) / len(counts) - 550) < 30
    instants = list(arrival_offsets_ms(scenario, "poisson", seed=3))
    late = sum(1 for t in instants if t >= 5000)
    early = len(instants) - late
    assert late > 2 * early  # 378 and 173 expected


def test_the_same_seed_gives_the_same_poisson_instants():
    scenario = constant(50, 5000)
    first = list(arrival_offsets_ms(scenario, "poisson", seed=7))
    assert first == list(arrival_offsets_ms(scenario, "poisson", seed=7))
    assert first != list(arrival_offsets_ms(scenario, "poisson", seed=8))
    renamed = constant(50, 5000, name="echo-9")
    assert first != list(arrival_offsets_ms(renamed, "poisson", seed=7))


def test_rate_at_gives_calls_per_second_inside_the_scenario_only():
    scenario = ramping(10, [(10_000, 100)], start_ms=1000)
    assert rate_at(scenario, 999) == 0.0
    assert rate_at(scenario, 1000) == 10.0
    assert rate_at(scenario, 6000) == pytest.approx(55)
    assert rate_at(scenario, 11_000) == 0.0
    assert rate_at(constant(20, 1000), 500) == 20.0


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="burst"):
        arrival_offsets_ms(constant(1, 1000), "burst")
