"""Reading the store in-process: ``query`` (one number) and ``histogram_quantile``.

``query(name, aggregation, window_s, **matchers)`` answers as PromQL would on the same data:
over the series whose labels equal ``matchers``, ``sum`` of a counter is
``sum(increase(name[window]))`` (the total since start without ``window_s``), ``rate`` is that
divided by the window, ``p95`` of a histogram is ``histogram_quantile(0.95, sum by (le) ...)``
from its buckets. A window is read against the collection history the periodic reader keeps
(its resolution is ``metrics_interval_s``, as a Prometheus query's is the scrape interval).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from obskit.diagnostics import ConfigError
from obskit.metrics.instruments import MetricData, SeriesData
from obskit.metrics.store import MetricsStore

__all__ = ["AGGREGATIONS", "histogram_quantile", "query_store"]

#: What ``query`` computes (``pNN`` is any percentile: p50, p95, p99.9).
AGGREGATIONS = ("sum", "count", "rate", "avg", "min", "max", "last", "p50", "p90", "p95", "p99")
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


def histogram_quantile(q: float, bounds: Sequence[float], counts: Sequence[float]) -> float | None:
    """The ``q`` quantile of bucketed samples, as Prometheus' ``histogram_quantile``.

    ``counts`` are per bucket (not cumulative), one per bound plus +Inf. Linear interpolation
    inside the bucket holding the rank; the first bucket starts at 0; a rank in the +Inf bucket
    gives the highest finite bound. ``None`` without samples.

    >>> histogram_quantile(0.5, [1.0, 2.0, 4.0], [0, 10, 10, 0])
    2.0
    >>> histogram_quantile(0.95, [1.0, 2.0, 4.0], [0, 10, 10, 0])
    3.8
    """
    total = sum(counts)
    if total <= 0 or not bounds:
        return None
    rank = q * total
    cumulative = 0.0
    for index, count in enumerate(counts):
        if cumulative + count >= rank and count > 0:
            if index >= len(bounds):
                return float(bounds[-1])
            upper = float(bounds[index])
            if index == 0:
                if upper <= 0:
                    return upper
                lower = 0.0
            else:
                lower = float(bounds[index - 1])
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return float(bounds[-1])


def percentile(aggregation: str) -> float | None:
    """``0.95`` for ``"p95"``; ``None`` for other aggregations."""
    match = _PERCENTILE.match(aggregation)
    return float(match.group(1)) / 100 if match else None


def query_store(
    store: MetricsStore,
    name: str,
    aggregation: str,
    window_s: float | None,
    matchers: Mapping[str, Any],
) -> float | None:
    """See :func:`obskit.metrics.query`."""
    instrument = store.instruments.get(name)
    if instrument is None:
        return None
    q = percentile(aggregation)
    if q is None and aggregation not in AGGREGATIONS:
        raise ConfigError(
            f"unknown aggregation {aggregation!r}; use one of {', '.join(AGGREGATIONS)} "
            "(or any percentile as pNN)"
        )
    if window_s is not None and window_s <= 0:
        raise ConfigError("window_s must be > 0 (or None: since the start)")
    if aggregation == "rate" and window_s is None:
        raise ConfigError("rate needs window_s (the per-second increase over that window)")
    wanted = {str(k): str(v) for k, v in matchers.items()}
    now = store.clock()
    current = _select(instrument.collect(), wanted)
    kind = instrument.kind
    if kind == "gauge":
        return _gauge(current, aggregation, q)
    if window_s is not None and kind in ("counter", "histogram"):
        old = store.baseline(now - window_s)
        current = _minus(current, _select(old.get(name), wanted) if old else [])
    if kind == "histogram":
        return _histogram(current, instrument.bounds, aggregation, q, window_s)
    total = sum(s.value for s in current)
    if aggregation in ("sum", "last"):
        return total if current else None
    if aggregation == "rate":
        return total / window_s if window_s else None
    if aggregation == "count":
        return float(len(current))
    values = [s.value for s in current]
    return _reduce(values, aggregation)


def _select(data: MetricData | None, wanted: dict[str, str]) -> list[SeriesData]:
    if data is None:
        return []
    return [s for s in data.series if all(s.labels.get(k) == v for k, v in wanted.items())]


def _minus(current: list[SeriesData], old: list[SeriesData]) -> list[SeriesData]:
    """The increase of each series since the baseline (a series started after it: all of it)."""
    before = {(tuple(sorted(s.labels.items())), s.start): s for s in old}
    out = []
    for series in current:
        base = before.get((tuple(sorted(series.labels.items())), series.start))
        if base is None:
            out.append(series)
            continue
        before_counts = base.bucket_counts
        counts = tuple(a - b for a, b in zip(series.bucket_counts, before_counts, strict=False))
        out.append(
            dataclasses.replace(
                series,
                value=series.value - base.value,
                count=series.count - base.count,
                bucket_counts=counts,
                min=None,
                max=None,
            )
        )
    return out


def _histogram(
    series: list[SeriesData],
    bounds: Sequence[float],
    aggregation: str,
    q: float | None,
    window_s: float | None,
) -> float | None:
    count = sum(s.count for s in series)
    if q is not None:
        merged = [sum(column) for column in zip(*(s.bucket_counts for s in series), strict=False)]
        return histogram_quantile(q, bounds, merged) if merged else None
    if aggregation == "count":
        return float(count)
    if aggregation == "sum":
        return sum(s.value for s in series)
    if aggregation == "rate":  # as the alert rules read it: the sum per second
        return sum(s.value for s in series) / window_s if window_s else None
    if aggregation == "avg":
        return sum(s.value for s in series) / count if count else None
    if aggregation == "min":
        lows = [s.min for s in series if s.min is not None]
        return min(lows) if lows else None
    if aggregation == "max":
        highs = [s.max for s in series if s.max is not None]
        return max(highs) if highs else None
    return None  # "last" means nothing for a distribution


def _gauge(series: list[SeriesData], aggregation: str, q: float | None) -> float | None:
    values = [s.value for s in series]
    if aggregation == "count":
        return float(len(values))
    if aggregation in ("sum", "last"):
        return sum(values) if values else None
    return None if q is not None else _reduce(values, aggregation)


def _reduce(values: list[float], aggregation: str) -> float | None:
    if not values:
        return None
    if aggregation == "avg":
        return sum(values) / len(values)
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    return None
