"""The leaf emulator: its gRPC behaviour, workloads, faults, stats and command line."""

from __future__ import annotations

import base64
import datetime
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from PIL import Image

from locust_hyperfaas.emulator import (
    EmulatorOptions,
    EmulatorProcess,
    EmulatorState,
    serve,
    shutdown,
    workloads,
)
from locust_hyperfaas.emulator.__main__ import main
from locust_hyperfaas.emulator.server import format_timestamp
from locust_hyperfaas.exceptions import ConfigError
from locust_hyperfaas.proto import common_pb2, leaf_pb2, leaf_pb2_grpc

ECHO_TAG = "hyperfaas-echo:latest"
BFS_TAG = "hyperfaas-bfs-json:latest"
THUMBNAILER_TAG = "hyperfaas-thumbnailer-json:latest"
INSTANCE_ID = re.compile(r"^[0-9a-f]{12}$")
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.(\d{9})Z$")
LISTENING_LINE = re.compile(
    r"^HyperFaaS leaf emulator listening on 127\.0\.0\.1:(\d+)$"
)


class Leaf:
    """A client of an in-process emulator, with its state."""

    def __init__(
        self, stub: leaf_pb2_grpc.LeafStub, state: EmulatorState | None = None
    ) -> None:
        self.stub = stub
        self.state = state

    def create(self, image_tag: str = ECHO_TAG, memory: int = 128 << 20) -> str:
        config = common_pb2.Config(
            memory=memory, cpu=common_pb2.CPUConfig(period=100_000, quota=50_000)
        )
        request = leaf_pb2.CreateFunctionRequest(
            image_tag=common_pb2.ImageTag(tag=image_tag), config=config
        )
        return self.stub.CreateFunction(request, timeout=5).functionID.id

    def call(
        self, function_id: str, data: bytes = b"hello"
    ) -> tuple[leaf_pb2.ScheduleCallResponse, dict[str, str]]:
        """Answer the response and the trailers of one call."""
        request = leaf_pb2.ScheduleCallRequest(
            functionID=common_pb2.FunctionID(id=function_id), data=data
        )
        response, call = self.stub.ScheduleCall.with_call(request, timeout=10)
        return response, dict(call.trailing_metadata())


@pytest.fixture
def start_leaf() -> Iterator[Callable[..., Leaf]]:
    """Start in-process emulators on a free port; stop them after the test."""
    running: list[tuple[grpc.Server, EmulatorState, grpc.Channel]] = []

    def start(**options: object) -> Leaf:
        options.setdefault("cold_start_ms", 20)
        server, port, state = serve(EmulatorOptions(port=0, **options))
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        running.append((server, state, channel))
        return Leaf(leaf_pb2_grpc.LeafStub(channel), state)

    yield start
    for server, state, channel in running:
        channel.close()
        shutdown(server, state, grace_s=1)


def unix_ns(value: str) -> int:
    """A trailer timestamp, RFC 3339 or Unix nanoseconds, as Unix nanoseconds."""
    match = RFC3339_NS.match(value)
    if not match:
        return int(value)
    seconds = datetime.datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    whole = int(seconds.replace(tzinfo=datetime.UTC).timestamp())
    return whole * 1_000_000_000 + int(match.group(1))


