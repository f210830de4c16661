"""Built-in checks, standard library only: TCP connect, HTTP GET, DNS resolve, disk free,
process memory, DB-API / SQLite ping, and :func:`from_callable` for a number you can read.

Each is an object to register under a name of your choice::

    from obskit.health import checks
    obskit.health.register("postgres", checks.TcpConnect("db.internal", 5432), timeout_s=2)
    obskit.health.register("disk", checks.DiskFree("/var/lib/app", fail_below=1 << 30))

Network checks wait at most the time their registration allows (:func:`time_left`), or their
own ``timeout_s``. A failure is a :class:`CheckResult` that names the target and the error.
Thresholds are named alike everywhere: ``warn_above``/``fail_above``, ``warn_below``/
``fail_below``.
"""

from __future__ import annotations

import base64
import inspect
import os
import shutil
import socket
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from obskit.health.model import CheckResult, Status
from obskit.health.runner import time_left, to_result

__all__ = [
    "DbApiPing",
    "DiskFree",
    "DnsResolve",
    "HttpGet",
    "ProcessMemory",
    "SqlitePing",
    "TcpConnect",
    "from_callable",
]

DEFAULT_TIMEOUT_S = 5.0


def _timeout(explicit: float | None) -> float:
    """The check's own timeout, else what its registration has left, else 5 s."""
    if explicit is not None:
        return explicit
    left = time_left()
    return DEFAULT_TIMEOUT_S if left is None else max(0.001, left)


def _judge(
    value: float,
    *,
    warn_above: float | None = None,
    fail_above: float | None = None,
    warn_below: float | None = None,
    fail_below: float | None = None,
) -> tuple[Status, str]:
    """The status of an observed value against thresholds, and why."""
    if fail_above is not None and value > fail_above:
        return Status.FAIL, f"{value:g} > {fail_above:g}"
    if fail_below is not None and value < fail_below:
        return Status.FAIL, f"{value:g} < {fail_below:g}"
    if warn_above is not None and value > warn_above:
        return Status.WARN, f"{value:g} > {warn_above:g}"
    if warn_below is not None and value < warn_below:
        return Status.WARN, f"{value:g} < {warn_below:g}"
    return Status.PASS, ""


def _elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class TcpConnect:
    """Passes when a TCP connection to ``host:port`` opens (a Kubernetes ``tcpSocket`` probe).

    >>> import socket
    >>> listener = socket.create_server(("127.0.0.1", 0))
    >>> check = TcpConnect("127.0.0.1", listener.getsockname()[1])
    >>> check().status, check().observed_unit
    (<Status.PASS: 'pass'>, 'ms')
    >>> listener.close()
    """

    component_type = "component"
    measurement = "responseTime"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout_s: float | None = None,
        warn_above_ms: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.timeout_s = timeout_s
        self.warn_above_ms = warn_above_ms

    def __call__(self) -> CheckResult:
        start = time.perf_counter()
        try:
            with socket.create_connection((self.host, self.port), timeout=_timeout(self.timeout_s)):
                pass
        except OSError as exc:
            message = f"cannot connect to {self.host}:{self.port}: {_error(exc)}"
            return CheckResult.fail(message, observed_value=_elapsed_ms(start), observed_unit="ms")
        elapsed = _elapsed_ms(start)
        status, why = _judge(elapsed, warn_above=self.warn_above_ms)
        message = f"connect to {self.host}:{self.port} took {why} ms" if why else ""
        return CheckResult(status, message, observed_value=elapsed, observed_unit="ms")


