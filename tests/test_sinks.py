from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest

from locust_hyperfaas.exceptions import SinkError
from locust_hyperfaas.recording.rows import CSV_COLUMNS, RequestRecord
from locust_hyperfaas.recording.sinks import CsvSink


def make_row(n: int, **changes: object) -> RequestRecord:
    values: dict[str, object] = dict(
        request_id=f"local-{n}",
        run_id="run-1",
        function="echo",
        function_id="fn-echo",
        image_tag="hyperfaas-echo:latest",
        scenario="echo-0",
        worker="local",
        status="OK",
        start_ns=1_760_000_000_000_000_000 + n,
        scheduled_ns=1_760_000_000_000_000_000 + n,
        sent_ns=1_760_000_000_000_000_000 + n,
        lateness_ms=0.000250,
        latency_ms=0.123456,
        request_bytes=11,
        response_bytes=11,
        instance_id="inst-1",
        call_queued_ns=1_760_000_000_000_100_000,
        got_response_ns=1_760_000_000_000_200_000,
        function_processing_ns=42_000,
        leaf_got_request_ns=1_760_000_000_000_050_000,
        leaf_scheduled_call_ns=1_760_000_000_000_060_000,
    )
    values.update(changes)
    return RequestRecord(**values)  # type: ignore[arg-type]


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_a_new_file_gets_the_header_then_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    with CsvSink(path) as sink:
        sink.write([make_row(1), make_row(2)])

    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == ",".join(CSV_COLUMNS)
    assert len(lines) == 3


def test_rows_round_trip_with_exact_values(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    failed = make_row(
        2,
        status="UNAVAILABLE",
        error="UNAVAILABLE: connection refused, retry",
        latency_ms=0.0005,
        lateness_ms=None,
        response_bytes=0,
        instance_id="",
        call_queued_ns=None,
        got_response_ns=None,
        function_processing_ns=None,
        leaf_got_request_ns=None,
        leaf_scheduled_call_ns=None,
    )
    with CsvSink(path) as sink:
        sink.write([make_row(1), failed])

    first, second = read_rows(path)
    assert first == {
        "request_id": "local-1",
        "run_id": "run-1",
        "function": "echo",
        "function_id": "fn-echo",
        "image_tag": "hyperfaas-echo:latest",
        "scenario": "echo-0",
        "worker": "local",
        "status": "OK",
        "error": "",
        "start_ns": "1760000000000000001",
        "scheduled_ns": "1760000000000000001",
        "sent_ns": "1760000000000000001",
        "lateness_ms": "0.000250",
        "latency_ms": "0.123456",
        "request_bytes": "11",
        "response_bytes": "11",
        "instance_id": "inst-1",
        "call_queued_ns": "1760000000000100000",
        "got_response_ns": "1760000000000200000",
        "function_processing_ns": "42000",
        "leaf_got_request_ns": "1760000000000050000",
        "leaf_scheduled_call_ns": "1760000000000060000",
    }
    assert second["status"] == "UNAVAILABLE"
    assert second["error"] == "UNAVAILABLE: connection refused, retry"
    assert second["latency_ms"] == "0.000500"
    assert float(second["latency_ms"]) == 0.0005
    assert second["lateness_ms"] == ""
    assert second["call_queued_ns"] == ""
    assert second["response_bytes"] == "0"


def test_small_and_large_latencies_never_use_exponent_notation(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    with CsvSink(path) as sink:
        sink.write([make_row(1, latency_ms=1e-6), make_row(2, latency_ms=1.5e7)])

    assert [row["latency_ms"] for row in read_rows(path)] == [
        "0.000001",
        "15000000.000000",
    ]


def test_appending_in_two_sinks_keeps_one_header(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    with CsvSink(path) as sink:
        sink.write([make_row(1)])
    with CsvSink(path) as sink:
        sink.write([make_row(2)])
        sink.write([make_row(3)])

    text = path.read_text(encoding="utf-8")
    assert text.count("request_id,run_id") == 1
    assert [row["request_id"] for row in read_rows(path)] == [
        "local-1",
        "local-2",
        "local-3",
    ]


def test_an_empty_existing_file_gets_the_header(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.touch()
    with CsvSink(path) as sink:
        sink.write([make_row(1)])

    assert [row["request_id"] for row in read_rows(path)] == ["local-1"]


def test_each_batch_is_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    sink = CsvSink(path)
    sink.write([make_row(1)])

    assert len(read_rows(path)) == 1
    sink.close()


def test_a_sink_made_on_one_thread_writes_from_another(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    sink = CsvSink(path)
    worker = threading.Thread(target=sink.write, args=([make_row(1), make_row(2)],))
    worker.start()
    worker.join()
    sink.close()

    assert len(read_rows(path)) == 2


def test_a_file_with_other_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text("timestamp,latency\n1,2\n", encoding="utf-8")

    with pytest.raises(SinkError, match="header does not match"):
        CsvSink(path)
    assert path.read_text(encoding="utf-8") == "timestamp,latency\n1,2\n"


def test_a_missing_folder_raises_sink_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "requests.csv"

    with pytest.raises(SinkError) as caught:
        CsvSink(path)
    assert str(path) in str(caught.value)
    assert "No such file or directory" in str(caught.value)


def test_writing_after_close_raises_sink_error(tmp_path: Path) -> None:
    sink = CsvSink(tmp_path / "requests.csv")
    sink.close()
    sink.close()

    with pytest.raises(SinkError, match="closed"):
        sink.write([make_row(1)])
