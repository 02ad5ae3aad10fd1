"""Trailer parsing, addresses, and the gevent gRPC client against a real emulator."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from locust_hyperfaas.client import Trailers, parse_address, parse_timestamp_ns
from locust_hyperfaas.emulator import EmulatorProcess
from locust_hyperfaas.exceptions import ConfigError

NS = 1748282808123456789  # 2025-05-26T18:06:48.123456789Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-05-26T18:06:48.123456789Z", NS),
        ("2025-05-26T18:06:48.123456789z", NS),
        ("2025-05-26T18:06:48.123456Z", NS - 789),
        ("2025-05-26T18:06:48Z", NS - 123456789),
        ("2025-05-26T20:06:48.123456789+02:00", NS),
        ("2025-05-26T17:06:48.123456789-01:00", NS),
        (str(NS), NS),
        (f" {NS} ", NS),
        (str(NS).encode(), NS),
        (b"2025-05-26T18:06:48.123456789Z", NS),
    ],
)
def test_both_timestamp_formats_parse_to_unix_nanoseconds(text, expected):
    assert parse_timestamp_ns(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "yesterday",
        "2025-13-26T18:06:48Z",
        "2025-05-26 18:06",
        "-5",
        "1.5e18",
        b"\xff\xfe",
        "2025-05-26T25:00:00Z",
    ],
)
def test_a_missing_or_malformed_timestamp_is_none(text):
    assert parse_timestamp_ns(text) is None


def test_trailers_are_read_whatever_the_key_case():
    trailers = Trailers.from_metadata(
        [
            ("callqueuedtimestamp", "2025-05-26T18:06:48.123456789Z"),
            ("GotResponseTimestamp", str(NS + 5_000_000)),
            ("instanceid", "a1b2c3d4e5f6"),
            ("functionprocessingtime", "4000000"),
            ("leafgotrequesttimestamp", str(NS - 1000)),
            ("leafscheduledcalltimestamp", str(NS - 500)),
        ]
    )

    assert trailers == Trailers(
        instance_id="a1b2c3d4e5f6",
        call_queued_ns=NS,
        got_response_ns=NS + 5_000_000,
        function_processing_ns=4_000_000,
        leaf_got_request_ns=NS - 1000,
        leaf_scheduled_call_ns=NS - 500,
    )


def test_missing_trailers_are_empty_and_malformed_ones_are_named():
    assert Trailers.from_metadata(None) == Trailers()
    trailers = Trailers.from_metadata(
        [("callqueuedtimestamp", "soon"), ("functionprocessingtime", "4ms"), ("x", "y")]
    )

    assert trailers.call_queued_ns is None and trailers.function_processing_ns is None
    assert trailers.malformed == ("callqueuedtimestamp", "functionprocessingtime")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:50050", "127.0.0.1:50050"),
        ("grpc://leaf:1", "leaf:1"),
        ("[::1]:50050", "[::1]:50050"),
    ],
)
def test_addresses_with_a_port_are_accepted(value, expected):
    assert parse_address(value) == expected


@pytest.mark.parametrize(
    "value", ["localhost", "http://leaf", "leaf:0", "leaf:99999", "leaf:port", ""]
)
def test_an_address_without_a_valid_port_names_the_setting(value):
    with pytest.raises(ConfigError, match=r"--host.*HOST:PORT"):
        parse_address(value)


CLIENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, sys
    from locust_hyperfaas.client import LeafClient

    address, timeout = sys.argv[1], float(sys.argv[2])
    client = LeafClient(address, 5.0)
    fid = client.create_function("hyperfaas-echo:latest", 128 << 20, 100000, 25000)
    client.timeout_s = timeout
    out = {"function_id": fid, "calls": []}
    for function_id in (fid, fid, "no-such-function"):
        r = client.schedule_call(function_id, b"hello")
        out["calls"].append({
            "status": r.status, "error": r.error, "data": r.data.decode(), "ok": r.ok,
            "message": r.failure_message, "latency_ms": r.latency_ms, "bytes": r.request_bytes,
            "instance": r.trailers.instance_id, "queued": r.trailers.call_queued_ns,
            "got": r.trailers.got_response_ns, "sent": r.sent_ns, "pid": client._pid,
        })
    print(json.dumps(out))
    """
)


def run_client(address: str, timeout: float = 5.0) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, address, str(timeout)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("timestamp_format", ["rfc3339", "unix"])
def test_calls_return_values_and_trailers_in_either_timestamp_format(
    tmp_path, timestamp_format
):
    with EmulatorProcess.start(
        extra_args=("--cold-start-ms", "100", "--timestamp-format", timestamp_format)
    ) as leaf:
        out = run_client(leaf.address)

    cold, warm, unknown = out["calls"]
    assert cold["ok"] and cold["data"] == "hello" and cold["bytes"] == 5
    assert cold["latency_ms"] >= 100 > warm["latency_ms"]
    assert cold["instance"] == warm["instance"] and len(cold["instance"]) == 12
    assert cold["sent"] <= cold["queued"] <= cold["got"]
    assert cold["got"] - cold["queued"] >= 100_000_000
    assert unknown["status"] == "NOT_FOUND" and not unknown["ok"]
    assert (
        unknown["message"] == f"NOT_FOUND: {unknown['error']}"
        and "no-such-function" in unknown["error"]
    )
    assert unknown["instance"] == "" and unknown["queued"] is None


def test_injected_failures_become_status_names_and_function_errors_fail_too(tmp_path):
    with EmulatorProcess.start(
        extra_args=("--cold-start-ms", "0", "--fail-rate", "1")
    ) as leaf:
        failed = run_client(leaf.address)["calls"][0]
    with EmulatorProcess.start(
        extra_args=("--cold-start-ms", "0", "--error-rate", "1")
    ) as leaf:
        errored = run_client(leaf.address)["calls"][0]

    assert (failed["status"], failed["message"]) == (
        "UNAVAILABLE",
        "UNAVAILABLE: injected failure",
    )
    assert errored["status"] == "OK" and not errored["ok"]
    assert (
        errored["message"]
        == errored["error"]
        == "function error: injected function error"
    )
    assert errored["instance"] != ""


def test_a_call_past_its_deadline_is_deadline_exceeded(tmp_path):
    with EmulatorProcess.start(
        extra_args=("--cold-start-ms", "0", "--extra-latency-ms", "400")
    ) as leaf:
        out = run_client(leaf.address, timeout=0.1)

    assert {call["status"] for call in out["calls"]} == {"DEADLINE_EXCEEDED"}
    assert all(90 <= call["latency_ms"] < 400 for call in out["calls"])
