"""The description every benchmark function provides."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Payload:
    """Bytes to send as ``ScheduleCallRequest.data`` and what the check needs."""

    data: bytes
    expected: Any = None


@dataclass(frozen=True)
class FunctionSpec:
    """A benchmark function: its container, its resources, its input and output.

    ``make_payload`` draws a request from the given random generator;
    ``check_response`` returns None for a correct answer, else a short reason.
    """

    name: str
    env_prefix: str
    image_tag: str
    memory_mib: int
    cpu_period: int
    cpu_quota: int
    make_payload: Callable[[random.Random], Payload]
    check_response: Callable[[Payload, bytes], str | None]
    description: str = ""

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib * MIB
