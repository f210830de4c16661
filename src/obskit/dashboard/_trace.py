"""The trace view: one request's spans as a waterfall, with its log records in order."""

from __future__ import annotations

from typing import Any

from obskit.dashboard._html import Html, duration, full_time, join
from obskit.dashboard._layout import Page, View, facts, notice, section
from obskit.dashboard._logs import log_rows
from obskit.signals import SpanRecord
from obskit.store import Store

__all__ = ["trace_page"]

_MAX_SPANS = 2000


def trace_page(store: Store, view: View, trace_id: str) -> Page:
    """The spans of ``trace_id`` nested under their parents, scaled on one time axis."""
    spans = sorted(store.spans(trace_id=trace_id, limit=_MAX_SPANS), key=lambda s: s.timestamp)
    records = list(reversed(store.logs(trace_id=trace_id, limit=1000)))
    if not spans and not records:
        body = notice(
            Html(
                "No spans or log records of trace <code>{}</code> in this store. "
                '<a href="{}">Back to the overview</a>.'
            ).format(trace_id, view.link("/")),
            kind="warn",
        )
        return Page("Unknown trace", body, 404, ranged=False)
    start = min([s.timestamp for s in spans] + [r.timestamp for r in records])
    end = max([s.timestamp + s.duration_ms / 1000 for s in spans] + [r.timestamp for r in records])
    errors = _errors_of(store, view, trace_id, start, end)
    root = next((s for s in spans if s.parent_span_id is None), spans[0] if spans else None)
    title = root.name if root else f"trace {trace_id[:16]}"
    head = Html('<section class="card"><h1>{}</h1>{}</section>').format(
        title,
        facts(
            [
                ("trace", Html("<code>{}</code>").format(trace_id)),
                ("started", full_time(start)),
                ("duration", duration((end - start) * 1000)),
                ("spans", len(spans)),
                ("log records", len(records)),
                ("errors", join(errors, ", ") or "none"),
            ]
        ),
    )
    parts = [
        head,
        section("Waterfall", _waterfall(spans, start, end), note="click a span for detail"),
    ]
    parts.append(
        section(
            "Log records",
            log_rows(records, view, origin=start),
            note="in order, offset from the trace start",
        )
    )
    return Page(title, join(parts), ranged=False)


def _errors_of(store: Store, view: View, trace_id: str, start: float, end: float) -> list[Html]:
    if not store.has_table("errors"):
        return []
    rows = store.query(
        "SELECT DISTINCT fingerprint, title FROM errors WHERE ts >= ? AND ts <= ? AND trace_id = ?",
        (start - 60.0, end + 60.0, trace_id),
    )
    return [
        Html('<a href="{}">{}</a>').format(view.link(f"/errors/{fp}"), title or fp)
        for fp, title in rows
    ]


def _waterfall(spans: list[SpanRecord], start: float, end: float) -> Html:
    if not spans:
        return Html('<p class="empty">No spans stored for this trace.</p>')
    span_s = (end - start) or 1e-6
    depth = _depths(spans)
    ordered = _tree_order(spans)
    rows = []
    for span in ordered:
        left = (span.timestamp - start) / span_s * 100
        width = max(0.3, span.duration_ms / 1000 / span_s * 100)
        rows.append(
            Html(
                '<details class="span-row status-{}"><summary><span class="name depth-{}">'
                '{}</span><svg class="track" viewBox="0 0 100 10" preserveAspectRatio="none" '
                'aria-hidden="true"><rect class="bar" x="{}" y="1" width="{}" height="8"/></svg>'
                '<span class="dur">{}</span></summary>{}</details>'
            ).format(
                span.status,
                min(depth.get(span.span_id, 0), 12),
                span.name,
                f"{left:.2f}",
                f"{min(width, 100 - left):.2f}",
                duration(span.duration_ms),
                _span_detail(span, start),
            )
        )
    return Html('<div class="waterfall">{}</div>').format(join(rows))


def _span_detail(span: SpanRecord, start: float) -> Html:
    facts: dict[str, Any] = {
        "span id": span.span_id,
        "kind": span.span_kind,
        "status": span.status + (f" ({span.status_message})" if span.status_message else ""),
        "starts at": f"+{(span.timestamp - start) * 1000:.1f} ms",
        **span.attributes,
    }
    rows = join(Html("<tr><th>{}</th><td>{}</td></tr>").format(k, v) for k, v in facts.items())
    events = join(
        Html("<li><b>{}</b> {}</li>").format(
            e.get("name", ""), e.get("attributes", {}).get("exception.message", "")
        )
        for e in span.events
        if isinstance(e, dict)
    )
    return Html('<table class="pairs"><tbody>{}</tbody></table>{}').format(
        rows, Html('<ul class="span-events">{}</ul>').format(events) if span.events else Html("")
    )


def _depths(spans: list[SpanRecord]) -> dict[str, int]:
    parents = {s.span_id: s.parent_span_id for s in spans}
    depth: dict[str, int] = {}
    for span in spans:
        level, current, seen = 0, span.parent_span_id, set()
        while current in parents and current not in seen:
            seen.add(current)
            level += 1
            current = parents[current]
        depth[span.span_id] = level
    return depth


def _tree_order(spans: list[SpanRecord]) -> list[SpanRecord]:
    """Parents before their children, siblings by start time (orphans at the top level)."""
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = {}
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children.setdefault(parent, []).append(span)
    out: list[SpanRecord] = []
    stack = list(reversed(children.get(None, [])))
    seen: set[str] = set()
    while stack:
        span = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        out.append(span)
        stack.extend(reversed(children.get(span.span_id, [])))
    return out
