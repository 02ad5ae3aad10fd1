"""An emulated HyperFaaS leaf: the ``leaf.Leaf`` gRPC service with real workloads.

Run it with ``python -m locust_hyperfaas.emulator`` (or ``locust-hyperfaas
emulator``), in this process with ``serve()``, or in a child process with
``EmulatorProcess.start()``. Nothing here imports Locust or gevent.
"""

from __future__ import annotations

from .process import EmulatorProcess
from .server import EmulatorOptions, EmulatorState, serve, shutdown

__all__ = ["EmulatorOptions", "EmulatorProcess", "EmulatorState", "serve", "shutdown"]
