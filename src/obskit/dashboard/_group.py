"""The error group page: its events, one event in full (frames, crash site, breadcrumbs)."""

from __future__ import annotations

import json
from typing import Any

from obskit.dashboard._html import Html, ago, full_time, join, number
from obskit.dashboard._layout import Page, View, facts, notice, section
from obskit.dashboard._queries import error_counts
from obskit.dashboard._svg import Series, line_chart
from obskit.store import Store

__all__ = ["group_page"]

_EVENTS_SHOWN = 50


def group_page(store: Store, view: View, fingerprint: str) -> Page:
    """One error group; ``?event=<event id>`` picks the event shown in full (default newest)."""
    rows = (
        store.query(
            "SELECT title, culprit, level, count, first_seen, last_seen FROM error_groups "
            "WHERE fingerprint = ?",
            (fingerprint,),
        )
        if store.has_table("error_groups")
        else []
    )
    if not rows:
        body = notice(
            Html(
                "No error group <code>{}</code> in this store (it may have aged out). "
                '<a href="{}">Back to the overview</a>.'
            ).format(fingerprint, view.link("/")),
            kind="warn",
        )
        return Page("Unknown error group", body, 404)
    title, culprit, level, total, first_seen, last_seen = rows[0]
    level = level or "error"
    window = view.window
    counts = error_counts(store, fingerprint, window)
    events = store.query(
        "SELECT event_id, ts, data FROM errors WHERE fingerprint = ? AND ts < ? "
        "ORDER BY ts DESC LIMIT ?",
        (fingerprint, window.end, _EVENTS_SHOWN),
    )
    chosen_id = view.params.get("event") or (events[0][0] if events else None)
    chosen = _event(store, fingerprint, chosen_id) if chosen_id else None
    status, users = _fleet_facts(store, fingerprint)
    head = facts(
        [
            ("level", Html('<span class="badge level-{}">{}</span>').format(level, level)),
            *(
                [("status", Html('<span class="badge {}">{}</span>').format(status, status))]
                if status
                else []
            ),
            ("events", f"{number(sum(counts))} in range · {number(total)} total"),
            *([("users", number(users))] if users is not None else []),
            ("first seen", f"{full_time(first_seen)} ({ago(first_seen, view.now)})"),
            ("last seen", f"{full_time(last_seen)} ({ago(last_seen, view.now)})"),
            ("fingerprint", Html("<code>{}</code>").format(fingerprint)),
        ]
    )
    chart = line_chart(
        [
            Series(
                "events",
                list(zip(window.slot_times(), map(float, counts), strict=True)),
                tone=3,
                bars=True,
            )
        ],
        start=window.start,
        end=window.end,
        step_s=window.step,
        height=150,
        width=1200,
        label=f"events of {title} per slot",
    )
    header = Html(
        '<section class="card group-head"><h1>{}</h1><p class="culprit">{}</p>{}'
        "<figure><figcaption>Events per slot</figcaption>{}</figure></section>"
    ).format(title or "(untitled)", culprit or "", head, chart)
    notices = []
    if chosen_id and chosen is None:
        notices.append(
            notice(f"No event {chosen_id} in this group; showing the list.", kind="warn")
        )
    parts = [header]
    if chosen is not None:
        parts.append(_event_detail(chosen, view))
    parts.append(_event_list(events, chosen_id, view))
    return Page(title or "Error group", join(parts), notices=notices)


def _fleet_facts(store: Store, fingerprint: str) -> tuple[str, int | None]:
    """The group's status (unresolved, resolved, regressed) and distinct users, as every
    process writing the store counted them (empty on stores without those tables)."""
    status = ""
    users = None
    if store.has_table("error_group_status"):
        rows = store.query(
            "SELECT status FROM error_group_status WHERE fingerprint = ?", (fingerprint,)
        )
        status = str(rows[0][0]) if rows else "unresolved"
    if store.has_table("error_group_users"):
        rows = store.query(
            "SELECT count(*) FROM error_group_users WHERE fingerprint = ?", (fingerprint,)
        )
        users = int(rows[0][0])
    return status, users


