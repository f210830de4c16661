"""OTLPExporter against real loopback receivers (gRPC and HTTP/protobuf): what arrives, and how."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from otlp_receiver import Receiver, attributes_of, value_of

import obskit
from obskit import _runtime
from obskit.config import ConfigError
from obskit.exporters import OTLPExporter
from obskit.exporting import ExportResult
from obskit.signals import ErrorEvent, MetricPoint, Signal


def start(receiver: Receiver, **options: Any) -> OTLPExporter:
    exporter = OTLPExporter(receiver.endpoint, protocol=receiver.protocol, **options)
    obskit.init(
        service="shop",
        environment="staging",
        release="1.2.3",
        level="debug",
        exporters=[exporter],
        schedule_delay_s=0.05,
    )
    return exporter


class PaymentDeclined(Exception):
    pass


@obskit.instrument
def charge(amount: float) -> None:
    obskit.get_logger("shop.pay").warning("charging", amount=amount)
    raise PaymentDeclined(f"declined {amount}")


def test_log_records_arrive_with_body_attributes_severity_resource_and_trace_ids(
    receiver: Receiver,
) -> None:
    start(receiver)
    log = obskit.get_logger("shop.cart")
    with obskit.request("POST /checkout", method="POST") as req, obskit.context(user_id="u-9"):
        log.info("checkout started", cart_items=3, tags=["a", "b"], meta={"coupon": None})
    assert obskit.flush(timeout_s=10)
    assert receiver.received.wait_for(lambda r: len(r.logs) == 1)

    ((resource, scope, record),) = receiver.received.logs
    assert resource["service.name"] == "shop"
    assert resource["deployment.environment.name"] == "staging"
    assert resource["service.version"] == "1.2.3"
    assert scope == "shop.cart"
    assert value_of(record.body) == "checkout started"
    assert (record.severity_number, record.severity_text) == (9, "INFO")
    attributes = attributes_of(record)
    assert attributes["cart_items"] == 3 and attributes["tags"] == ["a", "b"]
    assert attributes["meta"] == {"coupon": None}
    assert attributes["user_id"] == "u-9"  # context fields
    assert attributes["request_id"] == req.request_id  # the request scope's context
    assert record.trace_id.hex() == req.trace_id
    assert record.time_unix_nano > 0


def test_spans_arrive_as_a_trace_with_parent_ids_status_and_an_exception_event(
    receiver: Receiver,
) -> None:
    start(receiver)
    with obskit.request("POST /checkout") as req, pytest.raises(PaymentDeclined):
        charge(19.99)
    assert obskit.flush(timeout_s=10)
    assert receiver.received.wait_for(lambda r: len(r.spans) == 2 and len(r.logs) >= 1)

    spans = {span.name: (resource, span) for resource, _, span in receiver.received.spans}
    resource, root = spans["POST /checkout"]
    _, child = spans["charge"]
    assert resource["service.name"] == "shop"
    assert root.trace_id.hex() == child.trace_id.hex() == req.trace_id
    assert child.parent_span_id == root.span_id and not root.parent_span_id
    assert child.status.code == 2  # STATUS_CODE_ERROR: the exception escaped charge()
    assert root.status.code == 0  # caught inside the request: the request did not fail
    assert child.end_time_unix_nano >= child.start_time_unix_nano
    assert attributes_of(child)["code.function.name"] == "charge"
    (event,) = [e for e in child.events if e.name == "exception"]
    assert attributes_of(event)["exception.type"].endswith("PaymentDeclined")
    assert attributes_of(event)["exception.message"] == "declined 19.99"

    (warning,) = [r for r in receiver.received.log_records() if r.severity_text == "WARNING"]
    assert warning.span_id == child.span_id and warning.trace_id == child.trace_id


def test_captured_exceptions_arrive_as_log_records_with_exception_attributes(
    receiver: Receiver,
) -> None:
    start(receiver)
    with obskit.request("GET /search") as req:
        try:
            {}["shard-3"]
        except KeyError:
            obskit.capture_exception()
    assert obskit.flush(timeout_s=10)
    assert receiver.received.wait_for(lambda r: len(r.logs) == 1 and len(r.spans) == 1)

    (record,) = receiver.received.log_records()
    attributes = attributes_of(record)
    assert (record.severity_number, record.severity_text) == (17, "ERROR")
    assert attributes["exception.type"] == "KeyError"
    assert attributes["exception.message"] == "'shard-3'"
    assert "Traceback" in attributes["exception.stacktrace"]
    assert record.trace_id.hex() == req.trace_id
    ((_, _, span),) = receiver.received.spans
    assert [e.name for e in span.events] == ["exception"]  # the capture marked the span


def test_error_events_carry_exception_semantics_and_the_fingerprint(receiver: Receiver) -> None:
    start(receiver)
    event = ErrorEvent(
        event_id="e-1",
        timestamp=time.time(),
        level="error",
        fingerprint="3fa2c1d9e0b4",
        title="KeyError: 'shard-3'",
        culprit="search.lookup",
        exceptions=[
            {
                "type": "KeyError",
                "value": "'shard-3'",
                "module": "builtins",
                "frames": [
                    {"filename": "search.py", "lineno": 12, "function": "lookup",
                     "context_line": "return shards[name]"},
                ],
            }
        ],
        context={"request_id": "r-1"},
        trace_id="ab" * 16,
        span_id="cd" * 8,
    )  # fmt: skip
    _runtime.emit(event)
    assert obskit.flush(timeout_s=10)
    assert receiver.received.wait_for(lambda r: len(r.logs) == 1)

    ((_, scope, record),) = receiver.received.logs
    attributes = attributes_of(record)
    assert scope == "obskit.error"
    assert value_of(record.body) == "KeyError: 'shard-3'"
    assert attributes["exception.type"] == "KeyError"
    assert attributes["exception.message"] == "'shard-3'"
    assert 'File "search.py", line 12, in lookup' in attributes["exception.stacktrace"]
    assert attributes["obskit.fingerprint"] == "3fa2c1d9e0b4"
    assert attributes["request_id"] == "r-1"
    assert (record.trace_id.hex(), record.span_id.hex()) == ("ab" * 16, "cd" * 8)


def test_metric_points_arrive_as_gauges_and_cumulative_sums(receiver: Receiver) -> None:
    start(receiver)
    now = time.time()
    for point in (
        MetricPoint(timestamp=now, name="queue.depth", value=7, labels={"queue": "mail"}),
        MetricPoint(timestamp=now, name="http.requests", value=42, metric_type="counter"),
        MetricPoint(timestamp=now, name="http.requests", value=43, metric_type="counter"),
    ):
        _runtime.emit(point)
    assert obskit.flush(timeout_s=10)
    assert receiver.received.wait_for(lambda r: len(r.metrics) >= 2)

    metrics = {m.name: (resource, m) for resource, _, m in receiver.received.metrics}
    resource, gauge = metrics["queue.depth"]
    assert resource["service.name"] == "shop"
    (point,) = gauge.gauge.data_points
    assert point.as_double == 7 and attributes_of(point) == {"queue": "mail"}
    _, counter = metrics["http.requests"]
    assert counter.sum.is_monotonic and counter.sum.aggregation_temporality == 2
    assert [p.as_double for p in counter.sum.data_points] == [42, 43]
    assert all(p.start_time_unix_nano <= p.time_unix_nano for p in counter.sum.data_points)


def test_health_alerts_and_anomalies_arrive_as_log_records_naming_their_kind(
    http_receiver: Receiver,
) -> None:
    from obskit.signals import Alert, HealthRecord

    start(http_receiver)
    _runtime.emit(HealthRecord(timestamp=time.time(), status="fail", checks={"db": {"s": 1}}))
    _runtime.emit(Alert(timestamp=time.time(), rule="errors", state="firing", severity="page"))
    assert obskit.flush(timeout_s=10)
    assert http_receiver.received.wait_for(lambda r: len(r.logs) == 2)
    records = {attributes_of(r)["obskit.signal"]: r for r in http_receiver.received.log_records()}
    assert value_of(records["alert"].body) == "alert errors firing"
    assert records["health"].severity_text == "ERROR"
    assert attributes_of(records["health"])["checks"] == {"db": {"s": 1}}


def test_the_standard_environment_variables_configure_it(
    http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr%3Dt,x-team=core")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
    monkeypatch.setenv("OBSKIT_EXPORTERS", "otlp")
    obskit.init(service="env-configured")
    (exporter,) = _runtime.current().pipeline.exporters
    assert exporter.destinations["logs"].timeout_s == 5.0
    obskit.get_logger("t").info("hello")
    assert obskit.flush(timeout_s=10)
    assert http_receiver.received.wait_for(lambda r: len(r.logs) == 1)
    headers = {k.lower(): v for k, v in http_receiver.received.headers[0].items()}
    assert headers["x-api-key"] == "s3cr=t" and headers["x-team"] == "core"
    assert headers["content-encoding"] == "gzip"
    assert http_receiver.received.logs[0][0]["service.name"] == "env-configured"


def test_a_bad_setting_is_a_config_error_at_construction() -> None:
    with pytest.raises(ConfigError, match="protocol"):
        OTLPExporter("http://localhost:4318", protocol="thrift")
    with pytest.raises(ConfigError, match="compression"):
        OTLPExporter("http://localhost:4318", compression="zstd")


def test_throttling_is_retried_after_the_delay_the_collector_asked_for(
    http_receiver: Receiver,
) -> None:
    http_receiver.script = [(429, {"Retry-After": "1"}), (503, {})]
    start(http_receiver)
    obskit.get_logger("t").info("once")
    started = time.monotonic()
    assert http_receiver.received.wait_for(lambda r: len(r.logs) == 1, timeout_s=15)
    assert time.monotonic() - started >= 0.9  # waited for Retry-After, not a 0.1 s backoff
    obskit.flush(timeout_s=30)
    time.sleep(0.2)
    assert len(http_receiver.received.logs) == 1  # delivered exactly once
    stats = obskit.pipeline_stats()
    assert stats["exporters"]["OTLPExporter"]["retried"] == 2
    assert {"otlp.logs.http_429", "otlp.logs.http_503"} <= set(stats["problems"])


def test_grpc_resource_exhausted_is_retried_only_with_a_retry_delay() -> None:
    import grpc
    from otlp_receiver import GrpcReceiver

    receiver = GrpcReceiver()
    receiver.start()
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED
    receiver.script = [exhausted, (exhausted, 0.8)]
    try:
        start(receiver)
        log = obskit.get_logger("t")
        log.info("refused")  # no RetryInfo: not retryable
        obskit.flush(timeout_s=30)
        log.info("throttled")  # retried after the server's 0.8 s RetryInfo delay
        started = time.monotonic()
        assert receiver.received.wait_for(lambda r: len(r.logs) == 1)
        assert time.monotonic() - started >= 0.7
        assert [value_of(r.body) for r in receiver.received.log_records()] == ["throttled"]
        assert obskit.flush(timeout_s=30)  # the exporter counts it once the answer is back
        stats = obskit.pipeline_stats()["exporters"]["OTLPExporter"]
        assert (stats["retried"], stats["failed"], stats["exported"]) == (1, 1, 1)
    finally:
        receiver.stop()


def test_a_permanent_refusal_drops_the_batch_counts_it_and_warns_once(
    http_receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    http_receiver.script = [(400, {}), (400, {})]
    start(http_receiver)
    log = obskit.get_logger("t")
    log.info("refused")
    obskit.flush(timeout_s=30)
    log.info("refused too")
    obskit.flush(timeout_s=30)
    log.info("accepted")
    obskit.flush(timeout_s=30)
    assert [value_of(r.body) for r in http_receiver.received.log_records()] == ["accepted"]
    stats = obskit.pipeline_stats()["exporters"]["OTLPExporter"]
    assert (stats["failed"], stats["retried"], stats["exported"]) == (2, 0, 1)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "HTTP 400" in line]
    assert len(warnings) == 1 and "batch dropped" in warnings[0]


def test_an_unreachable_collector_never_raises_or_blocks_the_app(
    receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    receiver.stop()  # nothing listens on the port any more
    exporter = OTLPExporter(receiver.endpoint, protocol=receiver.protocol, timeout_s=1)
    exporting_threads = set()
    export = exporter.export

    def watched(batch: Sequence[Signal]) -> ExportResult:
        exporting_threads.add(threading.get_ident())
        return export(batch)

    exporter.export = watched  # type: ignore[method-assign]
    obskit.init(exporters=[exporter], retry_max_elapsed_s=0.5)
    log = obskit.get_logger("t")
    for n in range(2000):
        log.info("into the void", n=n)
    obskit.flush(timeout_s=30)
    stats = obskit.pipeline_stats()
    assert stats["exporters"]["OTLPExporter"]["retried"] >= 1
    # the app's calls only enqueued: every attempt to reach the collector ran elsewhere
    assert exporting_threads and threading.get_ident() not in exporting_threads
    receiver.start()  # so the fixture can stop it again
    err = capfd.readouterr().err
    assert err.count("OTLPExporter (logs") == 1  # one clear warning, not one per batch


def test_a_hanging_collector_times_out_and_the_batch_is_retried(receiver: Receiver) -> None:
    receiver.delay_s = 1.5
    start(receiver, timeout_s=0.3)
    obskit.get_logger("t").info("slow")
    timed_out = {"otlp.logs.unreachable", "otlp.logs.DEADLINE_EXCEEDED"}
    deadline = time.monotonic() + 30
    while not timed_out & set(obskit.pipeline_stats()["problems"]):  # the first attempt
        assert time.monotonic() < deadline, obskit.pipeline_stats()
        time.sleep(0.01)
    receiver.delay_s = 0.0
    assert receiver.received.wait_for(lambda r: len(r.logs) >= 1, timeout_s=30)
    assert obskit.flush(timeout_s=30)  # the counts are final once the answers are back
    assert obskit.pipeline_stats()["exporters"]["OTLPExporter"]["retried"] >= 1


@pytest.mark.parametrize(
    ("grpc_code", "http_status", "retried"),
    [("UNAVAILABLE", 503, True), ("INVALID_ARGUMENT", 400, False)],
)
def test_a_collector_answering_an_error_is_retried_or_dropped_as_the_spec_says(
    receiver: Receiver, grpc_code: str, http_status: int, retried: bool
) -> None:
    import grpc

    answer = getattr(grpc.StatusCode, grpc_code) if receiver.protocol == "grpc" else http_status
    receiver.script = [answer]
    start(receiver)
    obskit.get_logger("t").info("answered")
    obskit.flush(timeout_s=10)
    stats = obskit.pipeline_stats()["exporters"]["OTLPExporter"]
    assert len(receiver.received.logs) == (1 if retried else 0)
    assert (stats["retried"], stats["failed"]) == ((1, 0) if retried else (0, 1))


def test_tls_to_a_plaintext_collector_is_a_warning_not_an_exception(
    receiver: Receiver, capfd: pytest.CaptureFixture[str]
) -> None:
    endpoint = receiver.endpoint.replace("http://", "https://")
    obskit.init(exporters=[OTLPExporter(endpoint, protocol=receiver.protocol, timeout_s=1)])
    obskit.get_logger("t").info("secret")
    assert not obskit.flush(timeout_s=1.5)  # kept and retried, never raised
    assert receiver.received.logs == []
    assert "OTLPExporter (logs" in capfd.readouterr().err


def test_spans_of_an_app_provider_go_through_the_app_and_logs_carry_its_resource(
    http_receiver: Receiver, tmp_path: Any
) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        f"""
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        spans = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({{"service.name": "app-own"}}))
        provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(provider)

        import obskit
        from obskit.exporters import OTLPExporter
        obskit.init(service="obskit-name", exporters=[OTLPExporter({http_receiver.endpoint!r})])
        with obskit.request("GET /"):
            obskit.get_logger("app").info("inside")
        obskit.shutdown()
        assert [s.name for s in spans.get_finished_spans()] == ["GET /"]
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    received = http_receiver.received
    assert received.wait_for(lambda r: len(r.logs) == 1)
    assert received.logs[0][0]["service.name"] == "app-own"
    assert received.spans == []  # the app's own processors deliver its spans


