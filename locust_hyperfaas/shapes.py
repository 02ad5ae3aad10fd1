"""Load shapes that send a plan's calls at its planned instants.

A shape here does not set the load; the arrival clocks do (``scheduler.py``).
The shape keeps each function's pool of VUs (Locust users) between the active
scenario's preallocated and max VUs, growing it by one for every dropped call,
and ends the run when the plan ends.

- ``SeededWorkloadShape`` runs the seeded plan from the settings, or the plan
  file given with ``--plan``.
- ``ConstantArrivalRateShape`` and ``RampingArrivalRateShape`` run one
  scenario per function, set by class attributes.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from locust import LoadTestShape

from .config import Settings, parse_duration_ms
from .dispatch import PoolCounts
from .exceptions import ConfigError, HyperFaaSError
from .plan import Plan, Scenario, Stage, generate_plan, load_plan

logger = logging.getLogger(__name__)

# Start a scenario's VUs this long before its first instant.
LOOKAHEAD_MS = 1500
# Locust's spawn rate is not used by the pool dispatcher, which starts every
# VU at once, as k6 preallocates them; Locust only needs a value.
SPAWN_RATE = 100


class ArrivalShape(LoadTestShape):
    """Base of the shapes that run a plan open-loop (not used directly)."""

    abstract = True

    def build_plan(self, settings: Settings, functions: list[str]) -> Plan:
        """The plan to run, for the functions whose users are in the locustfile."""
        raise NotImplementedError

    def tick(self) -> tuple[int, float, PoolCounts] | None:
        from .runtime import get_runtime

        runtime = get_runtime(self.runner.environment)
        try:
            if runtime.run is None:
                runtime.reload_settings()
            plan = runtime.prepare_plan()
        except HyperFaaSError as exc:
            logger.error("Cannot start the run: %s", exc)
            return None
        elapsed = runtime.elapsed_ms()
        if elapsed is not None and elapsed >= plan.end_ms:
            if runtime.run is not None:
                runtime.run.completed = True
            return None
        targets = runtime.pool_targets(max(elapsed or 0.0, 0.0))
        counts = {
            cls: targets.get(getattr(cls, "function", ""), 0)
            for cls in self.runner.user_classes
        }
        return sum(counts.values()), SPAWN_RATE, PoolCounts(counts)


class SeededWorkloadShape(ArrivalShape):
    """Runs the seeded workload plan (or the ``--plan`` file) of the settings."""

    def build_plan(self, settings: Settings, functions: list[str]) -> Plan:
        plan = (
            load_plan(settings.plan_path, settings)
            if settings.plan_path
            else generate_plan(settings)
        )
        kept = tuple(s for s in plan.scenarios if s.function in functions)
        return dataclasses.replace(plan, scenarios=kept)


class _SingleScenarioShape(ArrivalShape):
    """One scenario per function in the locustfile (or in ``functions``)."""

    abstract = True
    duration: str = "60s"
    preallocated_vus: int = 10
    max_vus: int = 100
    functions: tuple[str, ...] = ()

    def _rates(self) -> dict[str, Any]:
        """The scenario's executor and rate fields."""
        raise NotImplementedError

    def build_plan(self, settings: Settings, functions: list[str]) -> Plan:
        chosen = [f for f in functions if not self.functions or f in self.functions]
        duration_ms = self._duration_ms()
        scenarios = tuple(
            Scenario(
                name=f"{name}-0",
                function=name,
                image_tag=settings.functions[name].image_tag,
                start_ms=0,
                duration_ms=duration_ms,
                preallocated_vus=self.preallocated_vus,
                max_vus=max(self.max_vus, self.preallocated_vus),
                **self._rates(),
            )
            for name in chosen
        )
        return Plan(
            seed=settings.seed, total_duration_ms=duration_ms, scenarios=scenarios
        )

    def _duration_ms(self) -> int:
        return self._parse(self.duration, "duration")

    def _parse(self, value: object, attribute: str) -> int:
        try:
            return parse_duration_ms(str(value))
        except ConfigError:
            raise ConfigError(
                f"{type(self).__name__}.{attribute}",
                value,
                "a duration such as 60s or 2m",
            ) from None


class ConstantArrivalRateShape(_SingleScenarioShape):
    """Every function in the locustfile at ``rate`` calls/s for ``duration``."""

    abstract = True
    rate: float = 10.0

    def _rates(self) -> dict[str, Any]:
        return {
            "executor": "constant-arrival-rate",
            "rate": float(self.rate),
            "start_rate": None,
            "stages": (),
        }


class RampingArrivalRateShape(_SingleScenarioShape):
    """Every function from ``start_rate`` through ``stages`` of (duration, target).

    The rate changes linearly within each stage, as in k6's ramping executor.
    """

    abstract = True
    start_rate: float = 0.0
    stages: tuple[tuple[str, float], ...] = (("60s", 10.0),)

    def _duration_ms(self) -> int:
        return sum(self._parse(duration, "stages") for duration, _ in self.stages)

    def _rates(self) -> dict[str, Any]:
        stages = tuple(
            Stage(duration_ms=self._parse(d, "stages"), target=float(t))
            for d, t in self.stages
        )
        return {
            "executor": "ramping-arrival-rate",
            "rate": None,
            "start_rate": float(self.start_rate),
            "stages": stages,
        }
