"""The logs page: filter by level, logger, request id, trace id and text; live tail by polling."""

from __future__ import annotations

from typing import Any

from obskit.dashboard._html import Html, clock_time, full_time, join, number
from obskit.dashboard._layout import Page, View, notice, section
from obskit.signals import LogRecord
from obskit.store import Store

__all__ = ["SCAN_LIMIT", "log_rows", "logs_page", "tail"]

#: Filters no index serves look at the newest this many records of the window.
SCAN_LIMIT = 100_000
_SHOWN = 200
_LEVELS = ("debug", "info", "warning", "error", "critical")
_FILTERS = ("level", "logger", "request_id", "trace_id", "q")


def _filters(view: View) -> dict[str, Any]:
    p = view.params
    level = p.get("level") if p.get("level") in _LEVELS else None
    return {
        "level": level,
        "logger": p.get("logger") or None,
        "request_id": p.get("request_id") or None,
        "trace_id": p.get("trace_id") or None,
        "contains": p.get("q") or None,
    }


def logs_page(store: Store, view: View, rest: str) -> Page | dict[str, Any]:
    """The newest matching records of the window, newest first."""
    if rest == "tail":
        return tail(store, view)
    window = view.window
    filters = _filters(view)
    records = store.logs(
        **filters, since=window.start, until=window.end, limit=_SHOWN, scan_limit=SCAN_LIMIT
    )
    _, cursor = store.log_tail(None)
    notices = []
    narrowed = any(filters[k] for k in ("level", "logger", "request_id", "contains"))
    scanned_to = _scan_cut(store, view) if narrowed and len(records) < _SHOWN else None
    if scanned_to is not None:
        notices.append(
            notice(
                f"Searched the newest {number(SCAN_LIMIT)} records of the window (back to "
                f"{full_time(scanned_to)}); pick a shorter range to search older ones.",
                kind="warn",
            )
        )
    form = _form(view)
    tail_on = not view.params.get("end")
    table = Html('<div id="log-table" data-tail="{}" data-cursor="{}">{}</div>').format(
        view.link("/logs/tail", **{k: view.params.get(k) for k in _FILTERS}) if tail_on else "",
        cursor,
        log_rows(records, view),
    )
    note = (
        f"the newest {_SHOWN}; narrow the filters or the range for older ones"
        if len(records) >= _SHOWN
        else f"{len(records)} in the window"
    )
    body = join([form, section("Log records", table, note=note)])
    if not store.has_table("logs"):
        notices.append(notice("This store holds no log records yet."))
    return Page("Logs", body, nav="logs", notices=notices)


def tail(store: Store, view: View) -> dict[str, Any]:
    """Records written after ``?after=<cursor>`` as table rows, and the next cursor."""
    try:
        after = int(view.params.get("after", ""))
    except ValueError:
        after = None
    records, cursor = store.log_tail(after, limit=_SHOWN, **_filters(view))
    rows = join(_row(r, view, None) for r in records)
    return {"cursor": cursor, "count": len(records), "html": str(rows)}


def _scan_cut(store: Store, view: View) -> float | None:
    if not store.has_table("logs"):
        return None
    rows = store.query(
        "SELECT ts FROM logs WHERE ts >= ? AND ts <= ? ORDER BY ts DESC LIMIT 1 OFFSET ?",
        (view.window.start, view.window.end, SCAN_LIMIT - 1),
    )
    return float(rows[0][0]) if rows else None


def _form(view: View) -> Html:
    p = view.params
    levels = join(
        Html('<option value="{}"{}>{}</option>').format(
            value, Html(" selected") if p.get("level", "") == value else Html(""), label
        )
        for value, label in [("", "any level"), *((lv, f"{lv} and up") for lv in _LEVELS)]
    )
    hidden = join(
        Html('<input type="hidden" name="{}" value="{}">').format(k, p[k])
        for k in ("range", "end", "refresh")
        if p.get(k)
    )
    return Html(
        '<form class="card filters" method="get" action="{}">{}'
        '<label>Level <select name="level">{}</select></label>'
        '<label>Logger <input name="logger" value="{}" placeholder="shop.payments"></label>'
        '<label>Request id <input name="request_id" value="{}"></label>'
        '<label>Trace id <input name="trace_id" value="{}"></label>'
        '<label class="grow">Text <input name="q" value="{}" placeholder="contains…"></label>'
        '<button type="submit">Filter</button><a class="clear" href="{}">clear</a>'
        '<label class="tail"><input type="checkbox" id="live-tail"> live tail</label></form>'
    ).format(
        view.prefix + "/logs",
        hidden,
        levels,
        p.get("logger", ""),
        p.get("request_id", ""),
        p.get("trace_id", ""),
        p.get("q", ""),
        view.link("/logs"),
    )


def log_rows(records: list[LogRecord], view: View, origin: float | None = None) -> Html:
    """A table of log records (``origin`` shows times as offsets from it, as the trace view)."""
    if not records:
        return Html(
            '<table class="logs"><tbody></tbody></table>'
            '<p class="empty">No matching log records.</p>'
        )
    return Html(
        '<table class="logs"><thead><tr><th>Time</th><th>Level</th><th>Logger</th>'
        "<th>Message</th><th>Trace</th></tr></thead><tbody>{}</tbody></table>"
    ).format(join(_row(r, view, origin) for r in records))


def _row(record: LogRecord, view: View, origin: float | None) -> Html:
    when = (
        f"+{(record.timestamp - origin) * 1000:.1f} ms"
        if origin is not None
        else clock_time(record.timestamp, span_s=view.window.end - view.window.start)
    )
    fields = join(
        Html('<span class="field"><b>{}</b>={}</span>').format(k, v)
        for k, v in record.fields.items()
    )
    exception = (
        Html("<details><summary>exception</summary><pre>{}</pre></details>").format(
            record.exception
        )
        if record.exception
        else Html("")
    )
    trace = (
        Html('<a href="{}">{}</a>').format(
            view.link(f"/traces/{record.trace_id}"), record.trace_id[:8]
        )
        if record.trace_id
        else Html("")
    )
    return Html(
        '<tr class="level-{}"><td title="{}">{}</td><td><span class="badge level-{}">{}</span></td>'
        '<td>{}</td><td class="msg">{} {}{}</td><td>{}</td></tr>'
    ).format(
        record.level,
        full_time(record.timestamp),
        when,
        record.level,
        record.level,
        record.logger,
        record.event,
        fields,
        exception,
        trace,
    )
