"""echo: returns the bytes it was sent."""

from __future__ import annotations

import random

from .spec import FunctionSpec, Payload

MIN_BYTES = 512
MAX_BYTES = 2048


def make_payload(rng: random.Random) -> Payload:
    data = rng.randbytes(rng.randint(MIN_BYTES, MAX_BYTES))
    return Payload(data)


def check_response(payload: Payload, response: bytes) -> str | None:
    if response != payload.data:
        return f"echo returned {len(response)} bytes that differ from the {len(payload.data)} sent"
    return None


SPEC = FunctionSpec(
    name="echo",
    env_prefix="ECHO",
    image_tag="hyperfaas-echo:latest",
    memory_mib=128,
    cpu_period=100_000,
    cpu_quota=25_000,
    make_payload=make_payload,
    check_response=check_response,
    description="returns its input; 512-2048 random bytes",
)
