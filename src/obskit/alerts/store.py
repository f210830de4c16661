"""The series store: metric name -> label set -> running totals and window rings.

It is a :class:`obskit.metrics.MetricSink`: ``obskit.metrics.observe`` calls land here after the
value was checked. A series is created on its first point; it always keeps cheap running
totals (for export as :class:`~obskit.signals.MetricPoint`), and one :class:`Ring` per window
that a rule on its metric needs. A metric without rules costs a dict lookup, a lock and a few
additions per point.

Cardinality guard: at most ``max_series_per_metric`` label sets per metric; points of further
label sets are dropped and counted (``dropped_series``) with one warning per metric, so a label
carrying a user id cannot eat the process's memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from obskit import diagnostics
from obskit.alerts.window import Ring

__all__ = ["Metric", "MetricStore", "Series", "WindowSpec"]

Clock = Callable[[], float]


class WindowSpec(NamedTuple):
    """The shape of a ring: bucket width, bucket count, and sketch accuracy (or None)."""

    width: float
    size: int
    relative_accuracy: float | None = None

    @property
    def window_s(self) -> float:
        return self.width * self.size

    def new_ring(self) -> Ring:
        return Ring(self.width, self.size, relative_accuracy=self.relative_accuracy)


class Series:
    """One label set of one metric."""

    __slots__ = ("count", "first_time", "key", "labels", "last", "last_time", "rings", "total")

    def __init__(self, key: tuple[tuple[str, str], ...], rings: list[Ring]) -> None:
        self.key = key
        self.labels = dict(key)
        self.rings = rings
        self.count = 0
        self.total = 0.0
        self.last = 0.0
        self.last_time = -float("inf")
        self.first_time = float("inf")


class Metric:
    """Every series of one metric name, and the windows rules need on it."""

    __slots__ = (
        "dropped_series",
        "kind",
        "lock",
        "lookup",
        "max_series",
        "name",
        "series",
        "specs",
        "version",
        "watchers",
    )

    def __init__(self, name: str, kind: str, max_series: int) -> None:
        self.name = name
        self.kind = kind
        self.max_series = max_series
        self.lock = threading.Lock()
        #: canonical key and every spelling seen at a call site -> series
        self.lookup: dict[Any, Series] = {}
        self.series: list[Series] = []
        self.specs: list[WindowSpec] = []
        self.watchers: list[int] = []  # how many rules use each spec
        self.version = 0  # bumped when the series list changes
        self.dropped_series = 0

    def resolve(self, labels: Mapping[str, Any]) -> Series | None:
        """The series for ``labels`` (created if allowed), or ``None`` past the guard."""
        key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        with self.lock:
            series = self.lookup.get(key)
            if series is None:
                if len(self.series) >= self.max_series:
                    self.dropped_series += 1
                    diagnostics.report(
                        f"alerts.cardinality.{self.name}",
                        f"metric {self.name!r} reached {self.max_series} series; points of new "
                        "label sets are dropped (raise max_series_per_metric or drop a label)",
                    )
                    return None
                series = Series(key, [spec.new_ring() for spec in self.specs])
                self.lookup[key] = series
                self.series.append(series)
                self.version += 1
            try:
                self.lookup[tuple(labels.items())] = series  # this call site's spelling
            except TypeError:  # an unhashable label value: always go the slow way
                pass
        return series


class MetricStore:
    """Series of every metric seen, with the windows rules asked for."""

    def __init__(self, *, clock: Clock = time.time, max_series_per_metric: int = 1000) -> None:
        if max_series_per_metric < 1:
            raise ValueError("max_series_per_metric must be at least 1")
        self.clock = clock
        self.max_series_per_metric = max_series_per_metric
        self.metrics: dict[str, Metric] = {}
        self.late_points = 0
        self._lock = threading.Lock()

    # -- the sink: called for every point -----------------------------------------------------

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        """Record a gauge or latency sample (``value`` already checked finite)."""
        self._record(name, "gauge", value, labels, timestamp)

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        """Add to a counter (``amount`` already checked finite)."""
        self._record(name, "counter", amount, labels, timestamp)

    def _record(
        self,
        name: str,
        kind: str,
        value: float,
        labels: dict[str, Any],
        timestamp: float | None,
    ) -> None:
        metric = self.metrics.get(name)
        if metric is None:
            metric = self.metric(name, kind)
        elif metric.kind == "untyped":
            metric.kind = kind
        try:
            series = metric.lookup.get(tuple(labels.items()))
        except TypeError:
            series = None
        if series is None:
            series = metric.resolve(labels)
            if series is None:
                return
        now = self.clock() if timestamp is None else timestamp
        with metric.lock:
            series.count += 1
            series.total += value
            if now >= series.last_time:
                series.last = value
                series.last_time = now
            if now < series.first_time:
                series.first_time = now
            for ring in series.rings:
                if not ring.add(now, value):
                    self.late_points += 1

    # -- configuration -----------------------------------------------------------------------

    def metric(self, name: str, kind: str = "untyped") -> Metric:
        """The metric called ``name``, created if new."""
        metric = self.metrics.get(name)
        if metric is None:
            with self._lock:
                metric = self.metrics.get(name)
                if metric is None:
                    metric = Metric(name, kind, self.max_series_per_metric)
                    self.metrics[name] = metric
        return metric

    def watch(self, name: str, spec: WindowSpec) -> None:
        """Keep a ring of shape ``spec`` for every series of ``name`` (from now on)."""
        metric = self.metric(name)
        with metric.lock:
            if spec in metric.specs:
                metric.watchers[metric.specs.index(spec)] += 1
                return
            metric.specs.append(spec)
            metric.watchers.append(1)
            for series in metric.series:
                series.rings.append(spec.new_ring())

    def unwatch(self, name: str, spec: WindowSpec) -> None:
        """Undo one :meth:`watch`; the rings go when no rule needs them."""
        metric = self.metrics.get(name)
        if metric is None or spec not in metric.specs:
            return
        with metric.lock:
            index = metric.specs.index(spec)
            metric.watchers[index] -= 1
            if metric.watchers[index] == 0:
                del metric.specs[index], metric.watchers[index]
                for series in metric.series:
                    del series.rings[index]

    def expire(self, now: float, idle_s: float) -> int:
        """Forget series without a point for ``idle_s`` (and longer than any window on their
        metric); how many went."""
        gone = 0
        for metric in list(self.metrics.values()):
            with metric.lock:
                longest = max((spec.window_s for spec in metric.specs), default=0.0)
                older_than = now - max(idle_s, longest)
                keep = [s for s in metric.series if s.last_time >= older_than]
                if len(keep) == len(metric.series):
                    continue
                gone += len(metric.series) - len(keep)
                kept = {id(s) for s in keep}
                metric.series = keep
                metric.lookup = {k: s for k, s in metric.lookup.items() if id(s) in kept}
                metric.version += 1
        return gone

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        for metric in self.metrics.values():
            metric.lock = threading.Lock()

    def stats(self) -> dict[str, Any]:
        """Series per metric, label sets dropped by the guard, late points."""
        return {
            "metrics": len(self.metrics),
            "series": sum(len(m.series) for m in self.metrics.values()),
            "dropped_series": {
                m.name: m.dropped_series for m in self.metrics.values() if m.dropped_series
            },
            "late_points": self.late_points,
        }
