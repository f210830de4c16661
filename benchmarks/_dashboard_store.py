"""A generated obskit store: days of a busy shop, for the dashboard benchmark and screenshots.

Small, structured signals (errors with breadcrumbs, health reports, alert changes, anomalies,
metric points, and the request duration histograms per route and minute) go through the real
``SQLiteExporter``; the bulk (log records and request spans)
is inserted by SQL into the exporter's own tables, because a Python loop would need half an hour
for a week at 10,000 log records a minute. The bulk rate applies to the newest ``busy_minutes``;
the rest of the ``days`` carries a thin stream, so every range of the picker has data.
"""

from __future__ import annotations

import hashlib
import math
import random
import sqlite3
import time
from pathlib import Path

from obskit.exporters import SQLiteExporter
from obskit.signals import Alert, Anomaly, ErrorEvent, HealthRecord, MetricPoint

__all__ = ["ROUTES", "generate"]

ROUTES = [  # route, share of traffic, median latency in seconds, error ratio
    ("GET /search", 0.45, 0.012, 0.004),
    ("GET /product/{id}", 0.3, 0.008, 0.001),
    ("POST /checkout", 0.1, 0.09, 0.02),
    ("GET /cart", 0.1, 0.006, 0.0),
    ("POST /login", 0.05, 0.03, 0.01),
]
_ERRORS = [  # title, culprit, function, file, line, statement, weight
    ("PaymentDeclined: card declined", "shop.payments in charge", "charge", "shop/payments.py",
     88, "raise PaymentDeclined(response.reason)", 8),
    ("KeyError: 'sku'", "shop.catalog in price_of", "price_of", "shop/catalog.py", 41,
     "return prices[item['sku']]", 4),
    ("TimeoutError: search backend timed out", "shop.search in query", "query", "shop/search.py",
     120, "hits = backend.search(q, timeout=2.0)", 3),
    ("ValueError: invalid quantity '-1'", "shop.cart in add_item", "add_item", "shop/cart.py", 57,
     "raise ValueError(f'invalid quantity {qty!r}')", 2),
    ("ConnectionResetError: [Errno 104] Connection reset by peer", "shop.db in execute",
     "execute", "shop/db.py", 33, "return cursor.execute(sql, params)", 1),
]  # fmt: skip
_LEVELS = [("debug", 10, 30), ("info", 20, 60), ("warning", 30, 7), ("error", 40, 3)]


