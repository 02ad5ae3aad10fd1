"""The gRPC client for a HyperFaaS leaf, safe under gevent.

One channel per process, opened on first use (so after any fork) and reused
for every call. gRPC errors are turned into values here and nowhere else: a
call never raises, it returns a ``CallResult`` whose ``status`` is the gRPC
status code name.
"""

from __future__ import annotations

import calendar
import logging
import os
import re
import time
from dataclasses import dataclass, field

import grpc

from .exceptions import ConfigError, SetupError
from .proto import common_pb2, leaf_pb2, leaf_pb2_grpc

logger = logging.getLogger(__name__)

_gevent_ready = False


def init_gevent() -> None:
    """Make gRPC cooperate with gevent; call before any channel is created."""
    global _gevent_ready
    if not _gevent_ready:
        from grpc.experimental import gevent as grpc_gevent

        grpc_gevent.init_gevent()
        _gevent_ready = True


# --- addresses ----------------------------------------------------------------

_ADDRESS = re.compile(
    r"^(?:grpc://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s]+):(?P<port>\d{1,5})/?$"
)


def parse_address(value: str, setting: str = "--host") -> str:
    """Normalise a leaf address to ``host:port``; ConfigError if it has no port."""
    match = _ADDRESS.match(value.strip())
    if not match or not 0 < int(match["port"]) < 65536:
        raise ConfigError(
            setting, value, "HOST:PORT, e.g. 127.0.0.1:50050 (grpc:// may prefix it)"
        )
    return f"{match['host']}:{int(match['port'])}"


# --- trailers -----------------------------------------------------------------

_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:[Zz]|([+-])(\d{2}):?(\d{2}))$"
)


def parse_timestamp_ns(value: str | bytes | None) -> int | None:
    """Unix ns from an RFC 3339 time (any precision) or a decimal Unix-ns string.

    Returns None for a missing or malformed value; never raises.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    match = _RFC3339.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if not (
        1 <= month <= 12
        and 1 <= day <= 31
        and hour < 24
        and minute < 60
        and second < 61
    ):
        return None
    fraction = (match.group(7) or "").ljust(9, "0")
    if match.group(8):
        offset = int(match.group(9)) * 3600 + int(match.group(10)) * 60
        seconds -= offset if match.group(8) == "+" else -offset
    return seconds * 1_000_000_000 + int(fraction)


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() else None


@dataclass(slots=True)
class Trailers:
    """The timing trailers of one call; None (or "") where missing or malformed."""

    instance_id: str = ""
    call_queued_ns: int | None = None
    got_response_ns: int | None = None
    function_processing_ns: int | None = None
    leaf_got_request_ns: int | None = None
    leaf_scheduled_call_ns: int | None = None
    malformed: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: object) -> Trailers:
        values: dict[str, str] = {}
        for item in metadata or ():
            try:
                key, value = item
            except (TypeError, ValueError):
                continue
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            values[str(key).lower()] = str(value)

        malformed = []

        def timestamp(key: str) -> int | None:
            parsed = parse_timestamp_ns(values.get(key))
            if parsed is None and key in values:
                malformed.append(key)
            return parsed

        def integer(key: str) -> int | None:
            parsed = _parse_int(values.get(key))
            if parsed is None and key in values:
                malformed.append(key)
            return parsed

        return cls(
            instance_id=values.get("instanceid", "").strip(),
            call_queued_ns=timestamp("callqueuedtimestamp"),
            got_response_ns=timestamp("gotresponsetimestamp"),
            function_processing_ns=integer("functionprocessingtime"),
            leaf_got_request_ns=timestamp("leafgotrequesttimestamp"),
            leaf_scheduled_call_ns=timestamp("leafscheduledcalltimestamp"),
            malformed=tuple(malformed),
        )


# --- calls --------------------------------------------------------------------


@dataclass(slots=True)
class CallResult:
    """What one ScheduleCall returned, as plain values."""

    status: str
    error: str
    data: bytes
    sent_ns: int
    latency_ms: float
    request_bytes: int
    trailers: Trailers = field(default_factory=Trailers)

    @property
    def ok(self) -> bool:
        """True when the call succeeded and the function reported no error."""
        return self.status == "OK" and not self.error

    @property
    def failure_message(self) -> str:
        """Stable text for Locust's failure grouping: status name and details."""
        if self.status != "OK":
            return f"{self.status}: {self.error}" if self.error else self.status
        return self.error