def image_b64(size: tuple[int, int] = (64, 48), fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


# Functions.


def test_create_function_returns_a_distinct_uuid4_for_every_function(start_leaf):
    leaf = start_leaf()

    ids = [leaf.create(tag) for tag in (ECHO_TAG, ECHO_TAG, BFS_TAG)]

    assert len(set(ids)) == 3
    assert all(uuid.UUID(function_id).version == 4 for function_id in ids)
    assert leaf.state.live_instances() == 0


def test_create_function_keeps_image_tag_and_config(start_leaf):
    leaf = start_leaf()

    function_id = leaf.create(BFS_TAG, memory=256 << 20)

    assert leaf.state.stats()["functions"] == [
        {
            "function_id": function_id,
            "image_tag": BFS_TAG,
            "workload": "bfs",
            "memory": 256 << 20,
            "cpu_period": 100_000,
            "cpu_quota": 50_000,
            "timeout": 0,
            "max_concurrency": 0,
        }
    ]


def test_unknown_image_tag_is_echoed_with_a_warning(start_leaf, caplog):
    leaf = start_leaf()

    with caplog.at_level("WARNING", logger="locust_hyperfaas.emulator.server"):
        function_id = leaf.create("registry.example:5000/someone/resizer:v2")
    response, _ = leaf.call(function_id, b"\x00\x01payload")

    assert response.data == b"\x00\x01payload"
    assert "registry.example:5000/someone/resizer:v2" in caplog.text


@pytest.mark.parametrize(
    ("image_tag", "workload"),
    [
        ("hyperfaas-echo:latest", "echo"),
        ("hyperfaas-bfs-json:latest", "bfs"),
        ("hyperfaas-thumbnailer-json:latest", "thumbnailer"),
        ("ghcr.io/lab/hyperfaas/THUMBNAIL:1.0", "thumbnailer"),
        ("localhost:5000/bfs@sha256:abc", "bfs"),
        ("echo-registry:5000/hello:latest", "echo"),
        ("hyperfaas-hello:echo", None),
    ],
)
def test_image_tag_repository_chooses_the_workload(image_tag, workload):
    assert workloads.workload_for_tag(image_tag) == workload


# Instances.


def test_first_call_pays_the_cold_start_and_the_next_reuses_the_instance(
    start_leaf,
):
    leaf = start_leaf(cold_start_ms=200)
    function_id = leaf.create()

    started = time.perf_counter()
    _, first = leaf.call(function_id)
    cold_s = time.perf_counter() - started
    started = time.perf_counter()
    _, second = leaf.call(function_id)
    warm_s = time.perf_counter() - started

    assert cold_s >= 0.2
    assert warm_s < 0.1
    assert INSTANCE_ID.match(first["instanceid"])
    assert second["instanceid"] == first["instanceid"]
    assert leaf.state.stats()["instances_started"] == 1


def test_two_concurrent_calls_get_two_instances(start_leaf):
    leaf = start_leaf(cold_start_ms=150)
    function_id = leaf.create()

    with futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: leaf.call(function_id), range(2)))

    instance_ids = {trailers["instanceid"] for _, trailers in results}
    assert len(instance_ids) == 2
    assert leaf.state.live_instances(function_id) == 2


def test_idle_instance_is_stopped_after_the_idle_timeout(start_leaf):
    leaf = start_leaf(idle_timeout_s=0.2)
    function_id = leaf.create()

    _, first = leaf.call(function_id)
    assert leaf.state.live_instances(function_id) == 1
    time.sleep(0.4)
    assert leaf.state.live_instances(function_id) == 0
    _, second = leaf.call(function_id)

    assert second["instanceid"] != first["instanceid"]
    assert leaf.state.stats()["instances_started"] == 2


def test_unknown_function_id_is_not_found(start_leaf):
    leaf = start_leaf()

    with pytest.raises(grpc.RpcError) as error:
        leaf.call("no-such-function")

    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert error.value.details() == "function no-such-function not found"
    assert leaf.state.stats()["by_status"] == {"NOT_FOUND": 1}


# Workloads.


def test_echo_returns_the_bytes_it_was_sent(start_leaf):
    leaf = start_leaf()
    data = bytes(range(256)) * 8

    response, _ = leaf.call(leaf.create(ECHO_TAG), data)

    assert response.data == data
    assert not response.HasField("error")


