"""Text views of the embedded store for the CLI: ``obskit report``, ``obskit logs``, ``errors``."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, TextIO

from obskit._store_metrics import merge_rollups
from obskit.exporters._render import json_line
from obskit.levels import LEVELS
from obskit.store import Store

__all__ = ["parse_since", "print_errors", "print_logs", "print_report", "stamp"]


def stamp(ts: float | None, *, date: bool = True) -> str:
    """A local wall-clock time for a UNIX timestamp."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S", time.localtime(ts))


def print_report(store: Store, out: TextIO, *, since: float | None = None) -> None:
    """The summary: volume, levels, error groups, health, alerts, requests, recent problems."""
    counts = store.counts()
    span = store.time_range()
    services = ", ".join(store.services()) or "-"
    out.write(f"obskit report: {store.path}\n")
    when = f"{stamp(span[0])} -> {stamp(span[1])}" if span else "no log records"
    out.write(f"  service {services}; {counts.get('logs', 0)} log records; {when}\n")
    _levels(store, out, since)
    _error_groups(store, out, limit=10, total_events=counts.get("errors", 0))
    _health(store, out)
    _alerts(store, out)
    _requests(store, out, since)
    _recent_problems(store, out, since)


def print_errors(store: Store, out: TextIO, *, limit: int = 20, order_by: str = "count") -> None:
    """The error groups table."""
    counts = store.counts()
    _error_groups(store, out, limit=limit, total_events=counts.get("errors", 0), order_by=order_by)


def print_logs(
    store: Store, out: TextIO, *, as_json: bool = False, limit: int = 50, **filters: Any
) -> None:
    """The newest ``limit`` log records matching ``filters``, oldest first (like ``tail``)."""
    records = list(reversed(store.logs(limit=limit, **filters)))
    for record in records:
        if as_json:
            out.write(json_line(record) + "\n")
            continue
        extra = _pairs(record.fields)
        name = f" {record.logger}" if record.logger else ""
        out.write(f"{stamp(record.timestamp)} {record.level:<8}{name}  {record.event}{extra}\n")
        if record.exception:
            out.write("  " + record.exception.rstrip("\n").replace("\n", "\n  ") + "\n")
    if not records and not as_json:
        out.write("(no matching log records)\n")


def _levels(store: Store, out: TextIO, since: float | None) -> None:
    counts = store.level_counts(since=since)
    out.write("\nLog records by level:\n")
    for level in LEVELS:
        out.write(f"  {level:<9}{counts.get(level, 0):>8}\n")


def _error_groups(
    store: Store, out: TextIO, *, limit: int, total_events: int, order_by: str = "count"
) -> None:
    groups = store.error_groups(limit=limit, order_by=order_by)
    out.write(f"\nError groups: {len(groups)} shown, {total_events} events stored\n")
    if not groups:
        out.write("  (no error events)\n")
        _error_messages(store, out, limit)
        return
    out.write(
        f"  {'count':>6}  {'users':>5}  {'last seen':<19}  {'fingerprint':<12}  "
        f"{'status':<10}  title\n"
    )
    for group in groups:
        culprit = f"  ({group.culprit})" if group.culprit else ""
        title = _short(group.title, 70)
        out.write(
            f"  {group.count:>6}  {group.users:>5}  {stamp(group.last_seen):<19}  "
            f"{group.fingerprint[:12]:<12}  {group.status:<10}  {title}{culprit}\n"
        )


def _error_messages(store: Store, out: TextIO, limit: int) -> None:
    """Without error events, the most frequent messages logged at ERROR and above."""
    counts = Counter(r.event for r in store.logs(level="error", limit=10_000))
    if counts:
        out.write("  most frequent error log messages:\n")
    for event, count in counts.most_common(limit):
        out.write(f"  {count:>6}  {_short(event, 90)}\n")


def _health(store: Store, out: TextIO) -> None:
    reports = store.health(limit=50)
    out.write("\nHealth:\n")
    if not reports:
        out.write("  (no health reports)\n")
        return
    latest = reports[0]
    out.write(f"  latest: {latest.status} at {stamp(latest.timestamp)}\n")
    width = max((len(name) for name in latest.checks), default=0) + 2
    for name, result in sorted(latest.checks.items()):
        status, detail = _check_status(result)
        out.write(f"    {name:<{width}}{status:<6}{_short(detail, 60)}\n")
    for report in [r for r in reports if r.changed][:5]:
        changed = ", ".join(report.changed)
        out.write(f"  {stamp(report.timestamp)}  {report.status:<5} changed: {changed}\n")


