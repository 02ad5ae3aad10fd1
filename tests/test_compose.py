"""The container setup: docker-compose.yml, the Dockerfile and .dockerignore.

No container engine is needed. The compose file is read as data and checked
against what the installed commands accept, Debian's ``docker-compose`` (v1)
validates and renders it, and the commands of its services run as local
processes on 127.0.0.1 to show that they work together.
"""

from __future__ import annotations

import csv
import os
import re
import select
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from locust_hyperfaas.config import settings_table

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BIN = Path(sys.executable).parent

SERVICES = ("emulator", "master", "worker")
LOCUST_SERVICES = ("master", "worker")
PACKAGE_EXECUTABLES = ("locust", "locust-hyperfaas")
IMAGE = "locust-hyperfaas:latest"
REAL_LEAF = "10.0.0.5:50050"
LISTENING_LINE = re.compile(r"HyperFaaS leaf emulator listening on (\S+:\d+)")
RUN_TIMEOUT_SEC = 60


# --------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as data."""
    try:
        import yaml
    except ImportError:
        pytest.fail(
            "PyYAML is needed to read docker-compose.yml: "
            "add pyyaml to the test extras in pyproject.toml"
        )
    return yaml.safe_load(COMPOSE_FILE.read_text())


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    return compose["services"][name]


def argv_of(compose: dict[str, Any], name: str) -> list[str]:
    """The command a service runs: its entrypoint followed by its command."""
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service(compose, name).get(key) or []
        parts += shlex.split(value) if isinstance(value, str) else list(value)
    return [str(part) for part in parts]


def option(argv: list[str], flag: str) -> str:
    """The value given to ``flag`` in ``argv``."""
    assert flag in argv, f"{flag} missing from {shlex.join(argv)}"
    return argv[argv.index(flag) + 1]


def replace_option(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with the value of ``flag`` replaced."""
    index = argv.index(flag) + 1
    return [*argv[:index], value, *argv[index + 1 :]]


def flags(argv: list[str]) -> list[str]:
    return [part for part in argv if part.startswith("-")]


def mentions(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


@pytest.fixture(scope="module")
def locust_help() -> str:
    return subprocess.run(
        [str(BIN / "locust"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


@pytest.fixture(scope="module")
def emulator_help() -> str:
    return subprocess.run(
        [str(BIN / "locust-hyperfaas"), "emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def docker_compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Debian's docker-compose on the compose file; HYPERFAAS_LEAF unset."""
    executable = shutil.which("docker-compose")
    if executable is None:
        pytest.fail(
            "docker-compose is not installed; it only checks the compose file "
            "here: apt-get install docker-compose"
        )
    environment = {k: v for k, v in os.environ.items() if k != "HYPERFAAS_LEAF"}
    environment.update(env)
    return subprocess.run(
        [executable, "-f", str(COMPOSE_FILE), *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = DOCKERFILE.read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), " ".join(arguments.split())))
    return instructions


def arguments_of(keyword: str) -> list[str]:
    return [args for name, args in dockerfile_instructions() if name == keyword]


# ---------------------------------------------------------------- compose file


