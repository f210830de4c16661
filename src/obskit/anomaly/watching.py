"""``watch``: feed a metric series from :mod:`obskit.metrics` into a detector, emit ``Anomaly``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from obskit import _runtime, diagnostics, metrics
from obskit.anomaly._base import AnomalyScore, BaseDetector, detector_from_state
from obskit.anomaly._state import ConfigError
from obskit.signals import Anomaly

__all__ = ["Watch", "watch"]

SeriesKey = tuple[tuple[str, str], ...]


def watch(
    metric: str,
    detector: BaseDetector | Callable[[], BaseDetector] | None = None,
    *,
    labels: Mapping[str, Any] | None = None,
    interval_s: float | None = None,
    publish_score: bool = False,
    on_anomaly: Callable[[Anomaly], None] | None = None,
    clock: Callable[[], float] = time.time,
    max_series: int = 1000,
) -> Watch:
    """Watch ``metric`` for anomalies: every matching point goes through a detector.

    Each label set of the metric (``route="/cart"``, ``route="/pay"``, ...) gets its own copy
    of ``detector`` (a detector, copied per series, or a factory; ``default()`` when omitted).
    ``labels`` keeps only the series carrying those labels. With ``interval_s`` the
    points are first aggregated per interval, the sum for counters and the mean for observed
    values, and the detector sees one point per interval (what counters need: a rate). A
    flagged point is emitted as an :class:`~obskit.signals.Anomaly` signal and handed to
    ``on_anomaly``; with ``publish_score`` every score is also set on the gauge
    ``<metric>.anomaly_score`` (per series), so an alert rule can use it as its condition.

    >>> import obskit
    >>> from obskit import anomaly
    >>> obskit.init(service="shop", exporters=["memory"])
    >>> seen = []
    >>> w = anomaly.watch("queue.depth", anomaly.EWMA(warmup=10), on_anomaly=seen.append)
    >>> for i in range(50):
    ...     obskit.metrics.observe("queue.depth", 20.0 + i % 3, timestamp=1000.0 + i, queue="mail")
    >>> obskit.metrics.observe("queue.depth", 95.0, timestamp=1050.0, queue="mail")
    >>> [(found.metric, found.value, found.labels, found.service) for found in seen]
    [('queue.depth', 95.0, {'queue': 'mail'}, 'shop')]
    >>> w.stop(); obskit.shutdown()
    """
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"metric={metric!r}: give the metric name, e.g. 'http.latency_ms'")
    if interval_s is not None and not (isinstance(interval_s, (int, float)) and interval_s > 0):
        raise ConfigError(f"interval_s={interval_s!r}: use a positive number of seconds, or None")
    if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 1:
        raise ConfigError(f"max_series={max_series!r}: use a positive integer")
    if detector is None:
        from obskit.anomaly import default

        factory: Callable[[], BaseDetector] = default
    elif isinstance(detector, BaseDetector):
        template = detector.state()
        factory = lambda: detector_from_state(template)  # noqa: E731
    elif callable(detector):
        factory = detector
    else:
        raise ConfigError(f"detector={detector!r}: give a detector, a factory of one, or None")
    if publish_score:  # a score is a level at a moment: a gauge (a clash is a ConfigError)
        metrics.gauge(
            f"{metric}.anomaly_score",
            description=f"anomaly score of {metric} per series (0 normal, 1 anomalous)",
        )
    watcher = Watch(
        metric,
        factory,
        labels={key: str(value) for key, value in (labels or {}).items()},
        interval_s=None if interval_s is None else float(interval_s),
        publish_score=publish_score,
        on_anomaly=on_anomaly,
        clock=clock,
        max_series=max_series,
    )
    metrics.add_sink(watcher)
    return watcher


@dataclass(slots=True)
class _Bucket:
    """The points of one series in the current interval."""

    start: float
    total: float = 0.0
    count: int = 0


class Watch:
    """A metric sink that runs one detector per series of a metric; see :func:`watch`."""

    def __init__(
        self,
        metric: str,
        factory: Callable[[], BaseDetector],
        *,
        labels: dict[str, str],
        interval_s: float | None,
        publish_score: bool,
        on_anomaly: Callable[[Anomaly], None] | None,
        clock: Callable[[], float],
        max_series: int,
    ) -> None:
        self.metric = metric
        self.labels = labels
        self.interval_s = interval_s
        self.publish_score = publish_score
        self.on_anomaly = on_anomaly
        self.detectors: dict[SeriesKey, BaseDetector] = {}
        self.last: dict[SeriesKey, AnomalyScore] = {}
        self._factory = factory
        self._clock = clock
        self._max_series = max_series
        self._buckets: dict[SeriesKey, _Bucket] = {}
        self._lock = threading.Lock()

    # -- the MetricSink protocol ----------------------------------------------------------
    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        if name == self.metric:
            self._point(value, labels, timestamp, counter=False)

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        if name == self.metric:
            self._point(amount, labels, timestamp, counter=True)

    def stop(self) -> None:
        """Stop watching (the detectors and their state stay readable)."""
        metrics.remove_sink(self)

    # -- feeding --------------------------------------------------------------------------
    def _point(
        self, value: float, labels: dict[str, Any], timestamp: float | None, *, counter: bool
    ) -> None:
        """Route one point to its series; never raises into ``metrics.observe``."""
        try:
            series = tuple(sorted((key, str(item)) for key, item in labels.items()))
            if self.labels and any(dict(series).get(k) != v for k, v in self.labels.items()):
                return
            moment = self._clock() if timestamp is None else float(timestamp)
            with self._lock:
                detector = self._detector_for(series)
                if detector is None:
                    return
                if self.interval_s is None:
                    self._score(series, detector, value, moment)
                else:
                    self._aggregate(series, detector, value, moment, counter)
        except Exception as exc:
            diagnostics.report("anomaly.watch", f"anomaly watch on {self.metric!r} failed: {exc!r}")

    def _detector_for(self, series: SeriesKey) -> BaseDetector | None:
        detector = self.detectors.get(series)
        if detector is None:
            if len(self.detectors) >= self._max_series:
                diagnostics.report(
                    "anomaly.watch_series_limit",
                    f"anomaly watch on {self.metric!r}: more than {self._max_series} series; "
                    "new ones are not watched (raise max_series or filter with labels=)",
                )
                return None
            detector = self.detectors[series] = self._factory()
        return detector

    def _aggregate(
        self,
        series: SeriesKey,
        detector: BaseDetector,
        value: float,
        moment: float,
        counter: bool,
    ) -> None:
        """Close the intervals that ended before ``moment``, then add the point to its own."""
        interval = self.interval_s or 1.0
        bucket = self._buckets.get(series)
        start = moment - moment % interval
        if bucket is None:
            bucket = self._buckets[series] = _Bucket(start)
        elif start > bucket.start:
            if bucket.count:
                total = bucket.total if counter else bucket.total / bucket.count
                self._score(series, detector, total, bucket.start)
            if counter:  # intervals without increments are zeros, not gaps (at most 1000)
                empty = min(int((start - bucket.start) / interval) - 1, 1000)
                for index in range(empty):
                    gap = start - (empty - index) * interval
                    self._score(series, detector, 0.0, gap)
            bucket = self._buckets[series] = _Bucket(start)
        bucket.total += value
        bucket.count += 1

    def _score(
        self, series: SeriesKey, detector: BaseDetector, value: float, moment: float
    ) -> None:
        result = detector.update(value, moment)
        self.last[series] = result
        labels = dict(series)
        if self.publish_score and not result.skipped:
            metrics.observe(
                f"{self.metric}.anomaly_score", result.score, timestamp=moment, **labels
            )
        if not result.is_anomaly:
            return
        runtime = _runtime.current()
        signal = Anomaly(
            timestamp=moment,
            metric=self.metric,
            value=value,
            score=result.score,
            expected=result.expected,
            lower=result.lower,
            upper=result.upper,
            labels=labels,
            detector=detector.name,
            member=result.member or detector.name,
            reason=result.reason or "",
        )
        runtime.pipeline.emit(signal)
        if self.on_anomaly is not None:
            try:
                self.on_anomaly(signal)
            except Exception as exc:
                diagnostics.report("anomaly.on_anomaly", f"on_anomaly callback raised {exc!r}")

    # -- persistence ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Every series' detector state, to restore with :meth:`restore` after a restart."""
        with self._lock:
            return {
                "metric": self.metric,
                "series": [
                    {"labels": dict(series), "detector": detector.state()}
                    for series, detector in self.detectors.items()
                ],
            }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load what :meth:`state` saved; a damaged blob raises ``StateError``."""
        from obskit.anomaly._state import StateError

        entries = state.get("series") if isinstance(state, Mapping) else None
        if not isinstance(entries, list):
            raise StateError("watch state: expected {'metric': ..., 'series': [...]}")
        restored: dict[SeriesKey, BaseDetector] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("labels"), dict):
                raise StateError("watch state: each series needs 'labels' and 'detector'")
            series = tuple(sorted((str(k), str(v)) for k, v in entry["labels"].items()))
            restored[series] = detector_from_state(entry.get("detector"))
        with self._lock:
            self.detectors.update(restored)