class HttpGet:
    """Passes when ``GET url`` answers an expected status (by default 200-399, as Kubernetes).

    Redirects are followed. Credentials in the URL (``https://user:pw@host/``) are sent as Basic
    authentication; the URL shown in messages has no credentials and no query string.

    >>> from obskit.health import HealthRegistry
    >>> registry = HealthRegistry()
    >>> with registry.serve() as server:  # doctest: +ELLIPSIS
    ...     HttpGet(f"{server.url}/health")().status, HttpGet(f"{server.url}/nope")().message
    (<Status.PASS: 'pass'>, 'GET http://127.0.0.1:.../nope answered 404')
    >>> registry.close()
    """

    component_type = "component"
    measurement = "responseTime"

    def __init__(
        self,
        url: str,
        *,
        expected_status: int | Collection[int] = range(200, 400),
        timeout_s: float | None = None,
        warn_above_ms: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url, self.headers = _without_credentials(url, dict(headers or {}))
        self.expected = {expected_status} if isinstance(expected_status, int) else expected_status
        self.timeout_s = timeout_s
        self.warn_above_ms = warn_above_ms
        self.shown = _display_url(url)

    def __call__(self) -> CheckResult:
        request = urllib.request.Request(self.url, headers=self.headers)
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=_timeout(self.timeout_s)) as response:
                code = int(response.status)
        except urllib.error.HTTPError as exc:
            code = int(exc.code)
            exc.close()
        except (OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            message = f"GET {self.shown} failed: {reason}"
            return CheckResult.fail(message, observed_value=_elapsed_ms(start), observed_unit="ms")
        elapsed = _elapsed_ms(start)
        details = {"status_code": code}
        if code not in self.expected:
            message = f"GET {self.shown} answered {code}"
            return CheckResult.fail(
                message, observed_value=elapsed, observed_unit="ms", details=details
            )
        status, why = _judge(elapsed, warn_above=self.warn_above_ms)
        message = f"GET {self.shown} took {why} ms" if why else ""
        return CheckResult(status, message, elapsed, "ms", details=details)


def _without_credentials(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Move ``user:password@`` out of the URL into a Basic ``Authorization`` header."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, headers
    credentials = f"{urllib.parse.unquote(parts.username)}:"
    credentials += urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(credentials.encode()).decode("ascii")
    headers.setdefault("Authorization", f"Basic {token}")
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc)), headers


def _display_url(url: str) -> str:
    """The URL without credentials or query string, fit for a message anyone may read."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"
    except ValueError:
        return "<unparsable url>"


class DnsResolve:
    """Passes when ``host`` resolves to at least one address (the addresses are in details).

    >>> DnsResolve("localhost")().status
    <Status.PASS: 'pass'>
    """

    component_type = "system"
    measurement = "responseTime"

    def __init__(self, host: str, *, family: int = 0) -> None:
        self.host = host
        self.family = family

    def __call__(self) -> CheckResult:
        start = time.perf_counter()
        try:
            infos = socket.getaddrinfo(self.host, None, self.family, socket.SOCK_STREAM)
        except OSError as exc:  # gaierror, or no network at all
            message = f"cannot resolve {self.host}: {_error(exc)}"
            return CheckResult.fail(message, observed_value=_elapsed_ms(start), observed_unit="ms")
        addresses = sorted({str(info[4][0]) for info in infos})
        return CheckResult(
            Status.PASS if addresses else Status.FAIL,
            "" if addresses else f"{self.host} resolved to no address",
            observed_value=_elapsed_ms(start),
            observed_unit="ms",
            details={"addresses": addresses},
        )


class DiskFree:
    """Free bytes on the filesystem holding ``path`` (Spring Boot's ``diskSpace``).

    Fails below ``fail_below`` bytes (default 100 MiB), warns below ``warn_below``.

    >>> result = DiskFree(".", fail_below=1)()
    >>> result.status, result.observed_unit, result.observed_value > 0
    (<Status.PASS: 'pass'>, 'bytes', True)
    """

    component_type = "system"
    measurement = "free"

    def __init__(
        self,
        path: str | os.PathLike[str] = ".",
        *,
        fail_below: int = 100 << 20,
        warn_below: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.fail_below = fail_below
        self.warn_below = warn_below

    def __call__(self) -> CheckResult:
        usage = shutil.disk_usage(self.path)
        status, why = _judge(usage.free, fail_below=self.fail_below, warn_below=self.warn_below)
        return CheckResult(
            status,
            f"free bytes on {self.path}: {why}" if why else "",
            observed_value=usage.free,
            observed_unit="bytes",
            details={"total": usage.total, "used": usage.used, "path": self.path},
        )


class ProcessMemory:
    """This process's resident memory (RSS), against ``warn_above``/``fail_above`` bytes.

    Current RSS comes from ``/proc/self/statm`` (Linux); elsewhere the peak RSS from
    ``resource.getrusage`` stands in (said so in ``details``), and where neither exists
    (Windows) the check warns that it cannot measure.

    >>> result = ProcessMemory(fail_above=1 << 50)()
    >>> result.status, result.observed_unit, result.observed_value > 1 << 20
    (<Status.PASS: 'pass'>, 'bytes', True)
    """

    component_type = "system"
    measurement = "rss"

    def __init__(self, *, warn_above: int | None = None, fail_above: int | None = None) -> None:
        self.warn_above = warn_above
        self.fail_above = fail_above

    def __call__(self) -> CheckResult:
        rss, source = resident_bytes()
        if rss is None:
            return CheckResult.warn("cannot measure this process's memory on this platform")
        status, why = _judge(rss, warn_above=self.warn_above, fail_above=self.fail_above)
        return CheckResult(
            status,
            f"resident memory: {why}" if why else "",
            observed_value=rss,
            observed_unit="bytes",
            details={"source": source},
        )


def resident_bytes() -> tuple[int | None, str]:
    """This process's resident set size in bytes, and where the number came from."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE"), "current (/proc/self/statm)"
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None, "unavailable"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return peak * scale, "peak (getrusage ru_maxrss)"


class DbApiPing:
    """Opens a DB-API connection with ``connect()``, runs ``query``, closes it.

    Works with any PEP 249 driver (sqlite3, psycopg, pymysql, ...); give it a function that
    connects, so each run uses a connection of its own thread::

        DbApiPing(lambda: psycopg.connect(dsn, connect_timeout=2))
    """

    component_type = "datastore"
    measurement = "responseTime"

    def __init__(self, connect: Callable[[], Any], query: str = "SELECT 1") -> None:
        self.connect = connect
        self.query = query

    def __call__(self) -> CheckResult:
        start = time.perf_counter()
        connection = self.connect()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.query)
                cursor.fetchone()
            finally:
                cursor.close()
        finally:
            connection.close()
        return CheckResult.ok(observed_value=_elapsed_ms(start), observed_unit="ms")


