"""The row recorded for every planned call, and its columns.

One ``RequestRecord`` is made for every call the load generator sent and for
every planned call it had to drop. The CSV sink writes ``CSV_COLUMNS`` in this
order; the SQLite sink stores the same values (see ``sqlite.py``).

Columns (empty when unknown):

=========================  ======  ============================================
column                     unit    meaning
=========================  ======  ============================================
request_id                 --      unique in the run (``<worker tag>-<n>``)
run_id                     --      the run this row belongs to
function                   --      benchmark function name (``echo``, ...)
function_id                --      id the leaf gave the function
image_tag                  --      image tag the function was created with
scenario                   --      plan scenario (``echo-0``), empty outside plans
worker                     --      Locust process that sent it (``local`` alone)
status                     --      gRPC status code name (``OK``, ``UNAVAILABLE``,
                                   ...), ``DROPPED`` when no VU was free at the
                                   planned instant, ``CANCELLED`` when the run
                                   was stopped while the call was in flight
error                      --      error text; for ``OK`` rows the message of the
                                   response's ``error`` field, if set
start_ns                   ns      Unix time the call left (planned instant for
                                   dropped calls)
scheduled_ns               ns      Unix time the plan gave this call
sent_ns                    ns      Unix time the call actually left
lateness_ms                ms      sent_ns - scheduled_ns
latency_ms                 ms      client-side round trip, sub-ms precision
request_bytes              bytes   payload sent (the ``data`` field)
response_bytes             bytes   payload received (the ``data`` field)
instance_id                --      ``instanceid`` trailer
call_queued_ns             ns      ``callqueuedtimestamp`` trailer, Unix time
got_response_ns            ns      ``gotresponsetimestamp`` trailer, Unix time
function_processing_ns     ns      ``functionprocessingtime`` trailer (duration)
leaf_got_request_ns        ns      ``leafgotrequesttimestamp`` trailer, Unix time
leaf_scheduled_call_ns     ns      ``leafscheduledcalltimestamp`` trailer, Unix time
=========================  ======  ============================================
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass
from typing import Any

STATUS_OK = "OK"
STATUS_DROPPED = "DROPPED"
STATUS_CANCELLED = "CANCELLED"


@dataclass(slots=True)
class RequestRecord:
    """One planned call: sent (with its outcome) or dropped."""

    request_id: str
    run_id: str
    function: str
    function_id: str
    image_tag: str
    scenario: str
    worker: str
    status: str
    error: str = ""
    start_ns: int | None = None
    scheduled_ns: int | None = None
    sent_ns: int | None = None
    lateness_ms: float | None = None
    latency_ms: float | None = None
    request_bytes: int = 0
    response_bytes: int = 0
    instance_id: str = ""
    call_queued_ns: int | None = None
    got_response_ns: int | None = None
    function_processing_ns: int | None = None
    leaf_got_request_ns: int | None = None
    leaf_scheduled_call_ns: int | None = None

    def as_tuple(self) -> tuple[Any, ...]:
        """Values in ``CSV_COLUMNS`` order (cheap to send between processes)."""
        return _field_values(self)

    @classmethod
    def from_tuple(cls, values: tuple[Any, ...] | list[Any]) -> RequestRecord:
        return cls(*values)


CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RequestRecord))

# dataclasses.astuple deep-copies every field: about 70 times slower for this row.
_field_values = operator.attrgetter(*CSV_COLUMNS)
