"""Locust plugin and locustfiles for load-testing HyperFaaS leaf nodes over gRPC.

Importing this package stays cheap: the Locust-facing names (``HyperFaaSUser``,
the shapes) are loaded on first use, because importing Locust patches the
standard library with gevent, which the emulator and the CLI must not get.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "HyperFaaSUser": "locust_hyperfaas.users",
    "EchoUser": "locust_hyperfaas.users",
    "BfsUser": "locust_hyperfaas.users",
    "ThumbnailerUser": "locust_hyperfaas.users",
    "user_class_for": "locust_hyperfaas.users",
    "SeededWorkloadShape": "locust_hyperfaas.shapes",
    "ConstantArrivalRateShape": "locust_hyperfaas.shapes",
    "RampingArrivalRateShape": "locust_hyperfaas.shapes",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'locust_hyperfaas' has no attribute {name!r}")
