"""The built-in checks, each against a real local resource: a loopback server, a temporary
SQLite file, localhost resolution, this process's memory, the temp directory's disk."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from obskit.health import HealthRegistry, Status, checks


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


# -- TCP ----------------------------------------------------------------------------------------


def test_tcp_connect_passes_when_the_port_accepts_and_reports_the_connect_time() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        result = checks.TcpConnect("127.0.0.1", listener.getsockname()[1])()
    assert result.status is Status.PASS
    assert result.observed_unit == "ms" and 0 < result.observed_value < 10_000


def test_tcp_connect_fails_naming_the_target_when_nothing_listens() -> None:
    port = closed_port()
    result = checks.TcpConnect("127.0.0.1", port)()
    assert result.status is Status.FAIL
    assert result.message.startswith(f"cannot connect to 127.0.0.1:{port}: ConnectionRefusedError")


def test_tcp_connect_warns_when_slower_than_warn_above_ms() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        result = checks.TcpConnect("127.0.0.1", listener.getsockname()[1], warn_above_ms=-1)()
    assert result.status is Status.WARN and "took" in result.message


# -- HTTP ---------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    last_authorization: str | None = None
    #: /slow answers only once this is set (at the end of the module): a check against it can
    #: only come back by timing out, however slow the machine
    released = threading.Event()

    def do_GET(self) -> None:
        type(self).last_authorization = self.headers.get("Authorization")
        if self.path.startswith("/slow"):
            self.released.wait(60)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.end_headers()
            return
        code = 503 if self.path.startswith("/down") else 200
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    _Handler.released.set()
    server.shutdown()
    server.server_close()


def test_http_get_passes_on_2xx_and_3xx_following_redirects(web: str) -> None:
    result = checks.HttpGet(f"{web}/redirect")()
    assert result.status is Status.PASS
    assert result.details == {"status_code": 200}


def test_http_get_fails_on_an_unexpected_status_unless_it_is_expected(web: str) -> None:
    result = checks.HttpGet(f"{web}/down")()
    assert (result.status, result.message) == (Status.FAIL, f"GET {web}/down answered 503")
    assert checks.HttpGet(f"{web}/down", expected_status=503)().status is Status.PASS
    assert checks.HttpGet(f"{web}/ok", expected_status={201, 204})().status is Status.FAIL


def test_http_get_fails_when_unreachable_or_too_slow(web: str) -> None:
    port = closed_port()
    refused = checks.HttpGet(f"http://127.0.0.1:{port}/")()
    assert refused.status is Status.FAIL and "Connection refused" in refused.message
    slow = checks.HttpGet(f"{web}/slow", timeout_s=0.2)()
    assert slow.status is Status.FAIL and "timed out" in slow.message


def test_http_get_sends_url_credentials_as_basic_auth_and_never_shows_them(web: str) -> None:
    port = web.rsplit(":", 1)[1]
    result = checks.HttpGet(f"http://admin:pw123@127.0.0.1:{port}/down?token=abc")()
    assert result.message == f"GET http://127.0.0.1:{port}/down answered 503"
    assert _Handler.last_authorization == "Basic YWRtaW46cHcxMjM="  # admin:pw123


def test_http_get_uses_the_time_its_registration_allows(web: str) -> None:
    registry = HealthRegistry()
    registry.register("slow", checks.HttpGet(f"{web}/slow"), timeout_s=0.3)
    result = registry.run().checks["slow"]
    assert result.status is Status.FAIL and "timed out" in result.message
    registry.close()


# -- DNS ----------------------------------------------------------------------------------------


def test_dns_resolve_finds_localhost() -> None:
    result = checks.DnsResolve("localhost")()
    assert result.status is Status.PASS
    assert {"127.0.0.1", "::1"} & set(result.details["addresses"])


def test_dns_resolve_fails_for_a_name_that_cannot_exist() -> None:
    registry = HealthRegistry()
    registry.register("dns", checks.DnsResolve("no-such-host.invalid"), timeout_s=2)
    result = registry.run().checks["dns"]  # "cannot resolve ...", or timed out without DNS
    assert result.status is Status.FAIL
    registry.close()


# -- disk and memory -----------------------------------------------------------------------------


def test_disk_free_reports_free_bytes_and_judges_them(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    result = checks.DiskFree(tmp_path, fail_below=1)()
    assert result.status is Status.PASS and result.observed_unit == "bytes"
    assert abs(result.observed_value - free) < 256 << 20
    assert result.details["path"] == str(tmp_path)
    huge = 1 << 62
    assert checks.DiskFree(tmp_path, fail_below=1, warn_below=huge)().status is Status.WARN
    failing = checks.DiskFree(tmp_path, fail_below=huge)()
    assert failing.status is Status.FAIL and failing.message.startswith(f"free bytes on {tmp_path}")


def test_process_memory_sees_this_process_grow() -> None:
    before, source = checks.resident_bytes()
    assert before is not None and before > 1 << 20
    ballast = b"x" * (64 << 20)
    result = checks.ProcessMemory()()
    assert result.status is Status.PASS and result.details["source"] == source
    if source.startswith("current"):
        assert result.observed_value - before > 48 << 20
    del ballast
    assert checks.ProcessMemory(warn_above=1)().status is Status.WARN
    failing = checks.ProcessMemory(warn_above=1, fail_above=2)()
    assert failing.status is Status.FAIL and failing.message.startswith("resident memory: ")


# -- databases ---------------------------------------------------------------------------------


def test_sqlite_ping_passes_on_a_database_and_fails_without_creating_a_missing_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    sqlite3.connect(path).close()
    assert checks.SqlitePing(path)().status is Status.PASS
    missing = tmp_path / "missing.db"
    result = checks.SqlitePing(missing)()
    assert result.status is Status.FAIL and "unable to open database file" in result.message
    assert not missing.exists()


def test_sqlite_ping_fails_on_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(4096))
    result = checks.SqlitePing(path)()
    assert result.status is Status.FAIL and "not a database" in result.message


def test_db_api_ping_works_with_any_driver_and_a_failing_query_fails_the_check(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.db"
    registry = HealthRegistry()
    registry.register("db", checks.DbApiPing(lambda: sqlite3.connect(path)))
    registry.register("bad", checks.DbApiPing(lambda: sqlite3.connect(path), "SELECT * FROM nope"))
    report = registry.run()
    assert report.checks["db"].status is Status.PASS
    assert report.checks["bad"].message == "OperationalError: no such table: nope"
    assert set(report.to_dict()["checks"]) == {"db:responseTime", "bad:responseTime"}
    assert report.to_dict()["checks"]["db:responseTime"][0]["componentType"] == "datastore"
    registry.close()


# -- from_callable ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (5, Status.PASS),
        (95, Status.WARN),
        (150, Status.FAIL),
        (-1, Status.FAIL),
        (0.5, Status.WARN),
    ],
)
def test_from_callable_judges_a_number_by_its_thresholds(value: float, status: Status) -> None:
    check = checks.from_callable(
        lambda: value, warn_above=90, fail_above=100, warn_below=1, fail_below=0
    )
    result = check()
    assert result.status is status and result.observed_value == value


def test_from_callable_passes_answers_through_and_supports_async(clock: Any) -> None:
    async def lag() -> float:
        await asyncio.sleep(0)
        return 12.5

    registry = HealthRegistry(clock=clock)
    registry.register(
        "lag", checks.from_callable(lag, warn_above=10, unit="s", measurement="replicationLag")
    )
    registry.register("flag", checks.from_callable(lambda: False))
    report = registry.run()
    assert report.checks["flag"].message == "returned False"
    entry = report.to_dict()["checks"]["lag:replicationLag"][0]
    assert (entry["status"], entry["observedValue"], entry["observedUnit"]) == ("warn", 12.5, "s")
    assert entry["output"] == "observed 12.5 > 10"


def test_built_in_checks_name_their_measurement_and_component_type(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "app.db").close()
    registry = HealthRegistry()
    registry.register("disk", checks.DiskFree(tmp_path, fail_below=1))
    registry.register("memory", checks.ProcessMemory())
    registry.register("db", checks.SqlitePing(tmp_path / "app.db"))
    registry.register("dns", checks.DnsResolve("localhost"))
    doc = registry.run().to_dict()
    kinds = {key: entries[0]["componentType"] for key, entries in doc["checks"].items()}
    assert kinds == {
        "disk:free": "system",
        "memory:rss": "system",
        "db:responseTime": "datastore",
        "dns:responseTime": "system",
    }
    registry.close()