def test_bfs_visits_every_node_from_node_0_and_repeats_for_a_seed(start_leaf):
    leaf = start_leaf()
    function_id = leaf.create(BFS_TAG)

    answers = [
        json.loads(leaf.call(function_id, json.dumps(request).encode())[0].data)
        for request in ({"Size": 100, "Seed": 7}, {"Size": 100, "Seed": 7})
    ]
    other_seed = json.loads(leaf.call(function_id, b'{"Size": 100, "Seed": 8}')[0].data)

    result = answers[0]["Result"]
    assert len(result) == 100
    assert result[0] == 0
    assert sorted(result) == list(range(100))
    assert answers[1]["Result"] == result
    assert other_seed["Result"] != result
    measurement = answers[0]["Measurement"]
    assert isinstance(measurement["GraphGeneratingTimeMicroseconds"], int)
    assert isinstance(measurement["ComputeTimeMicroseconds"], int)


def test_bfs_without_seed_still_answers_a_full_traversal(start_leaf):
    leaf = start_leaf()

    response, _ = leaf.call(leaf.create(BFS_TAG), b'{"Size": 30}')

    assert sorted(json.loads(response.data)["Result"]) == list(range(30))


def test_barabasi_albert_graph_has_ten_edges_per_new_node():
    graph = workloads.barabasi_albert_graph(50, random.Random(1))

    edges = sum(len(neighbours) for neighbours in graph) // 2
    assert edges == sum(range(11)) + 39 * 10
    assert all(len(set(n)) == len(n) and i not in n for i, n in enumerate(graph))


@pytest.mark.parametrize(
    ("source_format", "size"), [("PNG", (80, 50)), ("JPEG", (7, 300))]
)
def test_thumbnailer_returns_a_jpeg_of_the_asked_size(start_leaf, source_format, size):
    leaf = start_leaf()
    request = {
        "image": image_b64(fmt=source_format),
        "width": size[0],
        "height": size[1],
    }

    response, _ = leaf.call(leaf.create(THUMBNAILER_TAG), json.dumps(request).encode())

    with Image.open(io.BytesIO(response.data)) as thumbnail:
        assert thumbnail.format == "JPEG"
        assert thumbnail.size == size


@pytest.mark.parametrize(
    ("image_tag", "data"),
    [
        (BFS_TAG, b"not json"),
        (BFS_TAG, b'{"Size": "100"}'),
        (BFS_TAG, b'{"Size": -1}'),
        (BFS_TAG, b'{"Size": 10, "Seed": 1.5}'),
        (BFS_TAG, b"[1, 2]"),
        (THUMBNAILER_TAG, b"\xff\xfe"),
        (THUMBNAILER_TAG, b'{"image": "%%%", "width": 10, "height": 10}'),
        (THUMBNAILER_TAG, b'{"image": "aGVsbG8=", "width": 10, "height": 10}'),
        (THUMBNAILER_TAG, b'{"width": 10, "height": 10}'),
    ],
)
def test_undecodable_input_is_answered_with_invalid_input(start_leaf, image_tag, data):
    leaf = start_leaf()

    response, trailers = leaf.call(leaf.create(image_tag), data)

    assert response.data == b"invalid input"
    assert not response.HasField("error")
    assert INSTANCE_ID.match(trailers["instanceid"])


def test_thumbnailer_rejects_a_size_that_is_not_positive():
    request = {"image": image_b64(), "width": 0, "height": 10}

    assert workloads.thumbnailer(json.dumps(request).encode()) == b"invalid input"


def test_thumbnailer_answers_resize_failed_when_pillow_fails(monkeypatch):
    def broken_resize(self, size, *args, **kwargs):
        raise ValueError("cannot resize")

    monkeypatch.setattr(Image.Image, "resize", broken_resize)
    request = {"image": image_b64(), "width": 10, "height": 10}

    assert workloads.thumbnailer(json.dumps(request).encode()) == b"resize failed"


# Trailers.


