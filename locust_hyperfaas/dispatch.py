"""Exact per-class user counts for Locust: what an arrival shape asks for.

Locust's own dispatcher spreads a total by class weights and ramps at a spawn
rate. An arrival shape needs each function's VU pool at an exact size at once,
as k6 preallocates VUs, so it returns ``PoolCounts`` from ``tick()`` and this
dispatcher starts exactly those users. Nothing here imports Locust.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PoolCounts", "PoolDispatcher"]


class PoolCounts(list):
    """User classes to run, with the exact number of users for each.

    Returned as the third item of ``tick()``; ``PoolDispatcher`` reads the
    counts. Two ticks differ when any count differs.
    """

    def __init__(self, counts: dict[type, int]) -> None:
        super().__init__(cls for cls, count in counts.items() if count > 0)
        self.counts = {cls.__name__: count for cls, count in counts.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PoolCounts) and self.counts == other.counts

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]


class PoolDispatcher:
    """Locust user dispatcher that starts exactly the counts a ``PoolCounts`` asks.

    Each class's users are split evenly over the workers (sorted by id), and
    every worker gets at least one user of each running class, because each
    worker sends its own share of every scenario's calls.
    """

    def __init__(self, worker_nodes: list[Any], user_classes: list[type]) -> None:
        self._workers = sorted(worker_nodes, key=lambda node: node.id)
        self._class_names = sorted(cls.__name__ for cls in user_classes)
        self._counts: dict[str, int] = {}
        self._pending = False
        self._dispatch_iteration_durations: list[float] = []

    @property
    def dispatch_in_progress(self) -> bool:
        return self._pending

    @property
    def dispatch_iteration_durations(self) -> list[float]:
        return self._dispatch_iteration_durations

    def new_dispatch(
        self, target_user_count: int, spawn_rate: float, user_classes: Any = None
    ) -> None:
        if isinstance(user_classes, PoolCounts):
            self._counts = dict(user_classes.counts)
        self._pending = True

    def add_worker(self, worker_node: Any) -> None:
        self._workers = sorted([*self._workers, worker_node], key=lambda node: node.id)
        self._pending = True

    def remove_worker(self, worker_node: Any) -> None:
        self._workers = [node for node in self._workers if node.id != worker_node.id]
        self._pending = True

    def get_current_user_count(self) -> int:
        return sum(sum(counts.values()) for counts in self._distribution().values())

    def __iter__(self) -> PoolDispatcher:
        return self

    def __next__(self) -> dict[str, dict[str, int]]:
        if not self._pending:
            raise StopIteration
        self._pending = False
        return self._distribution()

    def _distribution(self) -> dict[str, dict[str, int]]:
        workers = len(self._workers)
        result: dict[str, dict[str, int]] = {node.id: {} for node in self._workers}
        for name in self._class_names:
            total = self._counts.get(name, 0)
            for index, node in enumerate(self._workers):
                share = total // workers + (1 if index < total % workers else 0)
                result[node.id][name] = max(share, 1) if total > 0 else 0
        return result
