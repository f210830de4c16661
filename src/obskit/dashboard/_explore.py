"""The metrics explorer: any stored metric, split or filtered by label, aggregated per slot."""

from __future__ import annotations

import json
from typing import Any

from obskit.dashboard._html import Html, join, number
from obskit.dashboard._layout import Page, View, notice, section
from obskit.dashboard._queries import RECORDINGS, series_labels
from obskit.dashboard._svg import Series, line_chart
from obskit.store import Store

__all__ = ["AGGREGATIONS", "explore_page", "metric_names"]

#: Aggregation name -> what it shows per slot.
AGGREGATIONS = {
    "mean": "mean of the recorded values",
    "sum": "sum of the recorded values",
    "rate": "recorded values per second (sum / slot length)",
    "count": "number of recordings",
    "min": "smallest value",
    "max": "largest value",
    "last": "last value (gauges)",
}
_MAX_SERIES = 50
_MAX_LINES = 8


def metric_names(store: Store) -> list[tuple[str, str, str]]:
    """(name, type, unit) of every stored metric: an index skip-scan, not a table scan."""
    if not store.has_table("metric_rollups"):
        return []
    rows = store.query(
        "WITH RECURSIVE names(name) AS (SELECT min(name) FROM metric_rollups UNION ALL "
        "SELECT (SELECT min(name) FROM metric_rollups WHERE name > names.name) FROM names "
        "WHERE names.name IS NOT NULL) SELECT name FROM names WHERE name IS NOT NULL LIMIT 1000"
    )
    out = []
    for (name,) in rows:
        kind, unit = store.query(
            "SELECT metric_type, unit FROM metric_rollups WHERE name = ? LIMIT 1", (name,)
        )[0]
        out.append((name, kind or "", unit or ""))
    return out


def explore_page(store: Store, view: View, rest: str) -> Page:
    """Pick a metric, a label to split by, a filter and an aggregation."""
    names = metric_names(store)
    if not names:
        body = section(
            "Metrics",
            Html(
                '<p class="empty">No metrics stored yet. Metrics reach the '
                "store through the SQLite exporter's per-minute rollups."
                "</p>"
            ),
        )
        return Page("Metrics", body, nav="explore")
    p = view.params
    name = p.get("metric") or ""
    if name not in {n for n, _, _ in names}:
        name = names[0][0]
    kind, unit = next((k, u) for n, k, u in names if n == name)
    aggregation = p.get("agg") or ""
    if aggregation not in AGGREGATIONS:
        aggregation = _default_aggregation(kind)
    all_series = [(text, _labels(text)) for text in series_labels(store, name, _MAX_SERIES * 4)]
    keys = sorted({k for _, labels in all_series for k in labels})
    split = p.get("by") or ""
    if split not in keys:
        split = ""
    wanted = _matchers(p.get("where", ""))
    chosen = [
        (t, lb) for t, lb in all_series if all(str(lb.get(k)) == v for k, v in wanted.items())
    ]
    groups = _aggregate(store, name, chosen[:_MAX_SERIES], split, aggregation, view)
    notices = []
    if len(chosen) > _MAX_SERIES:
        notices.append(
            notice(
                f"{len(chosen)} series match; the first {_MAX_SERIES} are shown. "
                "Filter by a label to narrow them.",
                kind="warn",
            )
        )
    if p.get("where") and not wanted:
        notices.append(notice("Filters look like key=value, comma separated.", kind="warn"))
    ranked = sorted(groups.items(), key=lambda item: -_total(item[1]))
    window = view.window
    chart = line_chart(
        [
            Series(label or name, points, tone=i % 8)
            for i, (label, points) in enumerate(ranked[:_MAX_LINES])
        ],
        start=window.start,
        end=window.end,
        step_s=window.step,
        height=300,
        width=1200,
        label=f"{aggregation} of {name}",
    )
    legend = Html('<span class="legend">{}</span>').format(
        join(
            Html('<i class="key tone-{}"></i>{}').format(i % 8, label or name)
            for i, (label, _) in enumerate(ranked[:_MAX_LINES])
        )
    )
    rows = join(
        Html('<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>').format(
            label or "(all)", number(_summary(points, "min")), number(_summary(points, "max"))
        )
        for label, points in ranked
    )
    table = Html(
        '<table class="series"><thead><tr><th>{}</th><th class="num">lowest</th>'
        '<th class="num">highest</th></tr></thead><tbody>{}</tbody></table>'
    ).format(split or "series", rows)
    figure = Html("<figure><figcaption><b>{}</b> {} · {} {}</figcaption>{}</figure>").format(
        name, unit, AGGREGATIONS[aggregation], legend, chart
    )
    body = join(
        [
            _form(view, names, name, keys, split, aggregation),
            section(name, join([figure, table]), note=f"{kind} · {len(chosen)} series"),
        ]
    )
    return Page("Metrics", body, nav="explore", notices=notices)


