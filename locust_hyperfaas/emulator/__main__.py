"""Command line of the leaf emulator: ``python -m locust_hyperfaas.emulator``.

Once listening it prints one line to stdout,
``HyperFaaS leaf emulator listening on HOST:PORT``, and logs to stderr. SIGTERM
or SIGINT stops it: calls in flight may finish, the stats file is written and
the exit code is 0. A bad option value exits with code 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence

from locust_hyperfaas.exceptions import ConfigError

from .server import LISTENING_MESSAGE, EmulatorOptions, serve, shutdown

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
SHUTDOWN_GRACE_SEC = 5.0

# The command-line option of every EmulatorOptions field, for error messages.
OPTION_FLAGS = {
    "host": "--host",
    "port": "--port",
    "max_workers": "--max-workers",
    "cold_start_ms": "--cold-start-ms",
    "idle_timeout_s": "--idle-timeout",
    "timestamp_format": "--timestamp-format",
    "later_trailers": "--later-trailers",
    "extra_latency_ms": "--extra-latency-ms",
    "fail_rate": "--fail-rate",
    "error_rate": "--error-rate",
    "max_instances": "--max-instances",
    "seed": "--seed",
    "stats_file": "--stats-file",
}


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not valid: expected an integer"
        ) from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not valid: expected a number")
    return value


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The emulator's argument parser."""
    defaults = EmulatorOptions()
    parser = argparse.ArgumentParser(
        prog=prog or "python -m locust_hyperfaas.emulator",
        description="Start a HyperFaaS leaf emulator (gRPC service leaf.Leaf).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="address to listen on")
    add("--port", type=_integer, default=defaults.port, help="port; 0 picks one")
    add(
        "--cold-start-ms",
        type=_number,
        default=defaults.cold_start_ms,
        help="time to start an instance",
    )
    add(
        "--idle-timeout",
        type=_number,
        default=defaults.idle_timeout_s,
        metavar="SECONDS",
        help="idle time after which an instance is stopped",
    )
    add(
        "--max-workers",
        type=_integer,
        default=defaults.max_workers,
        help="threads serving calls",
    )
    add(
        "--timestamp-format",
        default=defaults.timestamp_format,
        help="format of the timestamp trailers: rfc3339 or unix (nanoseconds)",
    )
    add(
        "--later-trailers",
        action="store_true",
        help="also send functionprocessingtime, leafgotrequesttimestamp "
        "and leafscheduledcalltimestamp",
    )
    add(
        "--extra-latency-ms",
        type=_number,
        default=defaults.extra_latency_ms,
        help="delay added to every call",
    )
    add(
        "--fail-rate",
        type=_number,
        default=defaults.fail_rate,
        help="fraction of calls failing with UNAVAILABLE",
    )
    add(
        "--error-rate",
        type=_number,
        default=defaults.error_rate,
        help="fraction of calls answered OK with an error message",
    )
    add(
        "--max-instances",
        type=_integer,
        default=defaults.max_instances,
        help="instances per function, 0 for no limit; beyond: RESOURCE_EXHAUSTED",
    )
    add("--seed", type=_integer, default=None, help="seed of the fault draws")
    add("--stats-file", default=None, help="JSON file the call counts are kept in")
    add(
        "--parent-pid",
        type=_integer,
        default=0,
        help="stop when this process is gone (0: never); set by EmulatorProcess",
    )
    add(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default="INFO",
        help="level of the log lines written to stderr",
    )
    return parser


def options_from_args(args: argparse.Namespace) -> EmulatorOptions:
    """EmulatorOptions from parsed arguments; raises ConfigError."""
    return EmulatorOptions(
        host=args.host,
        port=args.port,
        max_workers=args.max_workers,
        cold_start_ms=args.cold_start_ms,
        idle_timeout_s=args.idle_timeout,
        timestamp_format=args.timestamp_format,
        later_trailers=args.later_trailers,
        extra_latency_ms=args.extra_latency_ms,
        fail_rate=args.fail_rate,
        error_rate=args.error_rate,
        max_instances=args.max_instances,
        seed=args.seed,
        stats_file=args.stats_file,
    )


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the emulator until SIGTERM or SIGINT; answer the exit code."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        options = options_from_args(args)
    except ConfigError as exc:
        flag = OPTION_FLAGS.get(exc.setting, exc.setting)
        parser.print_usage(sys.stderr)
        print(
            f"{parser.prog}: error: argument {flag}: {exc.value!r} is not valid: "
            f"expected {exc.accepted}",
            file=sys.stderr,
        )
        return 2

    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    stop_requested = threading.Event()
    previous_handlers = {
        signum: signal.signal(signum, lambda *_: stop_requested.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }

    try:
        try:
            server, _, state = serve(options)
        except RuntimeError as exc:
            print(f"{parser.prog}: error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(
                f"{parser.prog}: error: argument --stats-file: "
                f"{options.stats_file!r} cannot be written: {exc.strerror}",
                file=sys.stderr,
            )
            return 2
        print(LISTENING_MESSAGE.format(address=state.address), flush=True)

        while not stop_requested.wait(0.5):
            if args.parent_pid and os.getppid() != args.parent_pid:
                logging.getLogger(__name__).info(
                    "The process that started the emulator is gone; stopping."
                )
                break
        shutdown(server, state, SHUTDOWN_GRACE_SEC)
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