def _event(store: Store, fingerprint: str, event_id: str) -> dict[str, Any] | None:
    rows = store.query(
        "SELECT data FROM errors WHERE fingerprint = ? AND event_id = ? LIMIT 1",
        (fingerprint, event_id),
    )
    if not rows:
        return None
    try:
        body = json.loads(rows[0][0])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _event_list(events: list[Any], chosen_id: str | None, view: View) -> Html:
    rows = []
    for event_id, ts, data in events:
        try:
            body = json.loads(data)
        except ValueError:
            body = {}
        user = (body.get("user") or {}).get("id", "") if isinstance(body.get("user"), dict) else ""
        context = body.get("context") or {}
        rows.append(
            Html('<tr{}><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>').format(
                Html(' class="chosen"') if event_id == chosen_id else Html(""),
                view.here(event=event_id),
                full_time(ts),
                body.get("message") or body.get("title", ""),
                user,
                context.get("route") or context.get("request_id", ""),
            )
        )
    table = Html(
        '<table class="events"><thead><tr><th>Time</th><th>Message</th><th>User</th>'
        "<th>Request</th></tr></thead><tbody>{}</tbody></table>"
    ).format(join(rows))
    return section("Events", table, note=f"newest {len(events)}")


def _event_detail(event: dict[str, Any], view: View) -> Html:
    exceptions = [e for e in event.get("exceptions") or [] if isinstance(e, dict)]
    crash = _crash_frame(exceptions)
    crash_html = Html("")
    if crash is not None:
        crash_html = Html(
            '<div class="crash"><span class="where">{}:{} in {}</span><pre><code>{}</code></pre>'
            "</div>"
        ).format(
            crash.get("filename") or crash.get("module", "?"),
            crash.get("lineno", "?"),
            crash.get("function", "?"),
            crash.get("context_line") or "(source unavailable)",
        )
    chain = join(_exception_block(exc) for exc in exceptions)
    if not exceptions and event.get("message"):
        chain = Html('<p class="message">{}</p>').format(event["message"])
    trace_id = event.get("trace_id")
    context = event.get("context") or {}
    request_id = context.get("request_id")
    links = []
    if trace_id:
        links.append(
            Html('<a href="{}">trace {}</a>').format(
                view.link(f"/traces/{trace_id}"), str(trace_id)[:16]
            )
        )
    if request_id:
        ts = float(event.get("timestamp", view.now))
        links.append(
            Html('<a href="{}">logs of request {}</a>').format(
                view.link("/logs", request_id=request_id, range="15m", end=f"{ts + 300:.0f}"),
                str(request_id)[:12],
            )
        )
    body = join(
        [
            Html('<p class="event-meta">{} · event <code>{}</code> · {} {}</p>').format(
                full_time(float(event.get("timestamp", 0))),
                event.get("event_id", ""),
                event.get("release") or "",
                join(links, " · "),
            ),
            crash_html,
            chain,
            _breadcrumbs(event),
            Html('<div class="columns">{}{}</div>').format(
                _pairs_table("Tags", event.get("tags") or {}),
                _pairs_table("User", event.get("user") or {}),
            ),
            _pairs_table("Context", context),
        ]
    )
    return section("Event", body, anchor="event")