def _default_aggregation(kind: str) -> str:
    return {"counter": "rate", "sum": "rate", "gauge": "last"}.get(kind, "mean")


def _aggregate(
    store: Store,
    name: str,
    series: list[tuple[str, dict[str, Any]]],
    split: str,
    aggregation: str,
    view: View,
) -> dict[str, list[tuple[float, float | None]]]:
    window = view.window
    slots = window.slots
    acc: dict[str, list[list[float]]] = {}
    for text, labels in series:
        group = f"{split}={labels.get(split, '')}" if split else ""
        cells = acc.setdefault(group, [_empty_cell() for _ in range(slots)])
        own = [_empty_cell() for _ in range(slots)]
        bounds = (window.start, window.step, name, text, window.start - 59.0, window.end)
        # per slot in SQL: one row per slot comes back, not one per minute
        for slot, count, total, low, high in store.query(
            "SELECT CAST((minute - ?) / ? AS INTEGER), "
            f"{RECORDINGS}, sum(sum), min(coalesce(min, sum)), max(coalesce(max, sum)) "
            "FROM metric_rollups WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? "
            "GROUP BY 1",
            bounds,
        ):
            own[_clamp(slot, slots)][:4] = [count, total, low, high]
        if aggregation == "last":  # the last value of the slot's newest minute
            for slot, last, _ in store.query(
                "SELECT CAST((minute - ?) / ? AS INTEGER), coalesce(last, sum), max(last_ts) "
                "FROM metric_rollups "
                "WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? GROUP BY 1",
                bounds,
            ):
                own[_clamp(slot, slots)][4] = last
        for cell, mine in zip(cells, own, strict=True):
            if mine[0]:  # a group's last value is the sum of its series' last values
                cell[0] += mine[0]
                cell[1] += mine[1]
                cell[2] = min(cell[2], mine[2])
                cell[3] = max(cell[3], mine[3])
                cell[4] += mine[4]
    times = window.slot_times()
    return {
        group: [
            (ts, _value(cell, aggregation, window.step))
            for ts, cell in zip(times, cells, strict=True)
        ]
        for group, cells in acc.items()
    }


def _clamp(slot: int, slots: int) -> int:
    return min(slots - 1, max(0, slot))


def _empty_cell() -> list[float]:
    """count, sum, min, max, last, time of last."""
    return [0.0, 0.0, float("inf"), float("-inf"), 0.0, float("-inf")]


def _value(cell: list[float], aggregation: str, step: float) -> float | None:
    count, total, low, high, last, _ = cell
    if not count:
        return None
    return {
        "mean": total / count,
        "sum": total,
        "rate": total / step,
        "count": count,
        "min": low,
        "max": high,
        "last": last,
    }[aggregation]


def _total(points: list[tuple[float, float | None]]) -> float:
    return sum(abs(v) for _, v in points if v is not None)


def _summary(points: list[tuple[float, float | None]], how: str) -> float | None:
    values = [v for _, v in points if v is not None]
    if not values:
        return None
    return min(values) if how == "min" else max(values)


def _labels(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _matchers(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def _form(
    view: View,
    names: list[tuple[str, str, str]],
    name: str,
    keys: list[str],
    split: str,
    aggregation: str,
) -> Html:
    def options(values: list[tuple[str, str]], current: str) -> Html:
        return join(
            Html('<option value="{}"{}>{}</option>').format(
                value, Html(" selected") if value == current else Html(""), label
            )
            for value, label in values
        )

    hidden = join(
        Html('<input type="hidden" name="{}" value="{}">').format(k, view.params[k])
        for k in ("range", "end", "refresh")
        if view.params.get(k)
    )
    return Html(
        '<form class="card filters" method="get" action="{}">{}'
        '<label>Metric <select name="metric">{}</select></label>'
        '<label>Split by <select name="by">{}</select></label>'
        '<label class="grow">Only <input name="where" value="{}" placeholder="key=value, ...">'
        '</label><label>Aggregation <select name="agg">{}</select></label>'
        '<button type="submit">Show</button></form>'
    ).format(
        view.prefix + "/explore",
        hidden,
        options([(n, f"{n} ({k})" if k else n) for n, k, _ in names], name),
        options([("", "nothing"), *((k, k) for k in keys)], split),
        view.params.get("where", ""),
        options([(a, a) for a in AGGREGATIONS], aggregation),
    )