def test_compose_file_defines_the_emulator_master_and_worker(compose):
    assert set(compose["services"]) == set(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_uses_the_image_built_from_the_dockerfile(compose, name):
    assert service(compose, name)["build"] == "."
    assert service(compose, name)["image"] == IMAGE


def test_master_publishes_the_web_ui_port(compose):
    assert "8089:8089" in service(compose, "master")["ports"]


def test_worker_can_be_scaled_because_it_has_no_fixed_name_or_host_port(compose):
    worker = service(compose, "worker")
    assert "ports" not in worker
    assert "container_name" not in worker


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_an_executable_the_package_installs(compose, name):
    executable = argv_of(compose, name)[0]
    assert executable in PACKAGE_EXECUTABLES
    assert (BIN / executable).exists()


@pytest.mark.parametrize("name", LOCUST_SERVICES)
def test_locust_services_run_a_locustfile_of_the_repo(compose, name):
    argv = argv_of(compose, name)
    assert argv[0] == "locust"
    assert option(argv, "-f") == "locustfiles/mix.py"
    assert (ROOT / option(argv, "-f")).is_file()


@pytest.mark.parametrize("name", LOCUST_SERVICES)
def test_locust_services_use_only_flags_locust_accepts(compose, name, locust_help):
    unknown = [f for f in flags(argv_of(compose, name)) if not mentions(locust_help, f)]
    assert unknown == []


def test_emulator_runs_a_subcommand_with_options_it_accepts(compose, emulator_help):
    argv = argv_of(compose, "emulator")
    assert argv[:2] == ["locust-hyperfaas", "emulator"]
    unknown = [f for f in flags(argv) if not mentions(emulator_help, f)]
    assert unknown == []


def test_emulator_listens_on_every_interface_of_its_container(compose):
    argv = argv_of(compose, "emulator")
    assert option(argv, "--host") == "0.0.0.0"
    assert option(argv, "--port") == "50050"


def test_master_targets_hyperfaas_leaf_or_else_the_emulator_service(compose):
    host = option(argv_of(compose, "master"), "--host")
    assert host == "${HYPERFAAS_LEAF:-emulator:50050}"

    emulator_port = option(argv_of(compose, "emulator"), "--port")
    assert host.removesuffix("}").endswith(f":-emulator:{emulator_port}")


def test_workers_find_the_master_by_its_service_name(compose):
    argv = argv_of(compose, "worker")
    assert "--worker" in argv
    assert option(argv, "--master-host") == "master"


def test_master_waits_for_the_emulator_and_workers_for_the_master(compose):
    assert "emulator" in service(compose, "master")["depends_on"]
    assert "master" in service(compose, "worker")["depends_on"]


def test_master_writes_results_to_the_bind_mounted_folder(compose):
    assert "./results:/app/results" in service(compose, "master")["volumes"]


def test_master_passes_workload_settings_on_from_the_shell(compose):
    names = service(compose, "master")["environment"]
    assert {"WORKLOAD_SEED", "TOTAL_TEST_DURATION"} <= set(names)

    # Bare names: a value reaches the container only when the shell sets one.
    assert all(re.fullmatch(r"[A-Z0-9_]+", name) for name in names)
    settings = {setting.env for setting in settings_table()}
    unknown = [n for n in names if n not in settings and not n.startswith("LOCUST_")]
    assert unknown == []


# ------------------------------------------------------------- docker-compose


def test_docker_compose_accepts_and_renders_the_file():
    rendered = docker_compose("config")
    assert rendered.returncode == 0, rendered.stderr
    assert "emulator:50050" in rendered.stdout

    services = docker_compose("config", "--services")
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == set(SERVICES)


def test_hyperfaas_leaf_points_the_rendered_master_at_a_real_leaf():
    rendered = docker_compose("config", HYPERFAAS_LEAF=REAL_LEAF)
    assert rendered.returncode == 0, rendered.stderr
    assert REAL_LEAF in rendered.stdout
    assert "emulator:50050" not in rendered.stdout


# ------------------------------------------------------------------ Dockerfile


def test_dockerfile_starts_from_python_3_11_slim():
    assert arguments_of("FROM") == ["python:3.11-slim"]


def test_dockerfile_installs_the_package_with_pip_from_the_build_context():
    copied = " ".join(arguments_of("COPY"))
    assert "pyproject.toml" in copied
    assert "locust_hyperfaas" in copied
    installs = [args for args in arguments_of("RUN") if "pip install" in args]
    assert any(re.search(r"pip install \.(\s|$)", args) for args in installs)
    assert not any("[test]" in args for args in installs)


def test_dockerfile_copies_the_locustfiles_into_the_working_directory():
    assert arguments_of("WORKDIR")[-1] == "/app"
    assert any(
        args.endswith("locustfiles ./locustfiles") for args in arguments_of("COPY")
    )


def test_dockerfile_exposes_the_web_ui_master_and_emulator_ports():
    exposed = " ".join(arguments_of("EXPOSE")).split()
    assert {"8089", "5557", "50050"} <= set(exposed)


def test_image_runs_locust_as_a_non_root_user():
    assert arguments_of("USER")[-1] not in ("", "root", "0")
    assert arguments_of("ENTRYPOINT") == ['["locust"]']


def test_dockerignore_lets_in_everything_the_dockerfile_copies():
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.startswith("!")
    }
    for args in arguments_of("COPY"):
        sources = [part for part in args.split() if not part.startswith("--")][:-1]
        assert set(sources) <= allowed, args


# ------------------------------------------------------- the wiring, run locally


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**overrides: str) -> dict[str, str]:
    """This environment without workload settings or Locust options."""
    settings = {setting.env for setting in settings_table()}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in settings and not key.startswith("LOCUST_")
    }
    env.update(PYTHONUNBUFFERED="1", **overrides)
    return env


def log_tail(path: Path, lines: int = 25) -> str:
    """The last lines of a Locust log, without its statistics tables."""
    table = re.compile(r"^(Type |-{8}|\s+Aggregated|\s*$)")
    text = path.read_text(errors="replace").splitlines()
    return "\n".join([line for line in text if not table.match(line)][-lines:])


def local(argv: list[str]) -> list[str]:
    """``argv`` with its executable taken from this virtual environment."""
    return [str(BIN / argv[0]), *argv[1:]]


@pytest.fixture
def emulator_address(compose, tmp_path: Path) -> Iterator[str]:
    """The emulator service's command, on a free port of 127.0.0.1."""
    argv = replace_option(argv_of(compose, "emulator"), "--host", "127.0.0.1")
    argv = replace_option(argv, "--port", "0")
    with open(tmp_path / "emulator.log", "wb") as log:
        process = subprocess.Popen(
            local(argv), stdout=subprocess.PIPE, stderr=log, env=clean_env()
        )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline().decode() if ready else ""
        listening = LISTENING_LINE.search(line)
        assert listening, f"the emulator did not start: {line!r}"
        yield listening[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.slow
def test_compose_commands_run_a_distributed_test_as_local_processes(
    compose, emulator_address, tmp_path
):
    results = tmp_path / "results"
    port = str(free_port())
    master_argv = replace_option(argv_of(compose, "master"), "--host", emulator_address)
    master_argv += ["--headless", "--expect-workers", "1", "--master-bind-port", port]
    master_argv += ["--master-bind-host", "127.0.0.1"]
    worker_argv = argv_of(compose, "worker")
    worker_argv = replace_option(worker_argv, "--master-host", "127.0.0.1")
    worker_argv += ["--master-port", port]
    env = clean_env(
        WORKLOAD_SEED="1",
        TOTAL_TEST_DURATION="3s",
        HYPERFAAS_RESULTS_DIR=str(results),
    )

    logs = {name: tmp_path / f"{name}.log" for name in LOCUST_SERVICES}
    processes = {}
    for name, argv in (("master", master_argv), ("worker", worker_argv)):
        with open(logs[name], "wb") as log:
            processes[name] = subprocess.Popen(
                local(argv), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    deadline = time.monotonic() + RUN_TIMEOUT_SEC
    try:
        for process in processes.values():
            process.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    exits = {name: process.returncode for name, process in processes.items()}
    assert exits == {"master": 0, "worker": 0}, "\n".join(
        f"--- {name}:\n{log_tail(logs[name])}" for name in LOCUST_SERVICES
    )
    with open(results / "requests.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) > 0