def generate(
    path: Path,
    *,
    now: float,
    days: float = 7.0,
    logs_per_minute: int = 10_000,
    busy_minutes: int = 60,
    quiet_logs_per_minute: int = 20,
    requests_per_minute: int = 1_000,
    seed: int = 7,
) -> dict[str, float]:
    """Write the store at ``path`` (replacing it); returns seconds spent per part."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    rng = random.Random(seed)
    start = now - days * 86400
    timings: dict[str, float] = {}
    began = time.perf_counter()
    writer = SQLiteExporter(path, clock=lambda: now, max_bytes=None, max_age_s=None)
    writer.export(_errors(rng, start, now) + _health(rng, start, now) + _alerts(rng, start, now))
    writer.export(_metrics(rng, start, now) + _anomalies(rng, start, now))
    writer.export(_request_histograms(rng, start, now, requests_per_minute))
    writer.shutdown()
    timings["signals through the exporter"] = time.perf_counter() - began
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        began = time.perf_counter()
        busy_from = now - busy_minutes * 60
        quiet_requests = max(1, requests_per_minute // 50) / 60
        _bulk_logs(conn, start, busy_from, quiet_logs_per_minute / 60, quiet_requests)
        _bulk_logs(conn, busy_from, now, logs_per_minute / 60, requests_per_minute / 60)
        timings["log records (SQL)"] = time.perf_counter() - began
        began = time.perf_counter()
        _bulk_spans(conn, start, busy_from, quiet_requests)
        _bulk_spans(conn, busy_from, now, requests_per_minute / 60)
        timings["request spans (SQL)"] = time.perf_counter() - began
        conn.execute("PRAGMA optimize")
    finally:
        conn.close()
    return timings


def _diurnal(ts: float) -> float:
    """Traffic follows the day: 0.3 at night to 1.0 in the afternoon."""
    hour = time.gmtime(ts).tm_hour + time.gmtime(ts).tm_min / 60
    return 0.65 + 0.35 * math.sin((hour - 9) / 24 * 2 * math.pi)


#: A request's trace id, from its number ``j`` and the stretch's first second ``?``: the log
#: records of request ``j`` carry the trace id of span ``j`` (the trace view shows both).
_TRACE_ID = (
    "printf('%08x%08x%016x', {j} * 2654435761 % 4294967291, {j} * 40503 % 4294967279, {j} + ?)"
)


def _bulk_logs(
    conn: sqlite3.Connection, start: float, end: float, per_second: float, requests: float
) -> None:
    """Log records at ``per_second``, each belonging to one of ``requests`` a second."""
    count = int((end - start) * per_second)
    if count <= 0:
        return
    step = (end - start) / count
    level_cases = " ".join(
        f"WHEN i % 100 < {sum(w for _, _, w in _LEVELS[: k + 1])} THEN '{name}'"
        for k, (name, _, _) in enumerate(_LEVELS)
    )
    number_cases = " ".join(
        f"WHEN i % 100 < {sum(w for _, _, w in _LEVELS[: k + 1])} THEN {number}"
        for k, (_, number, _) in enumerate(_LEVELS)
    )
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO logs (ts, level, level_no, logger, event, service, environment, trace_id, "
        "span_id, fields, exception) "
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        f"SELECT ? + i * ?, CASE {level_cases} END, CASE {number_cases} END, "
        "CASE i % 4 WHEN 0 THEN 'shop.search' WHEN 1 THEN 'shop.checkout' "
        "WHEN 2 THEN 'shop.catalog' ELSE 'shop.http' END, "
        "CASE i % 7 WHEN 0 THEN 'search served' WHEN 1 THEN 'checkout started' "
        "WHEN 2 THEN 'cache miss' WHEN 3 THEN 'order placed' WHEN 4 THEN 'price looked up' "
        "WHEN 5 THEN 'request finished' ELSE 'inventory reserved' END, "
        f"'shop', 'prod', {_TRACE_ID.format(j='j')}, printf('%016x', j * 40503), "
        'printf(\'{"request_id":"r-%d","user_id":"u-%d","items":%d}\', '
        "j, j % 97, i % 9), NULL FROM (SELECT i, CAST(i * ? AS INTEGER) AS j FROM n)",
        (count - 1, start, step, int(start), requests / per_second),
    )
    conn.execute("COMMIT")


def _bulk_spans(conn: sqlite3.Connection, start: float, end: float, per_second: float) -> None:
    count = int((end - start) * per_second)
    if count <= 0:
        return
    step = (end - start) / count
    route_case = " ".join(
        f"WHEN i % 100 < {round(sum(r[1] for r in ROUTES[: k + 1]) * 100)} THEN '{name}'"
        for k, (name, *_rest) in enumerate(ROUTES)
    )
    median_case = " ".join(
        f"WHEN i % 100 < {round(sum(r[1] for r in ROUTES[: k + 1]) * 100)} THEN {median * 1000}"
        for k, (_, _, median, _) in enumerate(ROUTES)
    )
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO spans (ts, name, trace_id, span_id, parent_span_id, duration_ms, status, "
        "service, data) "
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?), "
        "r AS (SELECT i, ? + i * ? AS ts, CASE " + route_case + " END AS name, "
        "(CASE " + median_case + " END) * (0.5 + ((i * 7919) % 1000) / 1000.0 "
        "+ CASE WHEN i % 97 = 0 THEN 6 ELSE 0 END) AS ms, "
        "CASE WHEN i % 211 = 0 THEN 500 ELSE 200 END AS code FROM n) "
        f"SELECT ts, name, {_TRACE_ID.format(j='i')}, "
        "printf('%016x', i * 40503), NULL, ms, "
        "CASE WHEN code >= 500 THEN 'error' ELSE 'unset' END, 'shop', "
        "json_object('timestamp', ts, 'name', name, 'trace_id', "
        f"{_TRACE_ID.format(j='i')}, "
        "'span_id', printf('%016x', i * 40503), 'parent_span_id', NULL, 'duration_ms', ms, "
        "'status', CASE WHEN code >= 500 THEN 'error' ELSE 'unset' END, 'attributes', "
        "json_object('http.route', substr(name, instr(name, ' ') + 1), "
        "'http.request.method', substr(name, 1, instr(name, ' ') - 1), "
        "'http.response.status_code', code), 'service', 'shop', 'span_kind', 'server', "
        "'events', json_array(), 'status_message', '', 'scope', 'obskit', 'kind', 'span') "
        "FROM r",
        (count - 1, start, step, int(start), int(start)),
    )
    conn.execute("COMMIT")


def _errors(rng: random.Random, start: float, end: float) -> list[object]:
    events: list[object] = []
    weights = [e[-1] for e in _ERRORS]
    ts = start
    while ts < end:
        ts += rng.expovariate(2.0 / 60 * _diurnal(ts))  # about two a minute
        title, culprit, function, filename, line, statement, _ = rng.choices(_ERRORS, weights)[0]
        fingerprint = hashlib.sha256(title.encode()).hexdigest()[:32]
        user = f"u-{rng.randint(1, 400)}"
        request_id = f"r-{rng.randrange(10**9)}"
        frames = [
            {"module": "shop.app", "function": "dispatch", "filename": "shop/app.py",
             "lineno": 210, "context_line": "return handler(request)", "in_app": True},
            {"module": "starlette.routing", "function": "handle",
             "filename": "starlette/routing.py", "lineno": 74,
             "context_line": "await self.app(scope, receive, send)", "in_app": False},
            {"module": culprit.split(" in ")[0], "function": function, "filename": filename,
             "lineno": line, "context_line": statement, "in_app": True},
        ]  # fmt: skip
        crumbs = [
            {"timestamp": ts - 0.2, "category": "request", "level": "info",
             "message": "POST /checkout", "data": {"request_id": request_id}},
            {"timestamp": ts - 0.15, "category": "db", "level": "info",
             "message": "SELECT cart", "data": {"rows": rng.randint(1, 9)}},
            {"timestamp": ts - 0.05, "category": "http", "level": "warning",
             "message": "POST payments.example/charge 502", "data": {"duration_ms": 812}},
        ]  # fmt: skip
        events.append(
            ErrorEvent(
                event_id=f"{rng.getrandbits(128):032x}", timestamp=ts, level="error",
                fingerprint=fingerprint, title=title, culprit=culprit,
                message=title.split(": ", 1)[-1],
                exceptions=[{"type": title.split(":")[0], "value": title.split(": ", 1)[-1],
                             "module": culprit.split(" in ")[0], "frames": frames}],
                context={"request_id": request_id, "route": "/checkout"}, user={"id": user},
                tags={"region": rng.choice(["eu-west", "us-east"])}, breadcrumbs=crumbs,
                service="shop", environment="prod", release="2.4.1",
                trace_id=f"{rng.getrandbits(128):032x}",
            )
        )  # fmt: skip
    return events


def _health(rng: random.Random, start: float, end: float) -> list[object]:
    reports: list[object] = []
    ts = start
    states = {"database": "pass", "disk": "pass", "payments-api": "pass", "search": "pass"}
    while ts < end:
        changed = []
        for name in states:
            flip = {"payments-api": 0.04, "search": 0.015}.get(name, 0.002)
            new = "pass" if states[name] != "pass" and rng.random() < 0.5 else states[name]
            if states[name] == "pass" and rng.random() < flip:
                new = "fail" if name == "payments-api" else "warn"
            if new != states[name]:
                states[name] = new
                changed.append(name)
        if changed or not reports:
            checks = {
                f"{name}:responseTime": [
                    {"status": status, "observedValue": round(rng.uniform(1, 40), 1),
                     "observedUnit": "ms",
                     **({"output": "connection reset by peer"} if status == "fail" else {})}
                ]
                for name, status in states.items()
            }  # fmt: skip
            worst = max(states.values(), key=["pass", "warn", "fail"].index)
            reports.append(HealthRecord(ts, worst, checks, "shop", changed or list(states)))
        ts += 300
    return reports


def _alerts(rng: random.Random, start: float, end: float) -> list[object]:
    changes: list[object] = []
    ts = start + 3600
    common = {"severity": "critical", "service": "shop"}
    while True:
        ts += rng.uniform(4, 20) * 3600
        if ts > end - 4 * 3600:
            break
        labels = {"route": "/checkout", "alertname": "HighErrorRate"}
        fp = "checkout-errors"
        for offset, state, value in ((0, "pending", 0.06), (120, "firing", 0.09),
                                     (rng.uniform(600, 3000), "resolved", 0.01)):  # fmt: skip
            changes.append(Alert(ts + offset, "HighErrorRate", state, value=value, labels=labels,
                                 annotations={"summary": "checkout fails over 5%"},
                                 fingerprint=fp, **common))  # type: ignore[arg-type]  # fmt: skip
    changes.append(Alert(end - 400, "SlowSearch", "pending", value=0.8, fingerprint="slow-search",
                         labels={"route": "/search"}, annotations={"summary": "p95 over 500 ms"},
                         **common))  # type: ignore[arg-type]  # fmt: skip
    changes.append(Alert(end - 280, "SlowSearch", "firing", value=0.9, fingerprint="slow-search",
                         labels={"route": "/search"}, annotations={"summary": "p95 over 500 ms"},
                         **common))  # type: ignore[arg-type]  # fmt: skip
    return changes


def _metrics(rng: random.Random, start: float, end: float) -> list[object]:
    points: list[object] = []
    minute = start - start % 60
    while minute < end:
        load = _diurnal(minute)
        for queue, base in (("mail", 40.0), ("sms", 8.0)):
            points.append(MetricPoint(minute + 30, "queue.depth", round(base * load +
                                      rng.gauss(0, base * 0.1), 1), {"queue": queue}, "gauge",
                                      "{messages}", "shop"))  # fmt: skip
        points.append(MetricPoint(minute + 30, "process.memory.usage",
                                  2.1e8 + 4e7 * load + rng.gauss(0, 2e6), {}, "gauge", "By",
                                  "shop"))  # fmt: skip
        minute += 60
    return points


#: OpenTelemetry's default bucket bounds for http.server.request.duration (seconds).
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]


def _request_histograms(
    rng: random.Random, start: float, end: float, per_minute: int
) -> list[object]:
    """A delta histogram point per route, status and minute, as the HTTP middleware writes."""
    points: list[object] = []
    minute = start - start % 60
    slow_hours = {rng.randrange(int((end - start) // 3600)) for _ in range(4)}
    while minute < end:
        load = _diurnal(minute)
        slow = int((minute - start) // 3600) in slow_hours
        for name, share, median, error_ratio in ROUTES:
            method, route = name.split(" ", 1)
            n = max(0, round(per_minute * share * load * rng.uniform(0.9, 1.1)))
            failed = sum(1 for _ in range(n) if rng.random() < error_ratio * (4 if slow else 1))
            for status, count in ((200, n - failed), (500, failed)):
                if count <= 0:
                    continue
                typical = median * (3.0 if slow else 1.0) * (2.0 if status == 500 else 1.0)
                counts = _lognormal_counts(count, typical)
                labels = {"http.request.method": method, "http.route": route,
                          "http.response.status_code": status}  # fmt: skip
                if status >= 500:
                    labels["error.type"] = "500"
                total = count * typical * 1.2
                points.append(
                    MetricPoint(minute + 30, "http.server.request.duration", total, labels,
                                "histogram", "s", "shop", temporality="delta", count=count,
                                bounds=BOUNDS, bucket_counts=counts, min=typical / 4,
                                max=typical * 6)  # type: ignore[call-arg]
                )  # fmt: skip
        minute += 60
    return points


def _lognormal_counts(count: int, median: float, sigma: float = 0.6) -> list[int]:
    """``count`` samples of a log-normal latency spread over the bucket bounds (+Inf last)."""
    cdf = [0.5 * (1 + math.erf(math.log(b / median) / (sigma * math.sqrt(2)))) for b in BOUNDS]
    shares = [b - a for a, b in zip([0.0, *cdf], [*cdf, 1.0], strict=True)]
    counts = [int(count * share) for share in shares]
    counts[max(range(len(shares)), key=shares.__getitem__)] += count - sum(counts)
    return counts


def _anomalies(rng: random.Random, start: float, end: float) -> list[object]:
    found: list[object] = []
    ts = start
    while ts < end:
        ts += rng.uniform(3, 14) * 3600
        when = min(ts, end - 600)
        expected = 40.0 * _diurnal(when)
        found.append(Anomaly(when, "queue.depth", expected * 2.6, 0.99, expected=expected,
                             lower=expected * 0.7, upper=expected * 1.3, labels={"queue": "mail"},
                             detector="mad", service="shop"))  # fmt: skip
    return found
