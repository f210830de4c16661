"""The periodic reader: the store's series, as MetricPoint signals, down the pipeline.

``obskit.init`` starts one (every ``metrics_interval_s``; OpenTelemetry's
``OTEL_METRIC_EXPORT_INTERVAL`` sets the default) and ``obskit.shutdown`` and interpreter exit
run one final collection, so nothing recorded is missing from the exporters. Every exporter
gets the same points: cumulative sums and histograms since each series' start, or deltas since
the previous collection with ``metrics_temporality="delta"`` (or
``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta``: counters and histograms go delta,
up-down counters stay cumulative, as OpenTelemetry's "delta" preference says).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from obskit import diagnostics
from obskit.metrics._periodic import Periodic
from obskit.metrics.instruments import MetricData, SeriesData
from obskit.metrics.store import MetricsStore
from obskit.signals import MetricPoint

__all__ = ["PeriodicReader", "to_points"]

Key = tuple[str, tuple[tuple[str, str], ...]]


class PeriodicReader(Periodic):
    """Collects ``store`` every ``interval_s`` on a daemon thread and emits the points.

    ``collect_once()`` is the whole step (tests and ``shutdown`` call it); ``clock`` stamps the
    points.
    """

    thread_name = "obskit-metrics-reader"

    def __init__(
        self,
        store: MetricsStore,
        emit: Callable[[Any], None],
        *,
        interval_s: float = 60.0,
        service: str = "",
        temporality: str = "cumulative",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(interval_s)
        self.store = store
        self.emit = emit
        self.service = service
        self.temporality = temporality
        self.clock = clock
        self.collections = 0
        self._previous: dict[Key, tuple[float, SeriesData]] = {}
        self._lock = threading.Lock()

    def collect_once(self) -> int:
        """Collect, remember for ``query``, emit a point per series; how many were emitted."""
        with self._lock:
            try:
                now = self.clock()
                collected = self.store.collect()
                self.store.remember(now, collected)
                previous = self._previous if self.temporality == "delta" else None
                points = to_points(collected, now, self.service, previous)
                self.collections += 1
            except Exception as exc:
                diagnostics.report("metrics.reader", f"metric collection failed: {exc!r}")
                return 0
        for point in points:
            self.emit(point)
        return len(points)

    def tick(self) -> None:
        self.collect_once()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self._previous.clear()
        super().after_fork_in_child()


def to_points(
    collected: list[MetricData],
    now: float,
    service: str,
    previous: dict[Key, tuple[float, SeriesData]] | None = None,
) -> list[MetricPoint]:
    """MetricPoints of a collection; with ``previous`` (delta), sums and histograms are the
    change since the last call, and ``previous`` is updated."""
    points = []
    for data in collected:
        kind, bounds = data.kind, list(data.bounds)
        delta = previous is not None and kind in ("counter", "histogram")
        for series in data.series:
            start: float | None = series.start
            before = None
            if delta and previous is not None:
                key = (data.name, tuple(series.labels.items()))
                last = previous.get(key)
                previous[key] = (now, series)
                if last is not None and last[1].start == series.start:
                    start, before = last
            point = MetricPoint(
                timestamp=now,
                name=data.name,
                value=series.value - (before.value if before else 0.0),
                labels=dict(series.labels),
                metric_type=kind,
                unit=data.unit,
                service=service,
                description=data.description,
                start_timestamp=None if kind == "gauge" else start,
                temporality="delta" if delta else "cumulative",
            )
            if kind == "histogram":
                counts = series.bucket_counts
                if before is not None:
                    old = before.bucket_counts
                    counts = tuple(a - b for a, b in zip(counts, old, strict=False))
                point.count = series.count - (before.count if before else 0)
                point.bounds = bounds
                point.bucket_counts = list(counts)
                # per-interval extremes are not kept: a delta point after the first has none
                point.min = series.min if before is None else None
                point.max = series.max if before is None else None
                point.exemplars = _exemplars(series, before)
            points.append(point)
    return points


def _exemplars(series: SeriesData, before: SeriesData | None) -> list[dict[str, Any]]:
    out = []
    old = before.exemplars if before is not None else ()
    for bucket, exemplar in enumerate(series.exemplars):
        if exemplar is None or (bucket < len(old) and old[bucket] == exemplar):
            continue  # a delta point carries only the exemplars of its interval
        out.append(
            {
                "bucket": bucket,
                "value": exemplar.value,
                "timestamp": exemplar.timestamp,
                "trace_id": exemplar.trace_id,
                "span_id": exemplar.span_id,
            }
        )
    return out