@pytest.mark.parametrize("timestamp_format", ["rfc3339", "unix"])
def test_trailers_carry_timestamps_in_the_chosen_format(start_leaf, timestamp_format):
    leaf = start_leaf(timestamp_format=timestamp_format)
    function_id = leaf.create()

    before_ns = time.time_ns()
    _, trailers = leaf.call(function_id)
    after_ns = time.time_ns()

    queued, responded = (
        trailers["callqueuedtimestamp"],
        trailers["gotresponsetimestamp"],
    )
    if timestamp_format == "rfc3339":
        assert RFC3339_NS.match(queued) and RFC3339_NS.match(responded)
    else:
        assert queued.isdigit() and responded.isdigit()
    assert before_ns <= unix_ns(queued) <= unix_ns(responded) <= after_ns
    assert INSTANCE_ID.match(trailers["instanceid"])
    assert "functionprocessingtime" not in trailers


def test_later_trailers_add_processing_time_and_leaf_timestamps(start_leaf):
    leaf = start_leaf(later_trailers=True, cold_start_ms=50)

    _, trailers = leaf.call(leaf.create())

    got_request = int(trailers["leafgotrequesttimestamp"])
    scheduled = int(trailers["leafscheduledcalltimestamp"])
    queued = unix_ns(trailers["callqueuedtimestamp"])
    responded = unix_ns(trailers["gotresponsetimestamp"])
    assert got_request <= scheduled <= queued <= responded
    assert int(trailers["functionprocessingtime"]) == responded - queued
    assert int(trailers["functionprocessingtime"]) >= 50_000_000


def test_rfc3339_timestamps_keep_nanoseconds_in_utc():
    assert format_timestamp(1_748_282_808_123_456_789, "rfc3339") == (
        "2025-05-26T18:06:48.123456789Z"
    )
    assert format_timestamp(1_748_282_808_000_000_001, "unix") == "1748282808000000001"


# Faults.


def test_fail_rate_1_fails_every_call_with_unavailable(start_leaf):
    leaf = start_leaf(fail_rate=1.0)
    function_id = leaf.create()

    with pytest.raises(grpc.RpcError) as error:
        leaf.call(function_id)

    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error.value.details() == "injected failure"
    assert leaf.state.stats()["by_status"] == {"UNAVAILABLE": 1}


def test_error_rate_1_answers_ok_with_an_error_message_and_no_data(start_leaf):
    leaf = start_leaf(error_rate=1.0)

    response, trailers = leaf.call(leaf.create(), b"payload")

    assert response.error.message == "injected function error"
    assert response.data == b""
    assert INSTANCE_ID.match(trailers["instanceid"])
    assert leaf.state.stats()["served_ok"] == 1


def test_fault_draws_repeat_for_the_same_seed(start_leaf):
    outcomes = []
    for _ in range(2):
        leaf = start_leaf(fail_rate=0.3, error_rate=0.3, seed=42)
        function_id = leaf.create()
        run = []
        for _ in range(20):
            try:
                response, _ = leaf.call(function_id)
                run.append("error" if response.HasField("error") else "ok")
            except grpc.RpcError as error:
                run.append(error.code().name)
        outcomes.append(run)

    assert outcomes[0] == outcomes[1]
    assert {"ok", "error", "UNAVAILABLE"} == set(outcomes[0])


def test_extra_latency_slows_every_call(start_leaf):
    leaf = start_leaf(extra_latency_ms=150)
    function_id = leaf.create()
    leaf.call(function_id)

    started = time.perf_counter()
    leaf.call(function_id)

    assert time.perf_counter() - started >= 0.15


