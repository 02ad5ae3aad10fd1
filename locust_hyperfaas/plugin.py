"""Locust event listeners of the plugin; imported by ``users.py``.

Settings become Locust options (command line, ``locust.conf``, environment
variables and the web UI form). At ``init`` the settings are checked, so a bad
value stops Locust before anything runs, with a message naming the setting.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import gevent
from locust import events

from .config import add_locust_arguments
from .exceptions import HyperFaaSError
from .runtime import Runtime

logger = logging.getLogger(__name__)


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    add_locust_arguments(parser)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    if environment.runner is None:
        return
    runtime = Runtime(environment)
    environment.hyperfaas = runtime
    try:
        runtime.initialise()
    except HyperFaaSError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    if runtime.shape is not None:
        from .dispatch import PoolDispatcher

        environment.dispatcher_class = PoolDispatcher
    if runtime.role == "worker":
        # Locust's own quitting listener tells the master this worker is gone;
        # registered later, this one runs first (quitting fires in reverse).
        environment.events.quitting.add_listener(lambda **_: runtime.drain())
    elif getattr(environment.parsed_options, "headless", False):
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    """Stop a headless run on SIGTERM the way Ctrl-C does.

    While a headless shape test runs, Locust has not yet installed its own
    SIGTERM handler, so the signal would end the process without writing the
    last rows. Raising KeyboardInterrupt in the main greenlet takes Locust's
    orderly Ctrl-C path instead; Locust's handler replaces this one later.
    """
    logger.info("Got SIGTERM: stopping the run and writing what was recorded.")
    hub = gevent.get_hub()
    hub.loop.run_callback(hub.parent.throw, KeyboardInterrupt)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_: Any) -> None:
    runtime: Runtime | None = getattr(environment, "hyperfaas", None)
    if runtime is None or runtime.role == "worker":
        return
    try:
        runtime.begin_run()
    except HyperFaaSError as exc:
        logger.error("Cannot start the run: %s", exc)
        environment.process_exit_code = 2
        runner = environment.runner
        headless = getattr(environment.parsed_options, "headless", False)
        gevent.spawn_later(0, runner.quit if headless else runner.stop)


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_: Any) -> None:
    runtime: Runtime | None = getattr(environment, "hyperfaas", None)
    if runtime is not None:
        runtime.stopping()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_: Any) -> None:
    runtime: Runtime | None = getattr(environment, "hyperfaas", None)
    if runtime is None:
        return
    if runtime.role == "worker":
        runtime.worker_stopped()
    else:
        runtime.finish_run()


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    for runtime in list(Runtime.instances):
        runtime.shutdown()
