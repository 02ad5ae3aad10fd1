"""bfs: breadth-first traversal of a seeded Barabási–Albert graph."""

from __future__ import annotations

import json
import random

from .spec import FunctionSpec, Payload

GRAPH_SIZE = 100
SEED_MAX = 2**31 - 1


def make_payload(rng: random.Random) -> Payload:
    request: dict[str, int] = {"Size": GRAPH_SIZE}
    if rng.random() < 0.5:
        request["Seed"] = rng.randint(0, SEED_MAX)
    return Payload(json.dumps(request).encode(), expected=GRAPH_SIZE)


def check_response(payload: Payload, response: bytes) -> str | None:
    try:
        result = json.loads(response)["Result"]
    except (ValueError, KeyError, TypeError):
        return f"bfs answered {response[:40]!r}, not JSON with a Result list"
    if not isinstance(result, list):
        return "bfs Result is not a list"
    return None


SPEC = FunctionSpec(
    name="bfs",
    env_prefix="BFS",
    image_tag="hyperfaas-bfs-json:latest",
    memory_mib=256,
    cpu_period=100_000,
    cpu_quota=50_000,
    make_payload=make_payload,
    check_response=check_response,
    description='JSON {"Size": 100, "Seed": n} (Seed half the time)',
)