def test_calls_beyond_max_instances_are_resource_exhausted(start_leaf):
    leaf = start_leaf(max_instances=1, cold_start_ms=200)
    function_id = leaf.create()

    def outcome(_: int) -> str:
        try:
            leaf.call(function_id)
            return "OK"
        except grpc.RpcError as error:
            return f"{error.code().name}: {error.details()}"

    with futures.ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(outcome, range(2)))

    assert outcomes == ["OK", "RESOURCE_EXHAUSTED: no capacity"]
    assert leaf.state.live_instances(function_id) == 1


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("port", 70000),
        ("fail_rate", 1.5),
        ("error_rate", -0.1),
        ("timestamp_format", "iso"),
        ("max_workers", 0),
        ("cold_start_ms", -1),
    ],
)
def test_options_reject_values_out_of_range(setting, value):
    with pytest.raises(ConfigError) as error:
        EmulatorOptions(**{setting: value})

    assert error.value.setting == setting
    assert str(value) in str(error.value)


def test_error_rate_may_not_exceed_what_fail_rate_leaves():
    with pytest.raises(ConfigError, match="error_rate"):
        EmulatorOptions(fail_rate=0.6, error_rate=0.5)


# Counting and shutdown.


def test_stats_count_calls_by_function_and_status(start_leaf):
    leaf = start_leaf()
    echo_id, bfs_id = leaf.create(ECHO_TAG), leaf.create(BFS_TAG)

    for _ in range(3):
        leaf.call(echo_id)
    leaf.call(bfs_id, b'{"Size": 5}')
    with pytest.raises(grpc.RpcError):
        leaf.call("missing")

    stats = leaf.state.stats()
    assert stats["served"] == 5
    assert stats["served_ok"] == 4
    assert stats["received"] == 5
    assert stats["by_status"] == {"OK": 4, "NOT_FOUND": 1}
    assert stats["by_function"][echo_id] == {
        "image_tag": ECHO_TAG,
        "workload": "echo",
        "calls": 3,
        "ok": 3,
        "instances_started": 1,
    }
    assert stats["by_function"][bfs_id]["calls"] == 1
    assert stats["instances_started"] == 2


def test_stats_file_is_rewritten_while_calls_happen(start_leaf, tmp_path):
    stats_file = tmp_path / "stats.json"
    leaf = start_leaf(stats_file=str(stats_file))
    assert json.loads(stats_file.read_text())["served"] == 0

    leaf.call(leaf.create())

    deadline = time.monotonic() + 2
    while json.loads(stats_file.read_text())["served"] != 1:
        assert time.monotonic() < deadline, "stats file not rewritten within 2 s"
        time.sleep(0.05)
    assert json.loads(stats_file.read_text())["address"] == leaf.state.address


def test_shutdown_lets_a_call_in_flight_finish_and_counts_it(tmp_path):
    stats_file = tmp_path / "stats.json"
    options = EmulatorOptions(port=0, cold_start_ms=300, stats_file=str(stats_file))
    server, port, state = serve(options)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        leaf = Leaf(leaf_pb2_grpc.LeafStub(channel), state)
        function_id = leaf.create()
        with futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(leaf.call, function_id, b"last")
            time.sleep(0.1)
            shutdown(server, state, grace_s=2)
            response, _ = pending.result()

    assert response.data == b"last"
    assert json.loads(stats_file.read_text())["served"] == 1


def emulator_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "locust_hyperfaas.emulator", *args]