def _crash_frame(exceptions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The innermost in-app frame of the innermost exception (else its innermost frame)."""
    if not exceptions:
        return None
    frames = [f for f in exceptions[-1].get("frames") or [] if isinstance(f, dict)]
    in_app = [f for f in frames if f.get("in_app")]
    chosen = in_app or frames
    return chosen[-1] if chosen else None


def _exception_block(exc: dict[str, Any]) -> Html:
    frames = [f for f in exc.get("frames") or [] if isinstance(f, dict)]
    frames.reverse()  # the crash site first
    in_app = [f for f in frames if f.get("in_app")]
    library = [f for f in frames if not f.get("in_app")]
    shown = in_app or library
    hidden = library if in_app else []
    rendered = join(_frame(f) for f in shown)
    if hidden:
        rendered = join(
            [
                rendered,
                Html(
                    '<details class="library"><summary>{} library frames</summary>{}</details>'
                ).format(len(hidden), join(_frame(f) for f in hidden)),
            ]
        )
    note = (
        "in-app frames first, crash site on top"
        if in_app
        else "no in-app frames; crash site on top"
    )
    return Html(
        '<div class="exception"><h3>{}: <span>{}</span></h3><p class="hint">{}</p>'
        '<ol class="frames">{}</ol></div>'
    ).format(exc.get("type", "Exception"), exc.get("value", ""), note, rendered)


def _frame(frame: dict[str, Any]) -> Html:
    variables = frame.get("vars")
    vars_html = Html("")
    if isinstance(variables, dict) and variables:
        vars_html = Html("<details><summary>locals</summary>{}</details>").format(
            _pairs_table("", variables)
        )
    return Html(
        '<li class="frame{}"><span class="fn">{}</span> <span class="loc">{}:{}</span>'
        "<pre><code>{}</code></pre>{}</li>"
    ).format(
        " in-app" if frame.get("in_app") else "",
        frame.get("function", "?"),
        frame.get("filename") or frame.get("module", "?"),
        frame.get("lineno", "?"),
        frame.get("context_line") or "",
        vars_html,
    )


def _breadcrumbs(event: dict[str, Any]) -> Html:
    crumbs = [c for c in event.get("breadcrumbs") or [] if isinstance(c, dict)]
    if not crumbs:
        return Html('<h3>Breadcrumbs</h3><p class="empty">No breadcrumbs.</p>')
    crash_ts = float(event.get("timestamp", 0.0))
    items = join(
        Html(
            '<li class="crumb level-{}"><span class="offset" title="{}">{}</span>'
            '<span class="category">{}</span><span class="msg">{}</span>{}</li>'
        ).format(
            c.get("level", "info"),
            full_time(_ts(c, crash_ts)),
            _offset(_ts(c, crash_ts) - crash_ts),
            c.get("category", ""),
            c.get("message", ""),
            Html('<code class="data">{}</code>').format(_compact(c["data"]))
            if c.get("data")
            else Html(""),
        )
        for c in crumbs
    )
    return Html(
        "<h3>Breadcrumbs <small>{} before the crash, oldest first</small></h3>"
        '<ol class="breadcrumbs">{}<li class="crumb crash-point"><span class="offset">0 ms</span>'
        '<span class="category">error</span><span class="msg">{}</span></li></ol>'
    ).format(len(crumbs), items, event.get("title", "the error"))


def _ts(crumb: dict[str, Any], default: float) -> float:
    value = crumb.get("timestamp")
    return float(value) if isinstance(value, (int, float)) else default


def _offset(seconds: float) -> str:
    ms = seconds * 1000
    if abs(ms) >= 1000:
        return f"{ms / 1000:+.2f} s"
    return f"{ms:+.0f} ms"


def _compact(data: Any) -> str:
    if isinstance(data, dict):
        return " ".join(f"{k}={v}" for k, v in data.items())
    return str(data)


def _pairs_table(title: str, pairs: dict[str, Any]) -> Html:
    if not pairs:
        return (
            Html("")
            if not title
            else Html('<div><h3>{}</h3><p class="empty">none</p></div>').format(title)
        )
    rows = join(
        Html("<tr><th>{}</th><td>{}</td></tr>").format(
            k, v if isinstance(v, str) else json.dumps(v)
        )
        for k, v in pairs.items()
    )
    heading = Html("<h3>{}</h3>").format(title) if title else Html("")
    return Html('<div>{}<table class="pairs"><tbody>{}</tbody></table></div>').format(heading, rows)
