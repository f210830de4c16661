"""The metrics explorer: any stored metric, split or filtered by label, aggregated per slot."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from obskit.dashboard._html import Html, in_unit, join
from obskit.dashboard._layout import Page, View, notice, section
from obskit.dashboard._queries import series_labels
from obskit.dashboard._svg import Series, line_chart
from obskit.metrics.query import histogram_quantile
from obskit.store import Store

__all__ = ["AGGREGATIONS", "explore_page", "metric_names"]

#: Aggregation name -> what it shows per slot.
AGGREGATIONS = {
    "rate": "per second: a counter's increase, a histogram's samples",
    "sum": "a counter's increase, a histogram's sum of samples",
    "count": "a histogram's samples, or a gauge's collections",
    "mean": "a gauge's mean value, or a histogram's mean sample",
    "min": "smallest value",
    "max": "largest value",
    "last": "latest value (summed over the series split together)",
    "p50": "median, from the histogram's buckets",
    "p95": "95th percentile, from the histogram's buckets",
    "p99": "99th percentile, from the histogram's buckets",
}
_MAX_SERIES = 50
_MAX_LINES = 8


def metric_names(store: Store) -> list[tuple[str, str, str]]:
    """(name, type, unit) of the stored metrics (the first 1,000 by name)."""
    return store.metric_names()[:1000]


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
    known = [n for n, _, _ in names]
    name = p.get("metric") or ""
    if name not in known:  # request latency when there is some, else the first by name
        name = next((n for n in _PREFERRED if n in known), known[0])
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
    groups = _aggregate(store, name, kind, chosen[:_MAX_SERIES], split, aggregation, view)
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
    window = view.window.in_minutes()
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
        fmt=in_unit("" if aggregation in ("rate", "count") else unit),
        label=f"{aggregation} of {name}",
    )
    legend = Html('<span class="legend">{}</span>').format(
        join(
            Html('<i class="key tone-{}"></i>{}').format(i % 8, label or name)
            for i, (label, _) in enumerate(ranked[:_MAX_LINES])
        )
    )
    unit_of = in_unit("" if aggregation in ("rate", "count") else unit)

    def show(value: float | None) -> str:
        return "-" if value is None else unit_of(value)

    rows = join(
        Html('<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td></tr>').format(
            label or "(all)", show(_summary(points, "min")), show(_summary(points, "max"))
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
    return {"counter": "rate", "histogram": "p95", "gauge": "last"}.get(kind, "mean")


@dataclass
class _Cell:
    """One slot of one series (or of a group of series)."""

    points: int = 0
    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf
    last: float | None = None
    buckets: dict[float, int] = field(default_factory=dict)

    def add(self, other: _Cell) -> None:
        self.points += other.points
        self.count += other.count
        self.total += other.total
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)
        if other.last is not None:  # a group's last value: the sum of its series' last values
            self.last = (self.last or 0.0) + other.last
        for le, n in other.buckets.items():
            self.buckets[le] = self.buckets.get(le, 0) + n


def _aggregate(
    store: Store,
    name: str,
    kind: str,
    series: list[tuple[str, dict[str, Any]]],
    split: str,
    aggregation: str,
    view: View,
) -> dict[str, list[tuple[float, float | None]]]:
    window = view.window.in_minutes()
    slots = window.slots
    groups: dict[str, list[_Cell]] = {}
    layout: list[float] = []
    for text, labels in series:
        group = f"{split}={labels.get(split, '')}" if split else ""
        cells = groups.setdefault(group, [_Cell() for _ in range(slots)])
        own = [_Cell() for _ in range(slots)]
        bounds = (window.start, window.step, name, text, window.start - 59.0, window.end)
        # per slot in SQL: one row per slot comes back, not one per minute
        for slot, points, count, total, low, high, shape in store.query(
            "SELECT CAST((minute - ?) / ? AS INTEGER), sum(points), sum(count), sum(sum), "
            "min(min), max(max), max(bounds) FROM metric_rollups "
            "WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? GROUP BY 1",
            bounds,
        ):
            cell = own[_clamp(slot, slots)]
            cell.points, cell.count, cell.total = points, count, total
            cell.low = low if low is not None else math.inf
            cell.high = high if high is not None else -math.inf
            if shape and not layout:
                layout = [float(b) for b in json.loads(shape)]
        if aggregation == "last":  # the slot's newest minute: SQLite takes it with max()
            for slot, last, _ in store.query(
                "SELECT CAST((minute - ?) / ? AS INTEGER), last, max(last_ts) "
                "FROM metric_rollups WHERE name = ? AND labels = ? AND minute >= ? "
                "AND minute < ? GROUP BY 1",
                bounds,
            ):
                own[_clamp(slot, slots)].last = last
        if aggregation in _QUANTILES:
            for slot, le, count in store.query(
                "SELECT CAST((minute - ?) / ? AS INTEGER), le, sum(count) FROM metric_buckets "
                "WHERE name = ? AND labels = ? AND minute >= ? AND minute < ? GROUP BY 1, 2",
                bounds,
            ):
                own[_clamp(slot, slots)].buckets[le] = count
        for cell, mine in zip(cells, own, strict=True):
            cell.add(mine)
    times = window.slot_times()
    return {
        group: [
            (ts, _value(cell, kind, aggregation, window.step, layout))
            for ts, cell in zip(times, cells, strict=True)
        ]
        for group, cells in groups.items()
    }


_QUANTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}
_PREFERRED = ("http.server.request.duration", "obskit.request.duration")


def _clamp(slot: int, slots: int) -> int:
    return min(slots - 1, max(0, slot))


def _value(
    cell: _Cell, kind: str, aggregation: str, step: float, layout: list[float]
) -> float | None:
    histogram = kind == "histogram"
    if not cell.points:
        return None
    if aggregation in _QUANTILES:
        if not histogram or not cell.buckets:
            return None
        bounds = sorted({*layout, *(le for le in cell.buckets if le != math.inf)})
        counts = [cell.buckets.get(le, 0) for le in bounds] + [cell.buckets.get(math.inf, 0)]
        return histogram_quantile(_QUANTILES[aggregation], bounds, counts)
    if aggregation == "rate":
        return (cell.count if histogram else cell.total) / step
    if aggregation == "sum":
        return cell.total
    if aggregation == "count":
        return float(cell.count if histogram else cell.points)
    if aggregation == "mean":
        divisor = cell.count if histogram else cell.points
        return cell.total / divisor if divisor else None
    if aggregation == "min":
        return cell.low if math.isfinite(cell.low) else None
    if aggregation == "max":
        return cell.high if math.isfinite(cell.high) else None
    return cell.last


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