def _check_status(result: Any) -> tuple[str, str]:
    """Status and a short detail from a check result (IETF health+json, or a plain dict)."""
    if isinstance(result, list) and result:
        result = result[0]
    if not isinstance(result, dict):
        return str(result), ""
    detail = next(
        (str(result[k]) for k in ("output", "message", "error", "detail") if result.get(k)), ""
    )
    if not detail and result.get("observedValue") is not None:
        detail = f"{result['observedValue']} {result.get('observedUnit', '')}".strip()
    return str(result.get("status", "?")), detail


def _alerts(store: Store, out: TextIO) -> None:
    alerts = store.alerts(limit=10)
    out.write("\nAlerts (latest state changes):\n")
    if not alerts:
        out.write("  (no alerts)\n")
        return
    for alert in alerts:
        value = "" if alert.value is None else f" value={alert.value:g}"
        labels = _pairs(alert.labels)
        out.write(
            f"  {stamp(alert.timestamp)}  {alert.state.upper():<9} {alert.rule}  "
            f"severity={alert.severity}{value}{labels}\n"
        )


#: The request-duration histograms, and the label(s) naming a request in each.
_REQUEST_HISTOGRAMS = (
    ("http.server.request.duration", ("http.request.method", "http.route")),
    ("obskit.request.duration", ("name",)),
)


def _requests(store: Store, out: TextIO, since: float | None) -> None:
    """Per request name: count, p50/p95 from the duration histograms' stored buckets."""
    groups: dict[str, list[Any]] = {}
    for metric, keys in _REQUEST_HISTOGRAMS:
        for rollup in store.metrics(name=metric, since=since, buckets=True, limit=None):
            name = " ".join(str(rollup.labels.get(k, "")) for k in keys).strip() or metric
            groups.setdefault(name, []).append(rollup)
    if not groups:
        _requests_from_spans(store, out)
        return
    out.write("\nRequests (duration histograms; percentiles from their buckets):\n")
    out.write(f"  {'name':<24}{'count':>7}{'p50 ms':>10}{'p95 ms':>10}{'errors':>8}\n")
    for name, rows in sorted(groups.items()):
        merged = merge_rollups(rows)
        errors = sum(r.count for r in rows if r.labels.get("error.type"))
        p50, p95 = (merged.quantile(q) or 0.0 for q in (0.5, 0.95))
        out.write(
            f"  {_short(name, 23):<24}{merged.count:>7}{p50 * 1000:>10.2f}"
            f"{p95 * 1000:>10.2f}{errors:>8}\n"
        )


def _requests_from_spans(store: Store, out: TextIO) -> None:
    roots: dict[str, list[tuple[float, str]]] = {}
    for span in store.spans(limit=20_000):
        if span.parent_span_id is None:
            roots.setdefault(span.name, []).append((span.duration_ms, span.status))
    if not roots:
        return
    out.write("\nRequests (root spans):\n")
    out.write(f"  {'name':<24}{'count':>7}{'p50 ms':>10}{'p95 ms':>10}{'errors':>8}\n")
    for name, rows in sorted(roots.items()):
        durations = sorted(d for d, _ in rows)
        errors = sum(1 for _, status in rows if status == "error")
        out.write(
            f"  {_short(name, 23):<24}{len(rows):>7}{_quantile(durations, 0.5):>10.2f}"
            f"{_quantile(durations, 0.95):>10.2f}{errors:>8}\n"
        )


def _recent_problems(store: Store, out: TextIO, since: float | None) -> None:
    records = store.logs(level="warning", since=since, limit=8)
    out.write("\nRecent warnings and errors:\n")
    if not records:
        out.write("  (none)\n")
    for record in reversed(records):
        out.write(
            f"  {stamp(record.timestamp)} {record.level:<8} {_short(record.event, 60)}"
            f"{_pairs(record.fields, 60)}\n"
        )


def _quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _pairs(fields: dict[str, Any], limit: int = 200) -> str:
    if not fields:
        return ""
    text = " ".join(f"{k}={_value(v)}" for k, v in fields.items())
    return "  " + _short(text, limit)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _short(text: str, limit: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_since(text: str, now: float | None = None) -> float:
    """``"90s"``, ``"15m"``, ``"2h"``, ``"1d"`` ago (or a bare number of seconds) as UNIX time.

    >>> parse_since("15m", now=1000.0)
    100.0
    """
    units = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    text = text.strip().lower()
    scale = units.get(text[-1:])
    number = float(text[:-1] if scale else text)
    return (time.time() if now is None else now) - number * (scale or 1.0)
