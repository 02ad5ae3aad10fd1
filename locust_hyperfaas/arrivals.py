"""Planned start instants of the calls of a scenario (an open model).

A scenario's rate is piecewise linear in time: constant for a
constant-arrival-rate scenario, and for a ramping one moving linearly within
each stage from the previous rate (``start_rate`` for the first stage) to the
stage's target. Call n (n = 0, 1, ...) is planned where the integral of the
rate since the scenario's start reaches n: evenly spaced calls at a constant
rate, as k6 starts them. In ``poisson`` mode the calls follow a Poisson process
with the same rate function: unit-rate exponential gaps in the integral's
scale, mapped back to time through the same inverse.

Instants are float milliseconds from the start of the plan, strictly inside
``[scenario.start_ms, scenario.end_ms)``, and generated lazily.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from fractions import Fraction

from .plan import Scenario

__all__ = ["MODES", "arrival_offsets_ms", "expected_count", "planned_count", "rate_at"]

MODES = ("even", "poisson")


def _exact(value: float) -> Fraction:
    # A float rate such as 0.1 is meant as the decimal it prints as, not as its
    # binary approximation; counting with the latter could plan one call more.
    return Fraction(value) if isinstance(value, int) else Fraction(repr(float(value)))


class _Segment:
    """A stretch where the rate moves linearly; rates are calls per ms."""

    def __init__(
        self,
        start_ms: int,
        duration_ms: int,
        rate_start: Fraction,
        rate_end: Fraction,
        count_before: Fraction,
    ) -> None:
        self.start_ms = start_ms
        self.duration_ms = duration_ms
        self.rate_start = rate_start
        self.rate_end = rate_end
        self.count_before = count_before
        self.count = (rate_start + rate_end) * duration_ms / 2
        # Floats for time_of, which runs once per call.
        self._constant = rate_start == rate_end
        self._a = float(rate_start)
        self._k = float((rate_end - rate_start) / (2 * duration_ms or 1))
        self._numerator = float(rate_start.numerator)
        self._denominator = float(rate_start.denominator)
        self._last = math.nextafter(start_ms + duration_ms, -math.inf)

    def time_of(self, calls: float) -> float:
        """The instant (ms from the plan start) where ``calls`` calls are due."""
        if calls <= 0:
            offset = 0.0
        elif self._constant:
            # calls / rate as one correctly rounded division: 3 calls at
            # 10 per ms are at 0.3 ms, not at 0.30000000000000004.
            offset = calls * self._denominator / self._numerator
        else:
            # Solve a t + k t^2 = calls for t >= 0, in the form that stays
            # accurate when k is tiny or the rate starts at 0.
            root = math.sqrt(max(self._a * self._a + 4 * self._k * calls, 0.0))
            offset = 2 * calls / (self._a + root)
        return min(self.start_ms + offset, self._last)

    def rate_at(self, offset_ms: float) -> float:
        """Calls per ms ``offset_ms`` into the segment."""
        return self._a + 2 * self._k * offset_ms


def _segments(scenario: Scenario) -> list[_Segment]:
    unit = scenario.time_unit_ms
    if scenario.is_constant:
        rate = _exact(scenario.rate or 0) / unit
        pieces = [(scenario.duration_ms, rate, rate)]
    else:
        pieces = []
        previous = _exact(scenario.start_rate or 0) / unit
        for stage in scenario.stages:
            target = _exact(stage.target) / unit
            pieces.append((stage.duration_ms, previous, target))
            previous = target

    segments = []
    start_ms, count_before = scenario.start_ms, Fraction(0)
    for duration_ms, rate_start, rate_end in pieces:
        segment = _Segment(start_ms, duration_ms, rate_start, rate_end, count_before)
        if duration_ms > 0:
            segments.append(segment)
        start_ms += duration_ms
        count_before += segment.count
    return segments


def _even(segments: list[_Segment]) -> Iterator[float]:
    for segment in segments:
        before = float(segment.count_before)
        first = math.ceil(segment.count_before)
        stop = math.ceil(segment.count_before + segment.count)
        for n in range(first, stop):
            yield segment.time_of(n - before)


def _poisson(segments: list[_Segment], rng: random.Random) -> Iterator[float]:
    due = rng.expovariate(1.0)
    for segment in segments:
        before = float(segment.count_before)
        end = float(segment.count_before + segment.count)
        while due < end:
            yield segment.time_of(due - before)
            due += rng.expovariate(1.0)


def _scenario_rng(seed: int, name: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def arrival_offsets_ms(
    scenario: Scenario, mode: str = "even", seed: int = 0
) -> Iterator[float]:
    """Planned start instants of the scenario's calls, in ms from the plan start.

    ``mode`` is ``even`` or ``poisson``; ``seed`` (with the scenario's name)
    seeds the Poisson draws and is unused for even arrivals.
    """
    segments = _segments(scenario)
    if mode == "even":
        return _even(segments)
    if mode == "poisson":
        return _poisson(segments, _scenario_rng(seed, scenario.name))
    raise ValueError(f"unknown arrival mode {mode!r}; expected one of {MODES}")


def expected_count(scenario: Scenario) -> float:
    """The integral of the scenario's rate: the mean number of calls."""
    return float(sum((s.count for s in _segments(scenario)), Fraction(0)))


def planned_count(scenario: Scenario, mode: str = "even", seed: int = 0) -> int:
    """How many calls ``arrival_offsets_ms`` plans for the scenario."""
    if mode == "even":
        return math.ceil(sum((s.count for s in _segments(scenario)), Fraction(0)))
    return sum(1 for _ in arrival_offsets_ms(scenario, mode, seed))


def rate_at(scenario: Scenario, offset_ms: float) -> float:
    """The planned rate in calls per second at ``offset_ms`` from the plan start.

    Zero outside the scenario.
    """
    for segment in _segments(scenario):
        if segment.start_ms <= offset_ms < segment.start_ms + segment.duration_ms:
            return segment.rate_at(offset_ms - segment.start_ms) * 1000
    return 0.0
