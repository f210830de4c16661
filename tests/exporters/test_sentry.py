"""SentryExporter against a loopback Sentry: each envelope is read with sentry-sdk's own parser.

Sentry itself cannot run here, so a local HTTP server plays its envelope endpoint: it checks the
path and the ``X-Sentry-Auth`` header, parses the body with ``sentry_sdk.envelope.Envelope``,
and answers from a script (200, 429 with rate-limit headers, 500).
"""

from __future__ import annotations

import builtins
import gzip
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import obskit
from obskit.config import ConfigError
from obskit.exporters import InMemoryExporter, SentryExporter
from obskit.exporting import ExportResult, create_exporter
from obskit.signals import ErrorEvent

envelope = pytest.importorskip("sentry_sdk.envelope")

PROJECT = "42"
KEY = "0123456789abcdef0123456789abcdef"


class LoopbackSentry:
    """Sentry's envelope endpoint: records parsed envelopes; answers from a script, then 200."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.auth: list[str] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        sentry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = sentry.script.pop(0) if sentry.script else (200, {})
                if self.path != f"/api/{PROJECT}/envelope/":
                    status, headers = 404, {}
                elif status < 300:
                    if self.headers.get("Content-Encoding") == "gzip":
                        raw = gzip.decompress(raw)
                    assert self.headers["Content-Type"] == "application/x-sentry-envelope"
                    sentry.auth.append(self.headers["X-Sentry-Auth"])
                    sentry.envelopes.append(envelope.Envelope.deserialize(raw))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://{KEY}@127.0.0.1:{self.server.server_address[1]}/{PROJECT}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict[str, Any]]:
        found = []
        for received in self.envelopes:
            (item,) = received.items
            assert item.type == "event" and item.headers["type"] == "event"
            assert received.headers["event_id"] == item.payload.json["event_id"]
            found.append(item.payload.json)
        return found


@pytest.fixture
def sentry() -> Iterator[LoopbackSentry]:
    server = LoopbackSentry()
    yield server
    server.server.shutdown()
    server.server.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def crash(order: int) -> None:
    try:
        {}[order]
    except KeyError as exc:
        raise ValueError(f"order {order} has no price") from exc


def test_error_events_carry_the_fields_sentry_documents(sentry: LoopbackSentry) -> None:
    memory = InMemoryExporter()
    obskit.init(
        service="shop",
        environment="prod",
        release="shop@1.4.2",
        exporters=[memory, SentryExporter(sentry.dsn, gzip=True)],
    )
    with obskit.request("POST /checkout", user_id="u-9"):
        obskit.add_breadcrumb("db", "SELECT cart", data={"rows": 3})
        try:
            crash(7)
        except ValueError:
            captured = obskit.capture_exception(tags={"provider": "acme"})
    assert obskit.flush(30)
    assert captured is not None
    (event,) = sentry.events()
    assert f"sentry_key={KEY}" in sentry.auth[0] and "sentry_version=7" in sentry.auth[0]
    assert event["event_id"] == captured.event_id and len(event["event_id"]) == 32
    assert event["fingerprint"] == [captured.fingerprint]
    assert event["level"] == "error" and event["platform"] == "python"
    assert (event["release"], event["environment"]) == ("shop@1.4.2", "prod")
    assert event["user"] == {"id": "u-9"}
    assert event["tags"] == {"service": "shop", "provider": "acme"}
    cause, raised = event["exception"]["values"]  # oldest first, as Sentry orders a chain
    assert (cause["type"], raised["type"]) == ("KeyError", "ValueError")
    assert raised["value"] == "order 7 has no price"
    frame = raised["stacktrace"]["frames"][-1]
    assert frame["function"] == "crash" and frame["in_app"] is True
    assert frame["context_line"].startswith("raise ValueError")
    assert isinstance(frame["lineno"], int) and frame["abs_path"].endswith("test_sentry.py")
    messages = [crumb["message"] for crumb in event["breadcrumbs"]["values"]]
    assert messages[-1] == "SELECT cart"
    assert event["breadcrumbs"]["values"][-1]["data"] == {"rows": 3}
    trace = event["contexts"]["trace"]
    assert trace["trace_id"] == captured.trace_id and len(trace["trace_id"]) == 32
    assert trace["span_id"] == captured.span_id and len(trace["span_id"]) == 16
    obskit.shutdown()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is Python 3.11+")
def test_messages_and_exception_groups(sentry: LoopbackSentry) -> None:
    exporter = SentryExporter(sentry.dsn, gzip=False)
    obskit.init(exporters=[exporter], install_hooks=False)
    note = obskit.capture_message("inventory slow", level="critical")
    group = builtins.ExceptionGroup("batch", [KeyError("a"), ZeroDivisionError("b")])
    grouped = obskit.capture_exception(group)
    assert obskit.flush(30)
    assert note is not None and grouped is not None
    message, exceptions = sentry.events()
    assert message["logentry"] == {"formatted": "inventory slow"}
    assert message["level"] == "fatal" and "exception" not in message
    values = exceptions["exception"]["values"]
    by_id = {value["mechanism"]["exception_id"]: value for value in values}
    assert by_id[0]["type"] == "ExceptionGroup"
    assert by_id[0]["mechanism"]["is_exception_group"] is True
    assert {by_id[i]["type"] for i in (1, 2)} == {"KeyError", "ZeroDivisionError"}
    assert {by_id[i]["mechanism"]["parent_id"] for i in (1, 2)} == {0}
    assert exceptions["fingerprint"] == [grouped.fingerprint]
    obskit.shutdown()


def event(number: int) -> ErrorEvent:
    return ErrorEvent(
        event_id=f"{number:032x}", timestamp=1.0, level="error", fingerprint="f", title="t"
    )


def test_a_429_with_rate_limit_headers_stops_error_events_until_it_ends(
    sentry: LoopbackSentry,
) -> None:
    clock = Clock()
    exporter = SentryExporter(sentry.dsn, clock=clock)
    limits = {"X-Sentry-Rate-Limits": "60:error;transaction:key", "Retry-After": "5"}
    sentry.script = [(429, limits)]
    assert exporter.export([event(1), event(2)]) is ExportResult.SUCCESS
    assert sentry.envelopes == [] and exporter.rate_limited == 2
    clock.now += 59
    assert exporter.export([event(3)]) is ExportResult.SUCCESS  # not even sent
    assert sentry.envelopes == [] and exporter.rate_limited == 3
    clock.now += 2
    exporter.export([event(4)])
    assert [e["event_id"] for e in sentry.events()] == [f"{4:032x}"]


def test_a_429_with_only_retry_after_limits_every_category(sentry: LoopbackSentry) -> None:
    clock = Clock()
    exporter = SentryExporter(sentry.dsn, clock=clock)
    sentry.script = [(429, {"Retry-After": "30"})]
    exporter.export([event(1)])
    assert exporter.limited("error") and exporter.limited("transaction")
    clock.now += 31
    assert not exporter.limited("error")
    exporter.export([event(2)])
    assert len(sentry.events()) == 1


def test_rate_limits_on_a_success_and_for_other_categories(sentry: LoopbackSentry) -> None:
    clock = Clock()
    exporter = SentryExporter(sentry.dsn, clock=clock)
    sentry.script = [(200, {"X-Sentry-Rate-Limits": "120:transaction:organization"})]
    exporter.export([event(1)])
    assert exporter.limited("transaction") and not exporter.limited("error")
    sentry.script = [(200, {"X-Sentry-Rate-Limits": "10::organization"})]
    exporter.export([event(2)])
    assert exporter.limited("error")  # no category: all of them
    exporter.export([event(3)])
    assert len(sentry.events()) == 2


def test_server_errors_are_retried_and_client_errors_drop_the_event(
    sentry: LoopbackSentry,
) -> None:
    exporter = SentryExporter(sentry.dsn)
    sentry.script = [(503, {})]
    assert exporter.export([event(1)]) is ExportResult.RETRYABLE
    sentry.script = [(400, {})]
    assert exporter.export([event(2), event(3)]) is ExportResult.FAILURE
    assert [e["event_id"] for e in sentry.events()] == [f"{3:032x}"]


@pytest.mark.parametrize(
    ("dsn", "says"),
    [
        ("https://o1.ingest.sentry.io/42", "no public key"),
        ("ftp://key@o1.ingest.sentry.io/42", "https://"),
        ("https://key@o1.ingest.sentry.io/", "project id"),
    ],
)
def test_a_bad_dsn_is_a_config_error_saying_what_to_fix(dsn: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        SentryExporter(dsn)


def test_the_exporter_can_be_named_with_its_options() -> None:
    options = {"dsn": "https://key@sentry.example.com/sub/7", "gzip": False}
    exporter = create_exporter("sentry", options)
    assert isinstance(exporter, SentryExporter) and not exporter.gzip
    assert exporter.dsn.envelope_url == "https://sentry.example.com/sub/api/7/envelope/"
    with pytest.raises(ConfigError, match="dsn"):
        create_exporter("sentry", {})
