"""Run the leaf emulator in a child process and stop it again.

The child is ``python -m locust_hyperfaas.emulator``, started with
``subprocess.Popen`` so that it shares nothing (gevent patches, locks, threads)
with the process that starts it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .server import LISTENING_MESSAGE

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SEC = 20.0
STDERR_TAIL_BYTES = 4000
STOP_WAIT_SEC = 5.0
_LISTENING_PREFIX = LISTENING_MESSAGE.format(address="")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class EmulatorProcess:
    """A leaf emulator running in a child process.

    Use ``EmulatorProcess.start()``, as a context manager or with ``stop()``.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        address: str,
        stats_file: str,
        private_dir: str,
        log: IO[bytes] | None,
        reader: threading.Thread,
    ) -> None:
        self._process = process
        self.address = address
        self.stats_file = stats_file
        self._private_dir = private_dir
        self._log = log
        self._reader = reader
        self._final_stats: dict[str, Any] | None = None

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        stats_file: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        log_file: str | os.PathLike[str] | None = None,
    ) -> EmulatorProcess:
        """Start an emulator and wait until it listens.

        ``extra_args`` are further command-line options (``--cold-start-ms``,
        ...). Without ``stats_file`` the stats go to a temporary file, removed
        by ``stop()``. The child's stderr, and its stdout after the listening
        line, go to ``log_file`` or are discarded. Raises RuntimeError, with
        the child's stderr, when it exits or does not listen within 20 s.
        """
        private_dir = tempfile.mkdtemp(prefix="hyperfaas-emulator-")
        if stats_file is None:
            stats_file = os.path.join(private_dir, "stats.json")
        stderr_path = log_file or os.path.join(private_dir, "stderr.log")
        command = [
            *(sys.executable, "-m", "locust_hyperfaas.emulator"),
            *("--host", host, "--port", str(port)),
            *("--stats-file", os.fspath(stats_file)),
            *("--parent-pid", str(os.getpid())),
            *extra_args,
        ]

        with open(stderr_path, "ab") as stderr:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_child_env(),
            )
        log = open(log_file, "ab") if log_file else None
        listening: list[str] = []
        ready = threading.Event()
        reader = threading.Thread(
            target=_read_stdout,
            args=(process.stdout, listening, ready, log),
            name=f"emulator-{process.pid}-stdout",
            daemon=True,
        )
        reader.start()

        address = _wait_for_listening(process, ready, listening)
        if address is None:
            reason = _end_failed_start(process, ready)
            reader.join(1)
            if log:
                log.close()
            stderr_text = _tail(stderr_path)
            shutil.rmtree(private_dir, ignore_errors=True)
            raise RuntimeError(
                f"The HyperFaaS leaf emulator ({' '.join(command)}) {reason}.\n"
                f"Its stderr:\n{stderr_text}"
            )

        emulator = cls(
            process, address, os.fspath(stats_file), private_dir, log, reader
        )
        logger.info("Started a leaf emulator at %s.", emulator.address)
        return emulator

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while the emulator runs."""
        return self._process.poll()

    def stats(self) -> dict[str, Any]:
        """The emulator's counts, as last written to its stats file."""
        if self._final_stats is not None:
            return self._final_stats
        with open(self.stats_file, encoding="utf-8") as file:
            return json.load(file)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait up to ``timeout`` s (then SIGKILL); answer the exit code."""
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.error(
                    "The leaf emulator (pid %s) ignored SIGTERM for %g s; killing it.",
                    self.pid,
                    timeout,
                )
                _end(self._process)
        self._reader.join(1)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._final_stats is None:
            try:
                self._final_stats = self.stats()
            except (OSError, ValueError) as exc:
                logger.error("Cannot read the emulator's stats file: %s", exc)
        shutil.rmtree(self._private_dir, ignore_errors=True)
        return self._process.returncode

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _read_stdout(
    stdout: IO[bytes],
    listening: list[str],
    ready: threading.Event,
    log: IO[bytes] | None,
) -> None:
    """Find the listening line, then copy the rest to ``log`` or drop it."""
    with stdout:
        for line in stdout:
            text = line.decode(errors="replace").strip()
            if not listening and text.startswith(_LISTENING_PREFIX):
                listening.append(text[len(_LISTENING_PREFIX) :])
                ready.set()
            elif log is not None and not log.closed:
                log.write(line)
                log.flush()
    ready.set()


def _wait_for_listening(
    process: subprocess.Popen[bytes], ready: threading.Event, listening: list[str]
) -> str | None:
    """The address of the listening line; None if the child exited or timed out."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SEC
    while not ready.wait(0.05):
        if process.poll() is not None:
            ready.wait(1)  # the line may still be in the pipe
            break
        if time.monotonic() > deadline:
            break
    return listening[0] if listening else None


def _end_failed_start(process: subprocess.Popen[bytes], ready: threading.Event) -> str:
    """End a child that did not listen; answer why it did not."""
    if ready.is_set():  # stdout is closed: the child is exiting
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(STOP_WAIT_SEC)
    code = process.poll()
    _end(process)
    if code is None:
        return f"did not listen within {STARTUP_TIMEOUT_SEC:g} s"
    return f"exited with code {code}"


def _child_env() -> dict[str, str]:
    """This environment, with this package importable even when not installed."""
    env = dict(os.environ)
    paths = (_PACKAGE_ROOT, env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def _end(process: subprocess.Popen[bytes]) -> None:
    """Kill a child process and reap it."""
    if process.poll() is None:
        process.kill()
    process.wait()


def _tail(path: str | os.PathLike[str]) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - STDERR_TAIL_BYTES))
            return file.read().decode(errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc})"
