"""Shared fixtures: a leaf emulator on 127.0.0.1 and a way to run real Locust."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from locust_hyperfaas.emulator import EmulatorProcess

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILES = ROOT / "locustfiles"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    """A leaf emulator with a short cold start, stopped after the test."""
    process = EmulatorProcess.start(
        stats_file=tmp_path / "emulator_stats.json",
        extra_args=("--cold-start-ms", "50"),
        log_file=tmp_path / "emulator.log",
    )
    try:
        yield process
    finally:
        process.stop()


def clean_env(**overrides: str) -> dict[str, str]:
    """The environment for a Locust child: no stray workload variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("LOCUST_", "HYPERFAAS_", "WORKLOAD_", "ECHO_", "BFS_", "THUMBNAILER_")
        )
    }
    env.update({"PYTHONUNBUFFERED": "1", "HYPERFAAS_EMULATOR_COLD_START_MS": "50"})
    env.update(overrides)
    return env


@dataclass
class LocustRun:
    returncode: int
    output: str
    results: Path

    def rows(self, name: str = "requests.csv") -> list[dict[str, str]]:
        with open(self.run_dir / name, newline="") as handle:
            return list(csv.DictReader(handle))

    @property
    def run_dir(self) -> Path:
        return self.results


def start_locust(
    locustfile: str | Path,
    args: Sequence[str],
    env: dict[str, str],
    log: Path,
    cwd: Path = ROOT,
) -> subprocess.Popen[bytes]:
    command = [str(BIN / "locust"), "-f", str(locustfile), *args]
    handle = open(log, "wb")
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT
    )


def run_locust(
    tmp_path: Path,
    locustfile: str | Path,
    args: Sequence[str] = ("--headless",),
    timeout: float = 120,
    interrupt_after: float | None = None,
    interrupt_signal: int = signal.SIGINT,
    cwd: Path = ROOT,
    **env: str,
) -> LocustRun:
    """Run Locust to the end (or interrupt it) and return its output and results folder."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    results = tmp_path / "results"
    environment = clean_env(HYPERFAAS_RESULTS_DIR=str(results), **env)
    log = tmp_path / f"locust-{time.monotonic_ns()}.log"
    process = start_locust(locustfile, args, environment, log, cwd=cwd)
    try:
        if interrupt_after is not None:
            time.sleep(interrupt_after)
            process.send_signal(interrupt_signal)
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return LocustRun(process.returncode, log.read_text(errors="replace"), results)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Keep Locust out of the test process: it patches the standard library
    with gevent, which breaks the threaded gRPC servers other tests start.
    Tests run Locust in child processes instead."""
    assert "locust" not in sys.modules, "a test module imported locust at import time"
