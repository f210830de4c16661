"""obskit's own tracer: OpenTelemetry API spans that behave as the SDK's where it shows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace import TraceFlags as Flags

import obskit
from obskit import _spans, diagnostics, propagation, tracing
from obskit.exporters import InMemoryExporter


@pytest.fixture
def memory() -> Any:
    exporter = InMemoryExporter()
    obskit.init(service="spans", exporters=[exporter], install_hooks=False)
    yield exporter
    obskit.shutdown()


def _record(memory: InMemoryExporter, name: str) -> Any:
    obskit.flush()
    return next(s for s in memory.spans if s.name == name)


def test_obskit_owns_tracing_with_its_own_tracer_when_the_app_set_up_no_sdk(memory) -> None:
    assert isinstance(tracing.get_tracer(), _spans.Tracer)
    span = tracing.get_tracer().start_span("job", kind=SpanKind.CONSUMER, attributes={"n": 1})
    assert isinstance(span, trace.Span) and span.is_recording()
    span.end()
    assert not span.is_recording()
    record = _record(memory, "job")
    assert record.span_kind == "consumer" and record.attributes == {"n": 1}
    assert record.scope == "obskit" and record.service == "spans"


def test_a_library_tracer_nests_under_the_request_and_names_its_scope(memory) -> None:
    tracer = trace.get_tracer("payments")
    with obskit.request("POST /pay") as request, tracer.start_as_current_span("charge") as span:
        span.set_attribute("amount", 12)
        assert trace.get_current_span() is span
    charge = _record(memory, "charge")
    root = _record(memory, "POST /pay")
    assert charge.scope == "payments" and charge.parent_span_id == root.span_id
    assert charge.trace_id == root.trace_id == request.trace_id


def test_start_as_current_span_also_decorates_functions_and_coroutines(memory) -> None:
    tracer = trace.get_tracer("jobs")

    @tracer.start_as_current_span("sync job")
    def job() -> str:
        return trace.get_current_span().get_span_context().trace_id and "ran"

    @tracer.start_as_current_span("async job")
    async def ajob() -> bool:
        return trace.get_current_span().is_recording()

    assert job() == "ran"
    assert asyncio.run(ajob()) is True
    obskit.flush()
    assert {"sync job", "async job"} <= {s.name for s in memory.spans}


def test_an_exception_escaping_a_span_is_recorded_with_the_error_status(memory) -> None:
    with pytest.raises(ValueError), tracing.get_tracer().start_span("work"):
        raise ValueError("bad input")
    record = _record(memory, "work")
    assert record.status == "error" and record.status_message == "ValueError: bad input"
    (event,) = record.events
    assert event["name"] == "exception"
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.message"] == "bad input"
    assert event["attributes"]["exception.escaped"] == "True"
    assert "raise ValueError" in event["attributes"]["exception.stacktrace"]


def test_record_exception_names_a_non_builtin_type_with_its_module(memory) -> None:
    span = tracing.get_tracer().start_span("io")
    span.record_exception(asyncio.TimeoutError())
    span.record_exception(obskit.ConfigError("x"), attributes={"retry": 2})
    span.end()
    events = _record(memory, "io").events
    assert events[0]["attributes"]["exception.type"] == "TimeoutError"
    assert events[1]["attributes"]["exception.type"] == "obskit.diagnostics.ConfigError"
    assert events[1]["attributes"]["retry"] == 2


def test_status_follows_the_sdk_rules_ok_is_final_unset_is_ignored(memory) -> None:
    span = tracing.get_tracer().start_span("s")
    span.set_status(StatusCode.UNSET)
    assert span.status.status_code is StatusCode.UNSET  # type: ignore[attr-defined]
    span.set_status(StatusCode.ERROR, "first")
    span.set_status(Status(StatusCode.UNSET))
    assert span.status.description == "first"  # type: ignore[attr-defined]
    span.set_status(Status(StatusCode.OK))
    span.set_status(StatusCode.ERROR, "too late")
    span.end()
    assert _record(memory, "s").status == "ok"


def test_an_ended_span_changes_no_more(memory) -> None:
    span = tracing.get_tracer().start_span("done")
    span.end()
    span.set_attribute("late", 1)
    span.update_name("renamed")
    span.add_event("late event")
    span.end()  # twice: one record
    obskit.flush()
    records = [s for s in memory.spans if s.name in ("done", "renamed")]
    assert len(records) == 1 and records[0].name == "done"
    assert records[0].attributes == {} and records[0].events == []


def test_attributes_and_events_stop_at_the_sdk_default_limits(memory) -> None:
    diagnostics.reset()
    span = tracing.get_tracer().start_span("big")
    span.set_attributes({f"k{i}": i for i in range(200)})
    span.set_attribute("k0", "replaced")  # an existing key is still replaced at the limit
    for i in range(200):
        span.add_event(f"e{i}")
    span.end()
    record = _record(memory, "big")
    # full, the oldest attribute goes (as the SDK's BoundedAttributes does): k0..k72
    assert len(record.attributes) == _spans.MAX_ATTRIBUTES == 128
    assert list(record.attributes)[:2] == ["k73", "k74"] and "k72" not in record.attributes
    assert list(record.attributes)[-1] == "k0" and record.attributes["k0"] == "replaced"
    assert len(record.events) == _spans.MAX_EVENTS == 128  # full, the newest events are dropped
    assert record.events[-1]["name"] == "e127"
    counts = diagnostics.problem_counts()
    assert counts["span_attribute_limit"] == 73 and counts["span_event_limit"] == 72


def test_roots_are_sampled_at_the_rate_and_children_follow_their_parent() -> None:
    memory = InMemoryExporter()
    obskit.init(service="s", exporters=[memory], traces_sample_rate=0.0, install_hooks=False)
    try:
        root = tracing.get_tracer().start_span("root")
        assert isinstance(root, NonRecordingSpan) and not root.is_recording()
        assert root.get_span_context().is_valid and not root.get_span_context().trace_flags.sampled
        sampled_parent = propagation.extract({"traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01"})
        child = tracing.get_tracer().start_span("child", context=sampled_parent)
        assert child.is_recording()
        assert child.get_span_context().trace_id == int("ab" * 16, 16)
        child.end()
        obskit.flush()
        assert [s.name for s in memory.spans] == ["child"]
        assert memory.spans[0].parent_span_id == "cd" * 8
    finally:
        obskit.shutdown()


def test_a_ratio_samples_about_that_share_of_roots_by_trace_id() -> None:
    tracer = _spans.Tracer("t", 0.25, None, lambda span: None, lambda span: None)
    sampled = sum(tracer.start_span("r").is_recording() for _ in range(4000))
    assert 800 < sampled < 1200  # 1000 expected; 6 standard deviations either side


def test_the_sampling_decision_is_the_sdk_ratio_samplers_for_the_same_trace_id() -> None:
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    for rate in (0.0, 0.1, 0.5, 0.999, 1.0):
        tracer = _spans.Tracer("t", rate, None, lambda span: None, lambda span: None)
        sdk = TraceIdRatioBased(rate)
        for _ in range(300):
            span = tracer.start_span("r")
            trace_id = span.get_span_context().trace_id
            expected = sdk.should_sample(None, trace_id, "r").decision.is_sampled()
            assert span.is_recording() is expected


_values = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.one_of(st.none(), st.integers(), st.text(max_size=3), st.booleans()), max_size=4),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.binary(max_size=3),
    st.builds(object),
)


@given(st.dictionaries(st.text(max_size=4), _values, max_size=6))
def test_attribute_values_are_kept_or_dropped_as_the_sdk_keeps_or_drops_them(
    attributes: dict[str, Any],
) -> None:
    sdk_memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(sdk_memory))
    sdk_span = provider.get_tracer("sdk").start_span("s")
    ours = _spans.Tracer("t", 1.0, None, lambda span: None, lambda span: None).start_span("s")
    for key, value in attributes.items():
        sdk_span.set_attribute(key, value)
        ours.set_attribute(key, value)
    sdk_span.end()
    expected = dict(sdk_memory.get_finished_spans()[0].attributes or {})
    assert dict(ours.attributes) == expected  # type: ignore[attr-defined]
    assert list(ours.attributes) == list(expected)  # type: ignore[attr-defined]


def test_a_span_continued_from_a_remote_parent_keeps_its_trace_state(memory) -> None:
    carrier = {
        "traceparent": f"00-{'ab' * 16}-{'cd' * 8}-01",
        "tracestate": "vendor=value",
    }
    parent = propagation.extract(carrier)
    span = tracing.get_tracer().start_span("continued", context=parent)
    state = span.get_span_context().trace_state
    assert state.get("vendor") == "value"
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        assert tracing.trace_ids()[0] == "ab" * 16
    finally:
        otel_context.detach(token)
        span.end()


def test_a_non_recording_parent_is_followed_unsampled(memory) -> None:
    unsampled = SpanContext(int("12" * 16, 16), int("34" * 8, 16), True, Flags(Flags.DEFAULT))
    context = trace.set_span_in_context(NonRecordingSpan(unsampled))
    span = tracing.get_tracer().start_span("child", context=context)
    assert not span.is_recording()
    assert span.get_span_context().trace_id == unsampled.trace_id


def test_a_span_ended_from_many_threads_at_once_makes_one_record(memory) -> None:
    import threading

    spans = [tracing.get_tracer().start_span(f"raced {n}") for n in range(200)]
    start = threading.Barrier(4)

    def end_all() -> None:
        start.wait()
        for span in spans:
            span.end()
            span.set_attribute("after", 1)  # ignored, never raises

    threads = [threading.Thread(target=end_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    obskit.flush()
    names = [s.name for s in memory.spans if s.name.startswith("raced")]
    assert sorted(names) == sorted(f"raced {n}" for n in range(200))


def test_owning_tracing_never_imports_the_sdks_tracer() -> None:
    import subprocess
    import sys

    code = (
        "import sys, obskit\n"
        "obskit.init(exporters=[], install_hooks=False)\n"
        "with obskit.request('job'):\n"
        "    pass\n"
        "obskit.shutdown()\n"
        "print('opentelemetry.sdk.trace' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