def test_a_batch_too_large_for_one_request_is_split_and_each_part_sent_once(
    receiver: Receiver,
) -> None:
    start(receiver, max_request_bytes=20_000)
    log = obskit.get_logger("big")
    for n in range(200):
        log.info("padded", n=n, pad="x" * 500)
    assert obskit.flush(timeout_s=10)
    assert receiver.received.wait_for(lambda r: len(r.logs) == 200)
    assert receiver.received.requests >= 200 * 500 // 20_000
    numbers = sorted(attributes_of(r)["n"] for r in receiver.received.log_records())
    assert numbers == list(range(200))


def test_a_retried_batch_does_not_resend_the_parts_already_delivered(
    http_receiver: Receiver,
) -> None:
    from obskit.signals import LogRecord, SpanRecord

    exporter = OTLPExporter(http_receiver.endpoint, export_spans=True)
    now = time.time()
    batch = [
        LogRecord(timestamp=now, level="info", event="inside"),
        SpanRecord(now, "GET /", "ab" * 16, "cd" * 8, None, 1.0),
    ]
    http_receiver.script = [None, (503, {})]  # the logs are taken, the spans refused for now
    assert exporter.export(batch) is ExportResult.RETRYABLE
    assert exporter.undelivered == [batch[1]]  # the processor retries (or spools) only these
    assert exporter.export(exporter.undelivered) is ExportResult.SUCCESS
    assert exporter.undelivered is None
    received = http_receiver.received
    assert (len(received.logs), len(received.spans), received.requests) == (1, 1, 2)
    exporter.shutdown()


def test_an_unreadable_certificate_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="certificate"):
        OTLPExporter("https://collector:4318", certificate=str(tmp_path / "missing.pem"))
