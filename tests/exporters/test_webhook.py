"""WebhookExporter against a real HTTP server on loopback."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import obskit
from obskit.config import ConfigError
from obskit.exporters import WebhookExporter
from obskit.exporting import ExportResult


class Hook:
    """A webhook endpoint: records each POST; answers from a script, then 204."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any, float]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = hook.script.pop(0) if hook.script else (204, {})
                if status < 300:
                    if self.headers.get("Content-Encoding") == "gzip":
                        raw = gzip.decompress(raw)
                    hook.requests.append((dict(self.headers), json.loads(raw), time.monotonic()))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T0/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def signals(self) -> list[dict[str, Any]]:
        return [s for _, body, _ in self.requests for s in body["signals"]]


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_batches_arrive_as_json_documents_with_the_configured_headers(hook: Hook) -> None:
    exporter = WebhookExporter(hook.url, headers={"Authorization": "Bearer k"})
    obskit.init(exporters=[exporter], service="shop")
    log = obskit.get_logger("shop")
    for n in range(3):
        log.info("paid", order=n)
    assert obskit.flush(timeout_s=30)
    ((headers, body, _),) = hook.requests
    assert headers["Authorization"] == "Bearer k"
    assert headers["Content-Type"].startswith("application/json")
    assert body["count"] == 3 and body["sent_at"].endswith("Z")
    assert [(s["signal"], s["event"], s["order"]) for s in body["signals"]] == [
        ("log", "paid", 0),
        ("log", "paid", 1),
        ("log", "paid", 2),
    ]


def test_gzip_compresses_the_body_and_kinds_filter_what_is_sent(hook: Hook) -> None:
    obskit.init(exporters=[WebhookExporter(hook.url, gzip=True, kinds={"log"})])
    obskit.get_logger("t").warning("kept")
    with obskit.request("GET /"):  # its span is not a log: filtered out
        pass
    assert obskit.flush(timeout_s=30)
    assert [s["event"] for s in hook.signals()] == ["kept"]
    assert hook.requests[0][0]["Content-Encoding"] == "gzip"


def test_429_and_5xx_are_retried_honouring_retry_after(hook: Hook) -> None:
    hook.script = [(503, {}), (429, {"Retry-After": "1"}), (500, {})]
    obskit.init(exporters=[WebhookExporter(hook.url)], schedule_delay_s=0.05)
    started = time.monotonic()
    obskit.get_logger("t").info("eventually")
    assert obskit.flush(timeout_s=30)
    assert [s["event"] for s in hook.signals()] == ["eventually"]
    assert hook.requests[0][2] - started >= 0.9  # waited as the 429 asked
    stats = obskit.pipeline_stats()
    assert stats["exporters"]["WebhookExporter"]["retried"] == 3
    assert {"webhook.http_503", "webhook.http_429", "webhook.http_500"} <= set(stats["problems"])


def test_other_4xx_drop_the_batch_and_warn_once_without_the_secret_path(
    hook: Hook, capfd: pytest.CaptureFixture[str]
) -> None:
    hook.script = [(404, {}), (404, {})]
    obskit.init(exporters=[WebhookExporter(hook.url)])
    log = obskit.get_logger("t")
    for text in ("lost", "lost too"):
        log.info(text)
        obskit.flush(timeout_s=30)
    log.info("delivered")
    obskit.flush(timeout_s=30)
    assert [s["event"] for s in hook.signals()] == ["delivered"]
    stats = obskit.pipeline_stats()["exporters"]["WebhookExporter"]
    assert (stats["failed"], stats["retried"], stats["exported"]) == (2, 0, 1)
    err = capfd.readouterr().err
    assert err.count("HTTP 404") == 1 and "secret-token" not in err


def test_an_unreachable_url_is_retryable_and_never_raises() -> None:
    exporter = WebhookExporter("http://127.0.0.1:9/nothing", timeout_s=1)
    assert exporter.export([]) is ExportResult.SUCCESS
    obskit.init(exporters=[exporter], retry_max_elapsed_s=0.2)
    obskit.get_logger("t").info("nowhere")
    obskit.flush(timeout_s=30)
    stats = obskit.pipeline_stats()
    assert stats["exporters"]["WebhookExporter"]["failed"] == 1
    assert "webhook.unreachable" in stats["problems"]


def test_configured_by_name_with_exporter_options(hook: Hook) -> None:
    obskit.init(exporters=["webhook"], exporter_options={"webhook": {"url": hook.url}})
    obskit.get_logger("t").info("by name")
    assert obskit.flush(timeout_s=30)
    assert [s["event"] for s in hook.signals()] == ["by name"]
    with pytest.raises(ConfigError, match=r"exporter_options\['webhook'\].*url"):
        obskit.init(exporters=["webhook"])
    with pytest.raises(ConfigError, match="not an http"):
        WebhookExporter("ftp://example.com/x")
