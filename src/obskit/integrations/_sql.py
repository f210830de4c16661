"""What the DB-API and SQLAlchemy integrations share: one SQL statement as a client operation.

Per statement: a client span (inside a recording trace, as ``@instrument``'s spans are) named
``SELECT items`` (operation and table), with OpenTelemetry's database attributes
(``db.system``, ``db.operation.name``, ``db.collection.name``, ``db.query.text``); the
``db.client.operation.duration`` histogram (seconds); a ``query`` breadcrumb; and a warning
log record when it took ``slow_ms`` or longer.

``db.query.text`` is the statement with every literal (strings, numbers, blobs) replaced by
``?`` and comments removed; parameter values are never read, so they reach no signal. The
summary of a statement text is computed once and cached: a service runs few distinct texts.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from obskit import diagnostics, errors, instrumentation, metrics
from obskit.tracing import get_tracer, in_recording_trace, mark_span_failed

__all__ = ["DURATION_METRIC", "Statement", "StatementInfo", "summarise", "system_of"]

#: The operation-duration histogram (OpenTelemetry's database conventions; seconds).
DURATION_METRIC = "db.client.operation.duration"
#: Declared with its unit, so it gets the seconds buckets (and Prometheus' ``_seconds`` name).
operation_duration = metrics.histogram(
    DURATION_METRIC, "s", "Duration of database client operations."
)

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_LITERALS = re.compile(
    r"""
    [xXbBnNeE]?'(?:[^']|'')*'            # a string, blob or escape-string literal
    | \$(?P<tag>\w*)\$.*?\$(?P=tag)\$    # a PostgreSQL dollar-quoted string
    | (?<![\w$.:@?])                     # a number not part of a name or a placeholder
      -?(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)
      (?![\w.])
    """,
    re.VERBOSE | re.DOTALL,
)
_SPACES = re.compile(r"\s+")
_PART = r"""(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)"""  # a name, maybe quoted
_NAME = rf"{_PART}(?:\.{_PART})?"  # schema.table or table
_TABLE = {
    "SELECT": re.compile(rf"\bFROM\s+({_NAME})", re.IGNORECASE),
    "DELETE": re.compile(rf"\bFROM\s+({_NAME})", re.IGNORECASE),
    "INSERT": re.compile(rf"\bINTO\s+({_NAME})", re.IGNORECASE),
    "REPLACE": re.compile(rf"\bINTO\s+({_NAME})", re.IGNORECASE),
    "UPDATE": re.compile(rf"^\s*UPDATE\s+(?:OR\s+\w+\s+)?({_NAME})", re.IGNORECASE),
    "CREATE": re.compile(
        rf"\bTABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})|\bINDEX\s+.*?\bON\s+({_NAME})",
        re.IGNORECASE,
    ),
    "DROP": re.compile(rf"\bTABLE\s+(?:IF\s+EXISTS\s+)?({_NAME})", re.IGNORECASE),
    "ALTER": re.compile(rf"\bTABLE\s+({_NAME})", re.IGNORECASE),
}
_MAX_TEXT = 2048
_MAX_CACHED = 2048


class StatementInfo:
    """What obskit records about a statement text: operation, table, sanitised text, name."""

    __slots__ = ("collection", "name", "operation", "text")

    def __init__(self, operation: str, collection: str | None, text: str, name: str) -> None:
        self.operation = operation
        self.collection = collection
        self.text = text
        self.name = name


_cache: dict[str, StatementInfo] = {}


def summarise(statement: Any, system: str) -> StatementInfo:
    """The (cached) summary of a statement text.

    >>> info = summarise("SELECT name FROM items WHERE id = 42 AND tag = 'x''y'", "sqlite")
    >>> info.name, info.collection, info.text
    ('SELECT items', 'items', 'SELECT name FROM items WHERE id = ? AND tag = ?')
    """
    key = statement if isinstance(statement, str) else str(statement)
    info = _cache.get(key)
    if info is None:
        info = _summarise(key, system)
        if len(_cache) >= _MAX_CACHED:
            _cache.clear()
        _cache[key] = info
    return info


def _summarise(statement: str, system: str) -> StatementInfo:
    text = _COMMENTS.sub(" ", statement)
    text = _LITERALS.sub("?", text)
    text = _SPACES.sub(" ", text).strip()
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT]
    words = text.lstrip("( ").split(None, 1)
    operation = words[0].upper() if words and words[0].isalpha() else ""
    collection = None
    pattern = _TABLE.get(operation)
    if pattern is not None:
        match = pattern.search(text)
        if match is not None:
            collection = next((group for group in match.groups() if group), None)
            if collection is not None:
                collection = collection.strip('"`[]')
    name = f"{operation} {collection}" if operation and collection else operation or system
    return StatementInfo(operation, collection, text, name)


_SYSTEMS = {
    "sqlite3": "sqlite",
    "pysqlite2": "sqlite",
    "psycopg": "postgresql",
    "psycopg2": "postgresql",
    "asyncpg": "postgresql",
    "pg8000": "postgresql",
    "pymysql": "mysql",
    "MySQLdb": "mysql",
    "mysql": "mysql",
    "mariadb": "mariadb",
    "oracledb": "oracle",
    "cx_Oracle": "oracle",
    "pyodbc": "other_sql",
    "duckdb": "duckdb",
}


def system_of(connection: Any) -> str:
    """OpenTelemetry's ``db.system`` value for a DB-API connection, from its driver's package."""
    package = (type(connection).__module__ or "").split(".")[0].lstrip("_")
    return _SYSTEMS.get(package, "other_sql")


class Statement:
    """One statement being executed: its span (if inside a trace) and its timing."""

    __slots__ = ("info", "slow_ms", "span", "start", "system", "token")

    def __init__(
        self, info: StatementInfo, system: str, slow_ms: float | None, batch: int | None = None
    ) -> None:
        self.info = info
        self.system = system
        self.slow_ms = slow_ms
        self.span: Span | None = None
        self.token: Any = None
        if in_recording_trace():
            attributes: dict[str, Any] = {
                "db.system": system,
                "db.query.text": info.text,
            }
            if info.operation:
                attributes["db.operation.name"] = info.operation
            if info.collection:
                attributes["db.collection.name"] = info.collection
            if batch is not None:
                attributes["db.operation.batch.size"] = batch
            try:
                self.span = get_tracer().start_span(
                    info.name, kind=SpanKind.CLIENT, attributes=attributes
                )
            except Exception as exc:
                diagnostics.report("db_span", f"could not start a statement span: {exc!r}")
        self.start = time.perf_counter()

    def end(self, exc: BaseException | None) -> None:
        """Close the span, record the duration and breadcrumb, warn if slow. Never raises."""
        elapsed_ms = (time.perf_counter() - self.start) * 1000.0
        try:
            self._end(elapsed_ms, exc)
        except Exception as problem:
            diagnostics.report("db_statement", f"could not record a statement: {problem!r}")

    def _end(self, elapsed_ms: float, exc: BaseException | None) -> None:
        info = self.info
        span = self.span
        error_type = type(exc).__qualname__ if exc is not None else None
        if span is not None:
            if error_type is not None:  # no exception event: a driver's message may quote values
                mark_span_failed(span, why=error_type)
                span.set_attribute("error.type", error_type)
            span.end()
        labels: dict[str, Any] = {"db.system": self.system}
        if info.operation:
            labels["db.operation.name"] = info.operation
        if info.collection:
            labels["db.collection.name"] = info.collection
        if error_type is not None:
            labels["error.type"] = error_type
        operation_duration.record(elapsed_ms / 1000.0, **labels)
        data: dict[str, Any] = {"duration_ms": round(elapsed_ms, 3)}
        if error_type is not None:
            data["error.type"] = error_type
        errors.add_breadcrumb("query", info.text, "error" if exc else "info", data)
        instrumentation.check_slow(
            "query",
            info.name,
            elapsed_ms,
            self.slow_ms,
            fields={"db.system": self.system, "db.query.text": info.text},
        )


def run(
    info: StatementInfo,
    system: str,
    slow_ms: float | None,
    call: Callable[[], Any],
    batch: int | None = None,
) -> Any:
    """Run ``call`` (the driver's execute) as ``info``'s statement; its result or exception."""
    try:
        statement = Statement(info, system, slow_ms, batch)
    except Exception as exc:
        diagnostics.report("db_statement", f"could not start a statement: {exc!r}")
        return call()
    span = statement.span
    if span is None:
        try:
            result = call()
        except BaseException as exc:
            statement.end(exc)
            raise
        statement.end(None)
        return result
    with trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    ):
        try:
            result = call()
        except BaseException as exc:
            statement.end(exc)
            raise
    statement.end(None)
    return result
