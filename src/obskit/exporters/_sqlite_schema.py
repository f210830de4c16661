"""The SQLite store's schema, shared by the writer (:mod:`obskit.exporters.sqlite`) and the
reader (:mod:`obskit.store`).

One table per signal kind. Columns hold what the read API filters and sorts on; ``data`` holds
the whole signal as JSON (see :mod:`obskit._codec`) so nothing a signal carries is lost, even
fields added after the table was created. ``error_groups`` and the ``metric_*`` tables are
maintained by the writer: a row per fingerprint, per-minute rollups per series (version 2
replaced version 1's last-value ``metrics`` table; see :mod:`obskit.exporters._sqlite_metrics`).
Every process writing one file adds to the same group rows, so groups are fleet-wide:
``error_group_users`` holds each group's distinct users, ``error_group_status`` the status
``obskit errors --resolve`` set and the regressions seen since (version 3).
"""

from __future__ import annotations

from obskit.exporters._sqlite_metrics import ROLLUP_SCHEMA

__all__ = ["BULK_TABLES", "SCHEMA", "SCHEMA_VERSION", "TIME_TABLES"]

#: 2: metric rollups; 3: ``error_group_users`` and ``error_group_status`` (fleet-wide groups).
SCHEMA_VERSION = 3

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, level TEXT NOT NULL, level_no INTEGER NOT NULL,
    logger TEXT, event TEXT, service TEXT, environment TEXT, trace_id TEXT, span_id TEXT,
    fields TEXT, exception TEXT
);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS errors (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, event_id TEXT, fingerprint TEXT, level TEXT,
    title TEXT, culprit TEXT, service TEXT, trace_id TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS errors_fingerprint ON errors (fingerprint, ts);
CREATE INDEX IF NOT EXISTS errors_ts ON errors (ts);

CREATE TABLE IF NOT EXISTS error_groups (
    fingerprint TEXT PRIMARY KEY, title TEXT, culprit TEXT, level TEXT, service TEXT,
    count INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL, last_event_id TEXT
);
CREATE TABLE IF NOT EXISTS error_group_users (
    fingerprint TEXT NOT NULL, user TEXT NOT NULL, PRIMARY KEY (fingerprint, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS error_group_status (
    fingerprint TEXT PRIMARY KEY, status TEXT NOT NULL, resolved_at REAL,
    regressions INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, name TEXT, trace_id TEXT, span_id TEXT,
    parent_span_id TEXT, duration_ms REAL, status TEXT, service TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_ts ON spans (ts);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);

CREATE TABLE IF NOT EXISTS health (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, status TEXT, service TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS health_ts ON health (ts);

CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, rule TEXT, state TEXT, severity TEXT, value REAL,
    fingerprint TEXT, service TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_ts ON alerts (ts);

CREATE TABLE IF NOT EXISTS anomalies (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, metric TEXT, value REAL, score REAL,
    detector TEXT, service TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS anomalies_ts ON anomalies (ts);

CREATE TABLE IF NOT EXISTS other_signals (
    id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS other_signals_ts ON other_signals (ts);
"""
    + ROLLUP_SCHEMA
)

#: Tables with a ``ts`` column, pruned by age.
TIME_TABLES = ("logs", "errors", "spans", "health", "alerts", "anomalies", "other_signals")

#: Tables pruned first (oldest rows) when the file outgrows its size limit; health and alert
#: history are small and worth more, so they go last.
BULK_TABLES = ("logs", "spans", "errors", "anomalies", "other_signals")
