"""``obskit health URL``: prints a remote report and exits non-zero on fail or when the endpoint
cannot be reached, so it works as a container HEALTHCHECK command."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from obskit.cli import main
from obskit.health import CheckResult, HealthRegistry


@pytest.fixture
def endpoint() -> Iterator[tuple[str, dict[str, Any]]]:
    answers: dict[str, Any] = {"db": True, "cache": True}
    registry = HealthRegistry(cache_ttl_s=0)
    registry.register("db", lambda: answers["db"])
    registry.register("cache", lambda: answers["cache"], critical=False)
    with registry.serve() as server:
        yield f"{server.url}/health", answers
    registry.close()


def test_a_passing_endpoint_prints_its_checks_and_exits_0(
    endpoint: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    assert main(["health", url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "health: PASS (HTTP 200)"
    assert [line.split()[:2] for line in lines[1:]] == [
        ["pass", "db:responseTime"],
        ["pass", "cache:responseTime"],
    ]


def test_warn_still_exits_0_and_fail_exits_1_saying_why(
    endpoint: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, answers = endpoint
    answers["cache"] = CheckResult.fail("evictions storm")
    assert main(["health", url]) == 0
    assert capsys.readouterr().out.startswith("health: WARN (HTTP 200)  cache: evictions storm")
    answers["db"] = False
    assert main(["health", url]) == 1
    out = capsys.readouterr().out
    assert out.startswith("health: FAIL (HTTP 503)  db: returned False")
    assert "  fail  db:responseTime" in out


def test_json_prints_the_document_as_served(
    endpoint: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = endpoint
    assert main(["health", url, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "pass" and "db:responseTime" in doc["checks"]


def test_an_unreachable_endpoint_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    assert main(["health", f"127.0.0.1:{port}/health", "--timeout", "2"]) == 1
    assert capsys.readouterr().out.startswith(f"health: FAIL  cannot reach http://127.0.0.1:{port}")


class _PlainHandler(BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:
        body = b"OK" if self.code == 200 else b"broken"
        self.send_response(self.code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize(("code", "exit_status"), [(200, 0), (204, 0), (500, 1)])
def test_any_other_endpoint_is_judged_by_its_http_status(code: int, exit_status: int) -> None:
    handler = type("Handler", (_PlainHandler,), {"code": code})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        assert main(["health", f"http://127.0.0.1:{server.server_address[1]}/"]) == exit_status
    finally:
        server.shutdown()
        server.server_close()


def test_the_exit_status_reaches_the_shell(endpoint: tuple[str, dict[str, Any]]) -> None:
    url, answers = endpoint
    answers["db"] = False
    command = [sys.executable, "-m", "obskit.cli", "health", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout.startswith("health: FAIL (HTTP 503)")