class SqlitePing(DbApiPing):
    """Pings an existing SQLite database file (it never creates one: a missing file fails).

    >>> import sqlite3, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "app.db")
    >>> sqlite3.connect(path).close()
    >>> SqlitePing(path)().status, SqlitePing(path + ".missing")().status
    (<Status.PASS: 'pass'>, <Status.FAIL: 'fail'>)
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 1.0) -> None:
        self.path = Path(path)
        uri = self.path.resolve().as_uri() + "?mode=rw"
        super().__init__(
            lambda: sqlite3.connect(uri, uri=True, timeout=busy_timeout_s),
            "SELECT count(*) FROM sqlite_master",  # reads the file: a non-database fails
        )

    def __call__(self) -> CheckResult:
        try:
            return super().__call__()
        except sqlite3.Error as exc:
            return CheckResult.fail(f"sqlite {self.path}: {_error(exc)}")


def from_callable(
    fn: Callable[[], Any],
    *,
    warn_above: float | None = None,
    fail_above: float | None = None,
    warn_below: float | None = None,
    fail_below: float | None = None,
    unit: str | None = None,
    measurement: str | None = None,
    component_type: str | None = None,
) -> Callable[[], Any]:
    """A check from a function returning a number (judged by the thresholds) or an answer.

    ``fn`` may be sync or async. A number becomes the observed value; ``True``/``False``,
    ``None``, a status or a :class:`CheckResult` pass through as a check's answer would.

    >>> queue = [1] * 950
    >>> check = from_callable(lambda: len(queue), warn_above=900, fail_above=5000,
    ...                       unit="messages", measurement="depth")
    >>> result = check()
    >>> result.status, result.message, result.observed_value
    (<Status.WARN: 'warn'>, 'observed 950 > 900', 950)
    """

    def judge(value: Any) -> CheckResult:
        if isinstance(value, int | float) and not isinstance(value, bool):
            status, why = _judge(
                value,
                warn_above=warn_above,
                fail_above=fail_above,
                warn_below=warn_below,
                fail_below=fail_below,
            )
            message = f"observed {why}" if why else ""
            return CheckResult(status, message, value, unit, measurement)
        return to_result(True, value)

    if inspect.iscoroutinefunction(fn):

        async def async_check() -> CheckResult:
            return judge(await fn())

        check: Callable[[], Any] = async_check
    else:

        def check() -> CheckResult:
            return judge(fn())

    check.measurement = measurement  # type: ignore[attr-defined]
    check.component_type = component_type  # type: ignore[attr-defined]
    return check