class LeafClient:
    """Calls one leaf; one gRPC channel per process, created on first use.

    Meant for gevent programs (Locust): the first use makes gRPC cooperate
    with gevent, which must happen after the standard library is patched.
    """

    def __init__(self, address: str, timeout_s: float = 60.0) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self._pid: int | None = None
        self._channel: grpc.Channel | None = None
        self._stub: leaf_pb2_grpc.LeafStub | None = None

    @property
    def stub(self) -> leaf_pb2_grpc.LeafStub:
        if self._stub is None or self._pid != os.getpid():
            init_gevent()
            self._channel = grpc.insecure_channel(self.address)
            self._stub = leaf_pb2_grpc.LeafStub(self._channel)
            self._pid = os.getpid()
        return self._stub

    def close(self) -> None:
        if self._channel is not None and self._pid == os.getpid():
            self._channel.close()
        self._channel = self._stub = self._pid = None

    def create_function(
        self, image_tag: str, memory_bytes: int, cpu_period: int, cpu_quota: int
    ) -> str:
        """Register a function with the leaf and return its id."""
        request = leaf_pb2.CreateFunctionRequest(
            image_tag=common_pb2.ImageTag(tag=image_tag),
            config=common_pb2.Config(
                memory=memory_bytes,
                cpu=common_pb2.CPUConfig(period=cpu_period, quota=cpu_quota),
            ),
        )
        try:
            response = self.stub.CreateFunction(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise SetupError(
                f"CreateFunction for {image_tag} at {self.address} failed: "
                f"{_code_name(exc)}: {_details(exc)}"
            ) from None
        if not response.functionID.id:
            raise SetupError(
                f"the leaf at {self.address} returned no function id for {image_tag}"
            )
        return response.functionID.id

    def schedule_call(self, function_id: str, data: bytes) -> CallResult:
        """Call a function once. Never raises for a gRPC failure.

        If the calling greenlet is killed while waiting, the call is cancelled
        and the kill goes on.
        """
        request = leaf_pb2.ScheduleCallRequest(
            functionID=common_pb2.FunctionID(id=function_id), data=data
        )
        sent_ns = time.time_ns()
        started = time.perf_counter_ns()
        future = self.stub.ScheduleCall.future(request, timeout=self.timeout_s)
        try:
            response = future.result()
        except grpc.RpcError as exc:
            latency_ms = (time.perf_counter_ns() - started) / 1e6
            return CallResult(
                status=_code_name(exc),
                error=_details(exc),
                data=b"",
                sent_ns=sent_ns,
                latency_ms=latency_ms,
                request_bytes=len(data),
                trailers=Trailers.from_metadata(_trailing(exc)),
            )
        except BaseException:
            future.cancel()
            raise
        latency_ms = (time.perf_counter_ns() - started) / 1e6
        error = ""
        if response.HasField("error"):
            error = f"function error: {response.error.message or '(no message)'}"
        return CallResult(
            status="OK",
            error=error,
            data=response.data,
            sent_ns=sent_ns,
            latency_ms=latency_ms,
            request_bytes=len(data),
            trailers=Trailers.from_metadata(future.trailing_metadata()),
        )


def _code_name(exc: grpc.RpcError) -> str:
    code = getattr(exc, "code", None)
    try:
        return code().name if callable(code) else "UNKNOWN"
    except Exception:
        return "UNKNOWN"


def _details(exc: grpc.RpcError) -> str:
    details = getattr(exc, "details", None)
    try:
        return (details() or "") if callable(details) else ""
    except Exception:
        return ""


def _trailing(exc: grpc.RpcError) -> object:
    trailing = getattr(exc, "trailing_metadata", None)
    try:
        return trailing() if callable(trailing) else None
    except Exception:
        return None
