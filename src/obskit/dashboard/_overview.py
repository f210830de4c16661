"""The overview page: requests per route, top error groups, health, alerts, anomalies."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from obskit.dashboard import _latency
from obskit.dashboard._html import (
    Html,
    ago,
    clock_time,
    duration,
    full_time,
    in_unit,
    join,
    number,
    size,
)
from obskit.dashboard._layout import Page, View, notice, section
from obskit.dashboard._queries import (
    AlertHistory,
    AnomalySeries,
    CheckHistory,
    GroupSummary,
    Window,
    alert_histories,
    anomaly_series,
    check_histories,
    top_error_groups,
)
from obskit.dashboard._svg import (
    Marker,
    Segment,
    Series,
    line_chart,
    sparkline,
    state_class,
    timeline,
)
from obskit.store import Store

__all__ = ["overview_page", "segments_of"]


def overview_page(store: Store, view: View, rest: str) -> Page:
    """Everything at a glance over the chosen window."""
    window = view.window
    routes = _latency.route_stats(store, window, view.params.get("route"))
    groups = top_error_groups(store, window)
    checks, overall = check_histories(store, window)
    alerts = alert_histories(store, window)
    anomalies = anomaly_series(store, window)
    notices = []
    if not store.has_table("logs"):
        notices.append(notice("This store holds no signals yet: nothing has been written to it."))
    elif not (routes or groups or checks or alerts or anomalies):
        notices.append(_nothing_in_window(store, view))
    body = join(
        [
            _tiles(routes, groups, overall, alerts),
            _requests(routes, view),
            _errors(groups, view),
            Html('<div class="columns">{}{}</div>').format(
                _health(checks, overall, window), _alerts(alerts, view)
            ),
            _anomalies(anomalies, window),
        ]
    )
    return Page("Overview", body, nav="overview", notices=notices)


def _nothing_in_window(store: Store, view: View) -> Html:
    newest = store.query("SELECT max(ts) FROM logs")[0][0] if store.has_table("logs") else None
    if newest is None:
        return notice("This store holds no log records, requests or errors yet.")
    return notice(
        Html(
            "Nothing happened in the last {}. The newest record is from {} ({}): "
            '<a href="{}">show the {} up to it</a>.'
        ).format(
            view.window.name,
            full_time(newest),
            ago(newest, view.now),
            view.here(end=f"{newest + 1:.0f}"),
            view.window.name,
        )
    )


# -- tiles -------------------------------------------------------------------------------------


def _tiles(
    routes: list[_latency.RouteStats],
    groups: list[GroupSummary],
    overall: list[str | None],
    alerts: list[AlertHistory],
) -> Html:
    requests = sum(r.count for r in routes)
    failed = sum(r.errors for r in routes)
    firing = sum(1 for a in alerts if a.state == "firing")
    status = next((s for s in reversed(overall) if s), None)
    tiles = [
        ("requests", number(requests), "", ""),
        ("error ratio", f"{failed / requests:.1%}" if requests else "-", "", ""),
        ("error events", number(sum(g.in_window for g in groups)), f"{len(groups)} groups", ""),
        ("health", status or "-", "", state_class(status or "")),
        ("alerts firing", str(firing), f"{len(alerts)} with activity", "firing" if firing else ""),
    ]
    return Html('<div class="tiles">{}</div>').format(
        join(
            Html(
                '<div class="tile {}"><span class="label">{}</span>'
                '<span class="value">{}</span><span class="sub">{}</span></div>'
            ).format(f"state-{tone}" if tone else "", label, value, sub)
            for label, value, sub, tone in tiles
        )
    )


# -- requests ----------------------------------------------------------------------------------


def _requests(routes: list[_latency.RouteStats], view: View) -> Html:
    window = view.window
    if not routes:
        return section("Requests", Html('<p class="empty">No requests in this window.</p>'))
    chosen = next((r for r in routes if r.route == view.params.get("route")), routes[0])
    times = chosen.times
    latency = line_chart(
        [
            Series(
                label,
                [(ts, q[i]) for ts, q in zip(times, chosen.slot_quantiles_ms, strict=True)],
                tone=i,
            )
            for i, label in enumerate(("p50", "p95", "p99"))
        ],
        start=window.start,
        end=window.end,
        fmt=duration,
        step_s=chosen.step_s,
        label=f"latency of {chosen.route}: p50, p95, p99",
    )
    per_s = chosen.step_s
    traffic = line_chart(
        [
            Series(
                "requests/s",
                [(ts, c / per_s) for ts, c in zip(times, chosen.slot_counts, strict=True)],
                tone=0,
                bars=True,
            ),
            Series(
                "errors/s",
                [(ts, e / per_s) for ts, e in zip(times, chosen.slot_errors, strict=True)],
                tone=3,
                bars=True,
            ),
        ],
        start=window.start,
        end=window.end,
        fmt=_rate,
        step_s=chosen.step_s,
        label=f"requests and errors per second of {chosen.route}",
    )
    rows = join(
        Html(
            '<tr{}><td><a href="{}">{}</a></td><td class="num">{}</td><td class="num">{}</td>'
            '<td class="num {}">{}</td><td class="num">{}</td><td class="num">{}</td>'
            '<td class="num">{}</td><td>{}</td></tr>'
        ).format(
            Html(' class="chosen"') if r is chosen else Html(""),
            view.here(route=r.route),
            r.route,
            number(r.count),
            _rate(r.count / (window.end - window.start)) + "/s",
            "bad" if r.error_ratio >= 0.05 else "",
            f"{r.error_ratio:.1%}",
            *(duration(q) for q in r.quantiles_ms),
            sparkline([float(c) for c in r.slot_counts], label=f"traffic of {r.route}"),
        )
        for r in routes[:12]
    )
    table = Html(
        '<table class="routes"><thead><tr><th>Route</th><th class="num">Requests</th>'
        '<th class="num">Rate</th><th class="num">Errors</th><th class="num">p50</th>'
        '<th class="num">p95</th><th class="num">p99</th><th>Traffic</th></tr></thead>'
        "<tbody>{}</tbody></table>"
    ).format(rows)
    charts = Html(
        '<div class="columns"><figure><figcaption>Latency of <b>{}</b> {}</figcaption>{}</figure>'
        "<figure><figcaption>Requests and errors per second {}</figcaption>{}</figure></div>"
    ).format(
        chosen.route,
        _legend(["p50", "p95", "p99"]),
        latency,
        _legend(["requests/s", "errors/s"], tones=[0, 3]),
        traffic,
    )
    return section(
        "Requests",
        join([table, charts]),
        note="from the request duration histograms · click a route to chart it",
        anchor="requests",
    )


def _rate(value: float) -> str:
    return number(value, 2)


def _legend(labels: list[str], tones: list[int] | None = None) -> Html:
    return Html('<span class="legend">{}</span>').format(
        join(
            Html('<i class="key tone-{}"></i>{}').format(tone, label)
            for label, tone in zip(labels, tones or range(len(labels)), strict=True)
        )
    )


# -- errors ------------------------------------------------------------------------------------


def _errors(groups: list[GroupSummary], view: View) -> Html:
    if not groups:
        return section("Error groups", Html('<p class="empty">No errors in this window.</p>'))
    rows = join(
        Html(
            '<tr><td class="title"><a href="{}">{}</a>{}<small>{}</small></td>'
            '<td class="num">{}<small>{} total</small></td><td class="num">{}</td><td>{}</td>'
            '<td title="{}">{}</td><td title="{}">{}</td></tr>'
        ).format(
            view.link(f"/errors/{g.fingerprint}"),
            g.title,
            _badges(g, view.window),
            g.culprit,
            number(g.in_window),
            number(g.total),
            f"{g.users}+" if g.users_capped else str(g.users),
            sparkline([float(c) for c in g.counts], label=f"events of {g.title}"),
            full_time(g.first_seen),
            ago(g.first_seen, view.now),
            full_time(g.last_seen),
            ago(g.last_seen, view.now),
        )
        for g in groups
    )
    table = Html(
        '<table class="groups"><thead><tr><th>Error</th><th class="num">Events</th>'
        '<th class="num">Users</th><th>Trend</th><th>First seen</th><th>Last seen</th></tr>'
        "</thead><tbody>{}</tbody></table>"
    ).format(rows)
    return section("Error groups", table, note="most events in this window first", anchor="errors")


def _badges(group: GroupSummary, window: Window) -> Html:
    badges = []
    if group.regressed:
        badges.append(
            Html(
                '<span class="badge regressed" title="seen again after it was '
                'resolved">regressed</span>'
            )
        )
    if group.first_seen >= window.start:
        badges.append(Html('<span class="badge new" title="first seen in this window">new</span>'))
    return join(badges)


# -- health ------------------------------------------------------------------------------------


def segments_of(states: list[str | None], window: Window, label: str = "") -> list[Segment]:
    """Runs of equal states per slot as segments (``None`` slots are left out)."""
    segments: list[Segment] = []
    for i, state in enumerate(states):
        if state is None:
            continue
        start = window.start + i * window.step
        last = segments[-1] if segments else None
        if last is not None and last.state == state and abs(last.end - start) < 1e-6:
            segments[-1] = Segment(last.start, start + window.step, state, last.title)
        else:
            segments.append(Segment(start, start + window.step, state, f"{label} {state}".strip()))
    return [
        Segment(s.start, s.end, s.state, f"{s.title}: {clock_time(s.start)} - {clock_time(s.end)}")
        for s in segments
    ]


def _health(checks: list[CheckHistory], overall: list[str | None], window: Window) -> Html:
    if not checks:
        return section("Health checks", Html('<p class="empty">No health reports stored.</p>'))
    rows = [_health_row("overall", overall, window, Html(""), bold=True)]
    for check in checks:
        result = check.latest
        detail = Html("{}{}").format(
            _observed(result),
            Html(' <span class="output">{}</span>').format(result["output"])
            if result.get("output")
            else Html(""),
        )
        rows.append(_health_row(check.name, check.slots, window, detail))
    body = Html('<table class="health"><tbody>{}</tbody></table>').format(join(rows))
    return section("Health checks", body, note="worst status per slot", anchor="health")


def _health_row(
    name: str, states: list[str | None], window: Window, detail: Html, bold: bool = False
) -> Html:
    current = next((s for s in reversed(states) if s), "unknown")
    return Html(
        '<tr{}><th scope="row">{}</th><td><span class="badge state-{}">{}</span></td>'
        '<td class="wide">{}</td><td class="detail">{}</td></tr>'
    ).format(
        Html(' class="overall"') if bold else Html(""),
        name,
        state_class(current),
        current,
        timeline(
            segments_of(states, window, name),
            start=window.start,
            end=window.end,
            label=f"status of {name} over time",
        ),
        detail,
    )


def _observed(result: dict[str, Any]) -> str:
    value, unit = result.get("observedValue"), result.get("observedUnit", "")
    if value is None:
        return ""
    if unit == "bytes" and isinstance(value, (int, float)):
        return size(float(value))
    return f"{number(value) if isinstance(value, (int, float)) else value} {unit}".strip()


# -- alerts ------------------------------------------------------------------------------------


def _alerts(alerts: list[AlertHistory], view: View) -> Html:
    if not alerts:
        return section("Alerts", Html('<p class="empty">No alert activity in this window.</p>'))
    window = view.window
    rows = []
    for alert in alerts[:12]:
        segments = []
        for i, (ts, state, value) in enumerate(alert.changes):
            until = (
                alert.changes[i + 1][0] if i + 1 < len(alert.changes) else min(view.now, window.end)
            )
            if state == "resolved" and i + 1 == len(alert.changes):
                until = ts  # a resolved alert is an instant, not a state that lasts
            segments.append(
                Segment(
                    max(ts, window.start),
                    until,
                    state_class(state),
                    f"{state} at {full_time(ts)} (value {number(value)})",
                )
            )
        history = join(
            Html('<li><span class="badge state-{}">{}</span> {}{}</li>').format(
                state_class(state),
                state,
                clock_time(ts, span_s=window.end - window.start),
                Html(" <small>value {}</small>").format(number(value))
                if value is not None
                else Html(""),
            )
            for ts, state, value in alert.changes[-6:]
        )
        labels = ", ".join(
            f"{k}={v}" for k, v in alert.labels.items() if k not in ("alertname", "severity")
        )
        rows.append(
            Html(
                '<tr><th scope="row">{}<small>{}</small><small>{}</small></th>'
                '<td><span class="badge state-{}">{}</span><small>{}</small></td>'
                '<td class="wide">{}<ol class="changes">{}</ol></td></tr>'
            ).format(
                alert.rule,
                labels,
                alert.summary,
                state_class(alert.state),
                alert.state,
                alert.severity,
                timeline(
                    segments, start=window.start, end=window.end, label=f"states of {alert.rule}"
                ),
                history,
            )
        )
    body = Html('<table class="alerts"><tbody>{}</tbody></table>').format(join(rows))
    return section("Alerts", body, note="state history", anchor="alerts")


# -- anomalies ---------------------------------------------------------------------------------


def _anomalies(found: list[AnomalySeries], window: Window) -> Html:
    if not found:
        return section(
            "Anomalies", Html('<p class="empty">No anomalies flagged in this window.</p>')
        )
    figures = []
    for series in found:
        show = in_unit(series.unit)
        markers = [
            Marker(
                float(f.get("timestamp", 0.0)),
                float(f.get("value", 0.0)),
                f"{full_time(float(f.get('timestamp', 0.0)))}: {_shown(show, f.get('value'))} "
                f"(expected {_shown(show, f.get('lower'))} to {_shown(show, f.get('upper'))}, "
                f"score {number(f.get('score'))})",
                lower=_num(f.get("lower")),
                upper=_num(f.get("upper")),
                expected=_num(f.get("expected")),
            )
            for f in series.flagged
        ]
        has_values = any(v is not None for _, v in series.points)
        chart = line_chart(
            [Series("mean", series.points, tone=0)] if has_values else [],
            start=window.start,
            end=window.end,
            markers=markers,
            step_s=window.step,
            fmt=show,
            label=f"{series.metric} with {len(markers)} anomalies",
        )
        labels = json.dumps(series.labels, sort_keys=True) if series.labels else ""
        figures.append(
            Html(
                "<figure><figcaption><b>{}</b> {} <small>{} flagged by {}</small> {}"
                "</figcaption>{}</figure>"
            ).format(
                series.metric,
                labels,
                len(markers),
                series.detector or "a detector",
                Html(
                    '<span class="legend"><i class="key tone-0"></i>mean per slot'
                    '<i class="key anomaly"></i>anomaly<i class="key band"></i>'
                    "expected band</span>"
                ),
                chart,
            )
        )
    body = Html('<div class="grid2">{}</div>').format(join(figures))
    return section(
        "Anomalies", body, note="flagged points with the detector's band", anchor="anomalies"
    )


def _shown(show: Callable[[float], str], value: Any) -> str:
    return show(float(value)) if isinstance(value, (int, float)) else "-"


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None
