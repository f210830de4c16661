"""W3C trace context in and out (obskit.propagation), and the Request hooks built on it:
``continue_trace``, ``span_kind`` and ``rename``."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind

import obskit
from obskit import propagation
from obskit.exporters import InMemoryExporter

from .conftest import RecordingSink

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.mark.parametrize(
    "carrier",
    [
        {},
        {"traceparent": ""},
        {"traceparent": VALID.upper()},  # W3C hex is lower case
        {"traceparent": VALID.replace("-01", "-0x")},
        {"traceparent": f"00-{'0' * 32}-{SPAN_ID}-01"},
        {"traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"},
        {"traceparent": f"ff-{TRACE_ID}-{SPAN_ID}-01"},
        {"traceparent": VALID + "-extra"},  # version 00 has exactly four parts
        {"traceparent": VALID + " " * 300},  # oversized
        {"traceparent": VALID + "\x7f"},
        {"traceparent": VALID.replace("4bf9", "4bf\u00e9")},
        {"traceparent": None},
    ],
)
def test_extract_refuses_what_is_not_a_valid_traceparent(carrier: dict[str, object]) -> None:
    assert propagation.extract(carrier) is None  # type: ignore[arg-type]


def test_a_bad_tracestate_is_dropped_not_the_parent(memory: InMemoryExporter) -> None:
    req = obskit.request("job")
    assert req.continue_trace({"traceparent": VALID, "tracestate": "a=1\n" + "b" * 2000})
    with req:
        pass
    obskit.flush()
    [span] = memory.spans
    assert span.trace_id == TRACE_ID and span.parent_span_id == SPAN_ID


def test_inject_writes_the_active_span_and_keeps_a_caller_value(memory: InMemoryExporter) -> None:
    with obskit.request("producer") as req:
        headers: dict[str, str] = {}
        propagation.inject(headers)
        kept = {"traceparent": VALID}
        propagation.inject(kept)
    assert headers["traceparent"].split("-")[1] == req.trace_id
    assert kept == {"traceparent": VALID}
    empty: dict[str, str] = {}
    propagation.inject(empty)  # no active span: nothing to write
    assert empty == {}


def test_request_hooks_continue_kind_and_rename(memory: InMemoryExporter) -> None:
    sink = RecordingSink()
    obskit.metrics.add_sink(sink)
    try:
        req = obskit.request("GET")
        req.continue_trace({"traceparent": VALID})
        req.span_kind = SpanKind.SERVER
        with req:
            req.rename("GET /users/{user_id}")
    finally:
        obskit.metrics.remove_sink(sink)
    obskit.flush()
    [span] = memory.spans
    assert span.name == "GET /users/{user_id}" and span.span_kind == "server"
    assert span.trace_id == TRACE_ID and req.trace_id == TRACE_ID
    assert {labels["name"] for _, _, _, labels in sink.points} == {"GET /users/{user_id}"}
