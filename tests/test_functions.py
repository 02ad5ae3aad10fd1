"""Payload factories, response checks, and adding a function from outside."""

from __future__ import annotations

import base64
import io
import json
import random
import textwrap

import pytest
from conftest import run_locust
from PIL import Image

from locust_hyperfaas.emulator.workloads import bfs as run_bfs
from locust_hyperfaas.emulator.workloads import thumbnailer as run_thumbnailer
from locust_hyperfaas.functions import Payload, registry

SPECS = registry()


def test_the_three_functions_have_the_documented_images_and_resources():
    table = {
        name: (s.env_prefix, s.image_tag, s.memory_mib, s.cpu_period, s.cpu_quota)
        for name, s in SPECS.items()
    }
    assert table == {
        "echo": ("ECHO", "hyperfaas-echo:latest", 128, 100000, 25000),
        "bfs": ("BFS", "hyperfaas-bfs-json:latest", 256, 100000, 50000),
        "thumbnailer": (
            "THUMBNAILER",
            "hyperfaas-thumbnailer-json:latest",
            512,
            100000,
            50000,
        ),
    }


def test_echo_payloads_are_512_to_2048_random_bytes():
    rng = random.Random(1)
    payloads = [SPECS["echo"].make_payload(rng).data for _ in range(500)]

    sizes = [len(p) for p in payloads]
    assert min(sizes) >= 512 and max(sizes) <= 2048
    assert max(sizes) - min(sizes) > 1200
    assert len(set(payloads)) == 500


def test_bfs_payloads_ask_for_100_nodes_and_carry_a_seed_half_the_time():
    rng = random.Random(2)
    requests = [json.loads(SPECS["bfs"].make_payload(rng).data) for _ in range(1000)]

    assert {r["Size"] for r in requests} == {100}
    seeded = sum("Seed" in r for r in requests)
    assert 430 < seeded < 570
    assert all(set(r) <= {"Size", "Seed"} for r in requests)


def test_thumbnailer_payloads_carry_a_local_jpeg_and_sides_of_50_to_200():
    rng = random.Random(3)
    requests = [
        json.loads(SPECS["thumbnailer"].make_payload(rng).data) for _ in range(300)
    ]

    sides = [r["width"] for r in requests] + [r["height"] for r in requests]
    assert min(sides) >= 50 and max(sides) <= 200 and len(set(sides)) > 100
    with Image.open(io.BytesIO(base64.b64decode(requests[0]["image"]))) as image:
        assert image.format == "JPEG" and image.size == (640, 480)


@pytest.mark.parametrize("name", ["echo", "bfs", "thumbnailer"])
def test_a_correct_answer_passes_the_check_and_a_wrong_one_fails(name):
    spec = SPECS[name]
    payload = spec.make_payload(random.Random(4))
    answer = {"echo": lambda d: d, "bfs": run_bfs, "thumbnailer": run_thumbnailer}[
        name
    ](payload.data)

    assert spec.check_response(payload, answer) is None
    assert spec.check_response(payload, b"invalid input")


def test_a_thumbnail_of_the_wrong_size_fails_the_check():
    spec = SPECS["thumbnailer"]
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, format="JPEG")

    problem = spec.check_response(Payload(b"", expected=(60, 70)), buffer.getvalue())
    assert problem == "thumbnailer returned 10x10, asked 60x70"


SLEEP_MODULE = textwrap.dedent(
    """
    from locust_hyperfaas.functions import FunctionSpec, Payload

    def make_payload(rng):
        return Payload(b"zz" * rng.randint(1, 5))

    def check_response(payload, response):
        return None if response == payload.data else "mismatch"

    SPEC = FunctionSpec(
        name="sleep", env_prefix="SLEEP", image_tag="hyperfaas-sleep:latest",
        memory_mib=64, cpu_period=100000, cpu_quota=10000,
        make_payload=make_payload, check_response=check_response,
    )
    """
)

SLEEP_LOCUSTFILE = textwrap.dedent(
    """
    from locust_hyperfaas import EchoUser, SeededWorkloadShape, user_class_for

    SleepUser = user_class_for("sleep")
    """
)


def test_a_function_added_by_an_entry_point_gets_settings_users_and_rows(
    tmp_path, emulator
):
    site = tmp_path / "site"
    (site / "sleepfn").mkdir(parents=True)
    (site / "sleepfn" / "__init__.py").write_text(SLEEP_MODULE)
    dist = site / "sleepfn-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: sleepfn\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[locust_hyperfaas.functions]\nsleep = sleepfn:SPEC\n"
    )
    locustfile = tmp_path / "sleep_mix.py"
    locustfile.write_text(SLEEP_LOCUSTFILE)

    run = run_locust(
        tmp_path,
        locustfile,
        args=("--headless", "--host", emulator.address),
        PYTHONPATH=str(site),
        TOTAL_TEST_DURATION="3s",
        SLEEP_MIN_SCENARIOS="1",
        SLEEP_MAX_SCENARIOS="1",
        SLEEP_CONSTANT_SCENARIOS_RATIO="1",
        SLEEP_CONSTANT_RATE_MIN="10",
        SLEEP_CONSTANT_RATE_MAX="10",
        SLEEP_IMAGE_TAG="registry.local/sleep:v2",
        ECHO_MAX_SCENARIOS="0",
    )
    emulator.stop()

    assert run.returncode == 0, run.output
    rows = run.rows()
    assert {row["function"] for row in rows} == {"sleep"}
    assert {row["image_tag"] for row in rows} == {"registry.local/sleep:v2"}
    assert 28 <= len(rows) <= 32 and all(
        row["status"] == "OK" and not row["error"] for row in rows
    )
    (created,) = emulator.stats()["functions"]
    assert (created["image_tag"], created["memory"], created["cpu_quota"]) == (
        "registry.local/sleep:v2",
        64 * 1024 * 1024,
        10000,
    )
