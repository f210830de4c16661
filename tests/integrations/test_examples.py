"""Every example in examples/ runs with its one command, as a subprocess, against real servers
on loopback; what it exported is read back: the full records from a JSON lines file added
through ``OBSKIT_EXPORTERS`` (the console shows error events briefly), else its console output
(JSON lines, since stdout is a pipe)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .conftest import uvicorn_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_TIMEOUT_S = 60  # imports on a busy shared machine can take a while


class Example:
    """An example script running as a subprocess, its output collected line by line."""

    def __init__(self, script: str, *args: str, cwd: Path, full_records: bool = True) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OBSKIT_", "OTEL_"))}
        self.full = cwd / "full.jsonl"
        self.full_records = full_records
        if full_records:  # (an example that names its exporters itself is read as it is)
            env.update(
                OBSKIT_EXPORTERS="console,jsonl",
                OBSKIT_EXPORTER_OPTIONS=json.dumps({"jsonl": {"path": str(self.full)}}),
            )
        self.process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / script), *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        if self.full_records:  # (none until the exporter's first batch: it writes each second)
            text = self.full.read_text() if self.full.exists() else ""
            lines = [line for line in text.splitlines() if line.endswith("}")]
        else:  # the example chose its exporters itself
            lines = list(self.lines)
        out = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in out if kind is None or r["signal"] == kind]

    def wait_for(
        self, found: Callable[[], Any], what: str, timeout_s: float = START_TIMEOUT_S
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            result = found()
            if result:
                return result
            if self.process.poll() is not None and not found():
                raise AssertionError(f"exited before {what}:\n" + "\n".join(self.errors[-30:]))
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout_s}s:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def url(self) -> str:
        line = self.wait_for(
            lambda: next((x for x in self.lines if x.startswith("serving on ")), None),
            "'serving on' line",
        )
        return str(line.split()[-1])

    def finish(self, timeout_s: float = 60) -> int:
        """Wait for the process to end (after an interrupt if it is a server)."""
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        for reader in self._readers:
            reader.join(10)
        return code

    def interrupt(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.finish()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def start(script: str, *args: str, full_records: bool = True) -> Example:
        started.append(Example(script, *args, cwd=tmp_path, full_records=full_records))
        return started[-1]

    yield start
    for example in started:
        if example.process.poll() is None:
            example.process.kill()
            example.finish()


def test_fastapi_app(run: Callable[..., Example]) -> None:
    example = run("fastapi_app.py", "--port", "0", "--alert-interval", "0.2")
    url = example.url()
    with httpx.Client(base_url=url, timeout=30) as client:
        order = client.get("/orders/7", headers={"X-Request-ID": "order-req-1"})
        assert order.status_code == 200 and order.json()["id"] == 7
        assert order.headers["x-request-id"] == "order-req-1"
        assert client.get("/orders/0").status_code == 404
        assert client.get("/health/live").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "pass"
        for _ in range(2):
            assert client.get("/inventory/pen").status_code == 502
        # uvicorn drops the connection after an app exception: one connection per failure
        failures = [httpx.get(f"{url}/checkout", timeout=30) for _ in range(4)]
    assert {r.status_code for r in failures} == {500}
    firing = example.wait_for(
        lambda: [a for a in example.records("alert") if a["state"] == "firing"],
        "firing alert",
    )
    assert firing[0]["rule"] == "high_error_rate"
    assert firing[0]["labels"]["http.route"] == "/checkout"
    [loaded] = [r for r in example.records("log") if r["event"] == "order loaded"]
    assert loaded["request_id"] == "order-req-1" and loaded["path"] == "/orders/7"
    assert loaded["http.route"] == "/orders/{order_id}"
    spans = example.records("span")
    selects = [s for s in spans if s["name"] == "SELECT orders"]  # /orders/7 and /orders/0
    assert len(selects) == 2
    assert {s["attributes"]["db.query.text"] for s in selects} == {
        "SELECT id, items, total FROM orders WHERE id = ?"
    }
    assert not [s for s in spans if "/health" in s["name"]]  # probes are excluded
    errors = example.records("error")
    upstream = [e for e in errors if e["title"] == "HTTP 502 GET /inventory/{sku}"]
    assert len(upstream) == 2 and upstream[0]["culprit"].endswith("in inventory")
    failed = [e for e in errors if e["title"].startswith("ConnectionError")]
    assert len(failed) == 4 and len({e["context"]["request_id"] for e in failed}) == 4
    assert all(e["tags"] == {"region": "local", "flow": "checkout"} for e in failed)
    assert example.interrupt() == 0
    assert not [line for line in example.errors if "Traceback" in line]  # left to obskit


def test_flask_app(run: Callable[..., Example]) -> None:
    example = run("flask_app.py", "--port", "0")
    url = example.url()
    with httpx.Client(base_url=url, timeout=30) as client:
        order = client.get("/orders/7")
        assert order.status_code == 200 and order.json()["id"] == 7
        assert client.get("/checkout").status_code == 500
        report = client.get("/report")
        assert report.text.count("ok") == 3
        assert client.get("/health/ready").json()["status"] == "pass"
    [error] = example.wait_for(lambda: example.records("error"), "error event")
    assert error["title"] == "ConnectionError: payment provider unreachable"
    assert [b["message"] for b in error["breadcrumbs"]][-2:] == [
        "checkout started",
        "charge requested",
    ]

    def report_lines() -> list[dict[str, Any]] | None:
        lines = [r for r in example.records("log") if r["event"] == "report line"]
        return lines if len(lines) == 3 else None

    lines = example.wait_for(report_lines, "report lines")
    assert {r["request_id"] for r in lines} == {report.headers["x-request-id"]}
    [loaded] = [r for r in example.records("log") if r["event"] == "order loaded"]
    assert loaded["request_id"] == order.headers["x-request-id"]
    assert example.interrupt() == 0


received: list[dict[str, str]] = []


async def stock(request: Request) -> JSONResponse:
    received.append(dict(request.headers))
    return JSONResponse({"sku": request.path_params["sku"], "available": 2})


def test_asyncio_worker_against_a_loopback_inventory(run: Callable[..., Example]) -> None:
    received.clear()
    inventory = Starlette(routes=[Route("/stock/{sku}", stock)])
    with uvicorn_server(inventory) as url:
        example = run("asyncio_worker.py", "--jobs", "8", "--workers", "3", "--inventory", url)
        assert example.finish() == 0, "\n".join(example.errors)
    assert example.lines[-1] == "processed 8 jobs: 6 done, 2 failed"
    [enqueued] = [r for r in example.records("log") if r["event"] == "jobs enqueued"]
    producer_trace = enqueued["trace_id"]
    # Every call reached the inventory service carrying the producer's trace.
    assert len(received) == 8
    assert {h["traceparent"].split("-")[1] for h in received} == {producer_trace}
    done = [r for r in example.records("log") if r["event"] == "job done"]
    assert len(done) == 6 and {r["trace_id"] for r in done} == {producer_trace}
    checksums = {
        r["request_id"]: r for r in example.records("log") if r["event"] == "checksum computed"
    }
    assert len(checksums) == 8  # logged in a thread, with the job's context
    for event in example.records("error"):
        job = event["context"]["request_id"]
        sku = f"sku-{job.split('-')[1]}"
        assert event["message"] == f"refund window closed for {sku}"
        http = [b for b in event["breadcrumbs"] if b["category"] == "http"]
        assert [b["data"]["url"] for b in http] == [f"{url}/stock/{sku}"]


def test_asyncio_worker_runs_alone(run: Callable[..., Example]) -> None:
    example = run("asyncio_worker.py", "--jobs", "4")
    assert example.finish() == 0, "\n".join(example.errors)
    assert example.lines[-1] == "processed 4 jobs: 3 done, 1 failed"
    stock_logs = [r for r in example.records("log") if r["event"] == "stock checked"]
    [enqueued] = [r for r in example.records("log") if r["event"] == "jobs enqueued"]
    assert len(stock_logs) == 4 and {r["trace_id"] for r in stock_logs} == {enqueued["trace_id"]}


def test_script(run: Callable[..., Example], tmp_path: Path) -> None:
    example = run("script.py", full_records=False)
    assert example.finish() == 0, "\n".join(example.errors)
    written = [json.loads(x) for x in (tmp_path / "script.jsonl").read_text().splitlines()]
    loaded = [r for r in written if r.get("event") == "batch loaded"]
    assert [r["rows"] for r in loaded] == [10, 20, 30]
    assert len({r["request_id"] for r in loaded}) == 3