def test_command_prints_the_listening_line_and_exits_0_on_sigint(tmp_path):
    stats_file = tmp_path / "stats.json"
    process = subprocess.Popen(
        emulator_command("--port", "0", "--stats-file", str(stats_file)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = process.stdout.readline().rstrip("\n")
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    match = LISTENING_LINE.match(line)
    assert match and int(match.group(1)) > 0
    assert rest == ""
    assert process.returncode == 0
    assert json.loads(stats_file.read_text())["address"] == f"127.0.0.1:{match[1]}"


def test_emulator_process_stats_count_every_call_after_sigterm(tmp_path):
    stats_file = tmp_path / "stats.json"
    with EmulatorProcess.start(
        stats_file=stats_file, extra_args=("--cold-start-ms", "10")
    ) as emulator:
        with grpc.insecure_channel(emulator.address) as channel:
            leaf = Leaf(leaf_pb2_grpc.LeafStub(channel))
            function_id = leaf.create()
            for _ in range(7):
                leaf.call(function_id)
            with pytest.raises(grpc.RpcError):
                leaf.call("missing")
        assert emulator.address == f"127.0.0.1:{emulator.port}"
    stats = emulator.stats()

    assert emulator.returncode == 0
    assert stats["served"] == 8
    assert stats["by_status"] == {"OK": 7, "NOT_FOUND": 1}
    assert stats["by_function"][function_id]["calls"] == 7
    assert json.loads(stats_file.read_text()) == stats


def test_emulator_process_without_stats_file_keeps_its_final_stats():
    emulator = EmulatorProcess.start(extra_args=("--cold-start-ms", "0"))
    temporary_stats = Path(emulator.stats_file)
    with grpc.insecure_channel(emulator.address) as channel:
        leaf = Leaf(leaf_pb2_grpc.LeafStub(channel))
        leaf.call(leaf.create())

    assert emulator.stop() == 0
    assert emulator.stats()["served"] == 1
    assert not temporary_stats.exists()


def test_emulator_process_that_dies_raises_with_its_stderr():
    with pytest.raises(RuntimeError) as error:
        EmulatorProcess.start(extra_args=("--fail-rate", "2"))

    assert "exited with code 2" in str(error.value)
    assert "--fail-rate" in str(error.value)


@pytest.mark.parametrize(
    ("option", "value", "accepted"),
    [
        ("--port", "70000", "an integer from 0 to 65535"),
        ("--port", "http", "an integer"),
        ("--fail-rate", "1.5", "a fraction from 0 to 1"),
        ("--cold-start-ms", "slow", "a number"),
        ("--idle-timeout", "-3", "seconds >= 0"),
        ("--timestamp-format", "iso", "rfc3339 or unix"),
        ("--log-level", "loud", "DEBUG"),
    ],
)
def test_bad_option_value_exits_2_naming_option_value_and_accepted(
    capsys, option, value, accepted
):
    assert main([option, value], prog="locust-hyperfaas emulator") == 2

    err = capsys.readouterr().err
    assert f"argument {option}" in err
    assert value.upper() in err.upper()
    assert accepted in err
    assert "Traceback" not in err


def test_port_in_use_exits_1_with_a_message(capsys):
    server, port, state = serve(EmulatorOptions(port=0))
    try:
        code = main(["--port", str(port)], prog="emulator")
    finally:
        shutdown(server, state, grace_s=0)

    assert code == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_shutdown_ends_the_emulator_threads():
    def emulator_threads() -> set[threading.Thread]:
        names = ("leaf_", "emulator-housekeeper")
        return {t for t in threading.enumerate() if t.name.startswith(names)}

    before = emulator_threads()
    server, port, state = serve(EmulatorOptions(port=0, cold_start_ms=0))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        leaf = Leaf(leaf_pb2_grpc.LeafStub(channel), state)
        leaf.call(leaf.create())
    assert emulator_threads() - before

    shutdown(server, state, grace_s=0)
    deadline = time.monotonic() + 2
    while emulator_threads() - before and time.monotonic() < deadline:
        time.sleep(0.02)

    assert emulator_threads() - before == set()


def test_an_emulator_started_for_a_process_stops_when_that_process_dies(tmp_path):
    script = (
        "import time\n"
        "from locust_hyperfaas.emulator import EmulatorProcess\n"
        "e = EmulatorProcess.start()\n"
        "print(e.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = Path(f"/proc/{child}/status")
        try:
            state = status.read_text().split("State:")[1].split()[0]
        except (FileNotFoundError, IndexError):
            break
        if state == "Z":  # exited, waiting to be reaped by init
            break
        time.sleep(0.1)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the emulator outlived the process that started it")
