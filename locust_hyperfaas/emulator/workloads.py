"""The benchmark functions as the emulator runs them: echo, bfs and thumbnailer.

Each workload takes the ``data`` bytes of a call and returns the bytes to
answer. Input a workload cannot decode is answered with ``invalid input``, and
a thumbnail that cannot be made with ``resize failed``, as the real functions
do; a workload never raises.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import random
import time
from collections import deque
from collections.abc import Callable

from PIL import Image

INVALID_INPUT = b"invalid input"
RESIZE_FAILED = b"resize failed"

EDGES_PER_NODE = 10
MAX_GRAPH_SIZE = 100_000
MAX_THUMBNAIL_SIDE = 10_000
JPEG_QUALITY = 85

Workload = Callable[[bytes], bytes]


def echo(data: bytes) -> bytes:
    """Answer the bytes that were sent."""
    return data


def barabasi_albert_graph(size: int, rng: random.Random) -> list[list[int]]:
    """Adjacency lists of a Barabási–Albert graph with ``size`` nodes.

    Node ``k`` joins with ``EDGES_PER_NODE`` edges, or with one edge to every
    earlier node while there are fewer; later nodes pick distinct partners
    with a probability proportional to their degree.
    """
    adjacency: list[list[int]] = [[] for _ in range(size)]
    # Every node appears here once per edge end, so a uniform draw from it
    # is a draw proportional to degree.
    edge_ends: list[int] = []
    for node in range(1, size):
        if node <= EDGES_PER_NODE:
            partners = list(range(node))
        else:
            chosen: set[int] = set()
            partners = []
            while len(partners) < EDGES_PER_NODE:
                partner = rng.choice(edge_ends)
                if partner not in chosen:
                    chosen.add(partner)
                    partners.append(partner)
        for partner in partners:
            adjacency[node].append(partner)
            adjacency[partner].append(node)
            edge_ends.extend((node, partner))
    return adjacency


def breadth_first_order(adjacency: list[list[int]], start: int = 0) -> list[int]:
    """Nodes in the order a breadth-first search from ``start`` visits them."""
    if not adjacency:
        return []
    seen = [False] * len(adjacency)
    seen[start] = True
    order = []
    queue = deque([start])
    while queue:
        node = queue.popleft()
        order.append(node)
        for neighbour in adjacency[node]:
            if not seen[neighbour]:
                seen[neighbour] = True
                queue.append(neighbour)
    return order


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bfs(data: bytes) -> bytes:
    """Traverse a Barabási–Albert graph from node 0.

    Input ``{"Size": int, "Seed": int}`` (``Seed`` optional, else unseeded);
    answer ``{"Result": [node...], "Measurement": {...}}`` with the graph
    generation and traversal times in microseconds.
    """
    try:
        request = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return INVALID_INPUT
    if not isinstance(request, dict):
        return INVALID_INPUT
    size = request.get("Size")
    seed = request.get("Seed")
    if not _is_int(size) or not 0 <= size <= MAX_GRAPH_SIZE:
        return INVALID_INPUT
    if seed is not None and not _is_int(seed):
        return INVALID_INPUT

    started_ns = time.perf_counter_ns()
    graph = barabasi_albert_graph(size, random.Random(seed))
    generated_ns = time.perf_counter_ns()
    order = breadth_first_order(graph)
    finished_ns = time.perf_counter_ns()

    answer = {
        "Result": order,
        "Measurement": {
            "GraphGeneratingTimeMicroseconds": (generated_ns - started_ns) // 1000,
            "ComputeTimeMicroseconds": (finished_ns - generated_ns) // 1000,
        },
    }
    return json.dumps(answer).encode()


def thumbnailer(data: bytes) -> bytes:
    """Scale an image to exactly the asked size and answer it as JPEG.

    Input ``{"image": base64 JPEG or PNG, "width": int, "height": int}``.
    """
    try:
        request = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return INVALID_INPUT
    if not isinstance(request, dict) or not isinstance(request.get("image"), str):
        return INVALID_INPUT
    width, height = request.get("width"), request.get("height")
    for side in (width, height):
        if not _is_int(side) or not 1 <= side <= MAX_THUMBNAIL_SIDE:
            return INVALID_INPUT

    try:
        encoded = base64.b64decode(request["image"], validate=True)
        image = Image.open(io.BytesIO(encoded))
        image.load()
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError):
        return INVALID_INPUT

    try:
        with image:
            thumbnail = image.convert("RGB").resize((width, height))
            buffer = io.BytesIO()
            thumbnail.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    except (ValueError, OSError, MemoryError):
        return RESIZE_FAILED
    return buffer.getvalue()


WORKLOADS: dict[str, Workload] = {
    "echo": echo,
    "bfs": bfs,
    "thumbnailer": thumbnailer,
}

# What a repository name must contain to run each workload, checked in order.
_TAG_MARKERS = (("echo", "echo"), ("bfs", "bfs"), ("thumbnail", "thumbnailer"))


def repository_of(image_tag: str) -> str:
    """The repository part of an image tag: no ``:tag`` and no ``@digest``."""
    repository = image_tag.split("@", 1)[0]
    name_start = repository.rfind("/") + 1
    colon = repository.rfind(":")
    if colon >= name_start:
        repository = repository[:colon]
    return repository


def workload_for_tag(image_tag: str) -> str | None:
    """The workload an image tag runs, or None when its name matches none."""
    repository = repository_of(image_tag).lower()
    for marker, name in _TAG_MARKERS:
        if marker in repository:
            return name
    return None
