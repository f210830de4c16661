"""Instruments: a metric declared once with a kind, a unit and a description, recorded per call.

The shapes are OpenTelemetry's (``Counter.add``, ``UpDownCounter.add``, ``Gauge.set``,
``Histogram.record``, observable instruments fed by a callback at collection time); labels
are keyword arguments of each call, as attributes are in OpenTelemetry.

The hot path (``add``/``set``/``record`` on a label set seen before) is a dict lookup of the
call's label tuple, an uncontended per-instrument lock held for a few additions, and, for a
histogram inside a sampled span, the span's ids kept as the bucket's exemplar. A new label set
takes the slow path once: its canonical key (sorted, values as strings), the cardinality limit
(past it, points go to the overflow series ``otel.metric.overflow="true"``, counted and reported
once, as OpenTelemetry does), then it is remembered under the spelling of the call.

Bad values never raise: NaN, infinities, non-numbers and negative counter increments are
counted (``obskit.pipeline_stats()["problems"]["metrics.bad_value"]``) and skipped.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

from opentelemetry import context as _otel_context

from obskit import diagnostics
from obskit._numbers import finite_number, refuse
from obskit.metrics.naming import prometheus_name

try:  # the key OpenTelemetry keeps the active span under (one dict lookup instead of layers)
    from opentelemetry.trace.propagation import _SPAN_KEY
except ImportError:  # pragma: no cover - older API
    _SPAN_KEY = "current-span"

__all__ = [
    "DEFAULT_BUCKETS",
    "KINDS",
    "OVERFLOW_LABELS",
    "SECONDS_BUCKETS",
    "Counter",
    "Exemplar",
    "Gauge",
    "Histogram",
    "Instrument",
    "MetricData",
    "MetricSink",
    "Observation",
    "SeriesData",
    "UpDownCounter",
    "sinks",
]

#: The instrument kinds (observable ones are the same kinds with a callback).
KINDS = ("counter", "up_down_counter", "gauge", "histogram")
#: The label set that collects points past the cardinality limit (OpenTelemetry's name).
OVERFLOW_LABELS: tuple[tuple[str, str], ...] = (("otel.metric.overflow", "true"),)
#: Bucket bounds for durations in seconds (OpenTelemetry's advice for HTTP durations).
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
#: OpenTelemetry's default explicit bucket bounds (for milliseconds and unitless values).
DEFAULT_BUCKETS = (0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0,
                   2500.0, 5000.0, 7500.0, 10000.0)  # fmt: skip

Key = tuple[tuple[str, str], ...]


class MetricSink(Protocol):
    """Hears every accepted point (alert windows, anomaly watches); cheap and thread-safe.

    ``increment`` for counters and up-down counters, ``observe`` for histograms and gauges.
    """

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None: ...

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None: ...


#: Every registered sink (``obskit.metrics.add_sink``); empty costs one truth test per call.
sinks: list[MetricSink] = []


class Observation(NamedTuple):
    """One value reported by an observable instrument's callback."""

    value: float
    labels: Mapping[str, Any] = {}


class Exemplar(NamedTuple):
    """A sample that fell in a bucket, with the trace it was recorded in."""

    value: float
    timestamp: float
    trace_id: str
    span_id: str


@dataclass(slots=True)
class SeriesData:
    """One label set of a metric at collection: a cumulative state since ``start``.

    ``value`` is the counter total, the gauge value or the histogram's sum; histograms also
    carry ``count``, ``bucket_counts`` (one per bound plus the +Inf bucket, not cumulative),
    ``min``, ``max`` and ``exemplars`` (one per bucket or ``None``).
    """

    labels: dict[str, str]
    value: float
    start: float
    count: int = 0
    bucket_counts: tuple[int, ...] = ()
    min: float | None = None
    max: float | None = None
    exemplars: tuple[Exemplar | None, ...] = ()


class MetricData(NamedTuple):
    """Every series of one instrument at collection."""

    name: str
    kind: str
    unit: str
    description: str
    bounds: tuple[float, ...]
    series: list[SeriesData]

    @property
    def prometheus_name(self) -> str:
        return prometheus_name(self.name, self.kind, self.unit)


class _Series:
    __slots__ = ("count", "counts", "exemplars", "labels", "max", "min", "start", "value")

    def __init__(self, key: Key, buckets: int) -> None:
        self.labels = dict(key)
        self.value = 0.0
        self.count = 0
        self.counts = [0] * buckets if buckets else []
        self.min = float("inf")
        self.max = -float("inf")
        self.exemplars: list[tuple[float, float, int, int] | None] | None = None
        self.start = time.time()


Callback = Callable[[], Any]


class Instrument:
    """What every kind shares: identity, series, the cardinality limit, collection."""

    kind: ClassVar[str] = ""
    monotonic: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        callback: Callback | None = None,
        bounds: Sequence[float] = (),
        cardinality_limit: int = 2000,
        declared_at: str = "",
    ) -> None:
        self.name = name
        self.unit = unit
        self.description = description
        self.callback = callback
        self.bounds: tuple[float, ...] = tuple(bounds)
        self.cardinality_limit = cardinality_limit
        self.declared_at = declared_at
        self.overflowed = 0  # points sent to the overflow series
        self.implicit = False  # declared by a shortcut (increment/observe/timer) on first use
        self._lock = threading.Lock()
        self._series: dict[Key, _Series] = {}
        #: canonical key and every spelling seen at a call site -> series
        self._lookup: dict[Any, _Series] = {}

    @property
    def prometheus_name(self) -> str:
        """The name Prometheus shows (``orders_total``, ``..._seconds`` for a histogram)."""
        return prometheus_name(self.name, self.kind, self.unit)

    @property
    def observable(self) -> bool:
        return self.callback is not None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} unit={self.unit!r}>"

    # -- the slow path: a label set seen for the first time -----------------------------------

    def _series_for(self, labels: Mapping[str, Any]) -> _Series:
        key: Key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if len(self._series) >= self.cardinality_limit:
                    return self._overflow_series()
                buckets = len(self.bounds) + 1 if self.bounds else 0
                series = self._series[key] = _Series(key, buckets)
            self._lookup[key] = series
            try:
                self._lookup[tuple(labels.items())] = series  # this call site's spelling
            except TypeError:  # an unhashable label value: always the slow way
                pass
        return series

    def _overflow_series(self) -> _Series:
        """Called with the lock held; past the limit, not remembered per spelling."""
        self.overflowed += 1
        series = self._series.get(OVERFLOW_LABELS)
        if series is None:
            buckets = len(self.bounds) + 1 if self.bounds else 0
            series = self._series[OVERFLOW_LABELS] = _Series(OVERFLOW_LABELS, buckets)
            diagnostics.report(
                f"metrics.cardinality.{self.name}",
                f"metric {self.name!r} reached its limit of {self.cardinality_limit} label sets; "
                'further points go to the series otel.metric.overflow="true" (drop a label '
                "carrying ids, or raise metrics_cardinality_limit)",
            )
        else:
            diagnostics.report(f"metrics.cardinality.{self.name}", "")
        return series

    def _bad(self, value: Any, why: str) -> None:
        refuse(self.name, value, why)

    def _update(self, series: _Series, value: float) -> None:
        raise NotImplementedError

    def record_at(self, value: Any, labels: dict[str, Any], timestamp: float | None) -> None:
        """The shortcuts' way in: check ``value`` for this kind, update, tell the sinks with
        ``timestamp`` (the time the point is for, passed on to alert windows and watches)."""
        number = finite_number(self.name, value)
        if number is None:
            return
        if self.monotonic and number < 0:
            self._bad(number, "a counter takes finite increments >= 0")
            return
        try:
            series = self._lookup[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series_for(labels)
        self._update(series, number)
        if sinks:
            if self.kind in ("counter", "up_down_counter"):
                _tell_increment(self.name, number, labels, timestamp)
            else:
                _tell_observe(self.name, number, labels, timestamp)

    # -- collection ------------------------------------------------------------------------

    def collect(self) -> MetricData:
        """The state of every series now (observable instruments call their callback)."""
        if self.callback is not None:
            series = self._observe()
        else:
            with self._lock:
                series = [self._data(s) for s in list(self._series.values())]
        return MetricData(self.name, self.kind, self.unit, self.description, self.bounds, series)

    def _data(self, series: _Series) -> SeriesData:
        return SeriesData(series.labels, series.value, series.start)

    def _observe(self) -> list[SeriesData]:
        """Run the callback; its observations become this collection's series."""
        try:
            observed = _observations(self.callback() if self.callback else ())
        except Exception as exc:
            diagnostics.report(
                f"metrics.callback.{self.name}", f"callback of metric {self.name!r} raised {exc!r}"
            )
            return []
        found: dict[Key, list[float]] = {}
        for value, labels in observed:
            number = finite_number(self.name, value)
            if number is None:
                continue
            key: Key = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
            if key not in found and len(found) >= self.cardinality_limit:
                key = OVERFLOW_LABELS
                self.overflowed += 1
            found.setdefault(key, []).append(number)
        with self._lock:
            out = []
            for key, values in found.items():
                series = self._series.get(key)
                if series is None:  # remembered for its start time only
                    series = self._series[key] = _Series(key, 0)
                out.append(SeriesData(series.labels, sum(values), series.start))
        return out

    def reset(self) -> None:
        """Forget every series (tests)."""
        with self._lock:
            self._series.clear()
            self._lookup.clear()
            self.overflowed = 0

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()
        self.reset()


def _observations(result: Any) -> Iterable[tuple[Any, Mapping[str, Any]]]:
    """A callback's result as (value, labels) pairs: a number, or Observations / pairs."""
    if result is None:
        return ()
    if isinstance(result, (int, float)):
        return ((result, {}),)
    if isinstance(result, Mapping):  # {label tuple or dict-like: value} is not supported
        raise TypeError("return a number, or Observation(value, labels) items")
    return [(item[0], item[1] if len(item) > 1 else {}) for item in result]


class Counter(Instrument):
    """A monotonic sum: ``add(amount=1, **labels)`` with ``amount >= 0``.

    >>> from obskit.metrics import counter, snapshot
    >>> orders = counter("doc.orders", description="orders placed")
    >>> orders.add(shop="books"); orders.add(2, shop="books")
    >>> [(s.labels, s.value) for s in snapshot()["doc.orders"].series]
    [({'shop': 'books'}, 3.0)]
    >>> orders.prometheus_name
    'doc_orders_total'
    """

    kind = "counter"
    monotonic = True

    def add(self, amount: float = 1, /, **labels: Any) -> None:
        """Add ``amount`` (finite, >= 0) to the series of ``labels``."""
        cls = amount.__class__
        if cls is not int and cls is not float:
            checked = finite_number(self.name, amount)
            if checked is None:
                return
            amount = checked
        if not 0 <= amount < _INF:  # NaN fails both
            self._bad(amount, "a counter takes finite increments >= 0")
            return
        try:
            series = self._lookup[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series_for(labels)
        with self._lock:
            series.value += amount
        if sinks:
            _tell_increment(self.name, amount, labels, None)

    def _update(self, series: _Series, value: float) -> None:
        with self._lock:
            series.value += value


class UpDownCounter(Instrument):
    """A sum that goes both ways (items in a queue, open connections): ``add(amount, **labels)``."""

    kind = "up_down_counter"

    def add(self, amount: float, /, **labels: Any) -> None:
        """Add ``amount`` (any finite number) to the series of ``labels``."""
        cls = amount.__class__
        if (cls is not int and cls is not float) or amount - amount != 0:
            checked = finite_number(self.name, amount)
            if checked is None:
                return
            amount = checked
        try:
            series = self._lookup[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series_for(labels)
        with self._lock:
            series.value += amount
        if sinks:
            _tell_increment(self.name, amount, labels, None)

    def _update(self, series: _Series, value: float) -> None:
        with self._lock:
            series.value += value


class Gauge(Instrument):
    """The latest value of something (a temperature, a queue depth): ``set(value, **labels)``."""

    kind = "gauge"

    def set(self, value: float, /, **labels: Any) -> None:
        """Make ``value`` the current value of the series of ``labels``."""
        cls = value.__class__
        if (cls is not int and cls is not float) or value - value != 0:
            checked = finite_number(self.name, value)
            if checked is None:
                return
            value = checked
        try:
            series = self._lookup[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series_for(labels)
        series.value = value  # one store: no lock needed
        series.count = 1
        if sinks:
            _tell_observe(self.name, value, labels, None)

    def _update(self, series: _Series, value: float) -> None:
        series.value = value
        series.count = 1

    def collect(self) -> MetricData:
        if self.callback is not None:
            return super().collect()
        with self._lock:  # a gauge never set (only looked up) has no value yet
            series = [self._data(s) for s in list(self._series.values()) if s.count]
        return MetricData(self.name, self.kind, self.unit, self.description, self.bounds, series)


class Histogram(Instrument):
    """A distribution (latencies, sizes): ``record(value, **labels)`` counts it in a bucket.

    Buckets are upper-inclusive bounds (Prometheus' ``le``), plus +Inf. A sample recorded inside
    a sampled span becomes its bucket's exemplar (the trace and span id, shown in OpenMetrics
    and sent with OTLP).

    >>> from obskit.metrics import histogram, snapshot
    >>> latency = histogram("doc.checkout.duration", unit="s", buckets=[0.1, 0.5, 1])
    >>> for seconds in (0.05, 0.2, 0.3, 2.0):
    ...     latency.record(seconds, route="/checkout")
    >>> data = snapshot()["doc.checkout.duration"].series[0]
    >>> data.count, data.bucket_counts, data.min, data.max
    (4, (1, 2, 0, 1), 0.05, 2.0)
    >>> latency.prometheus_name
    'doc_checkout_duration_seconds'
    """

    kind = "histogram"

    def record(self, value: float, /, **labels: Any) -> None:
        """Count ``value`` (finite) in the series of ``labels``."""
        cls = value.__class__
        if (cls is not int and cls is not float) or value - value != 0:
            checked = finite_number(self.name, value)
            if checked is None:
                return
            value = checked
        try:
            series = self._lookup[tuple(labels.items())]
        except (KeyError, TypeError):
            series = self._series_for(labels)
        index = bisect_left(self.bounds, value)
        span = _otel_context.get_current().get(_SPAN_KEY)
        with self._lock:
            series.counts[index] += 1
            series.count += 1
            series.value += value
            if value < series.min:
                series.min = value
            if value > series.max:
                series.max = value
        if span is not None:
            _keep_exemplar(series, index, value, span)
        if sinks:
            _tell_observe(self.name, value, labels, None)

    def _update(self, series: _Series, value: float) -> None:
        index = bisect_left(self.bounds, value)
        with self._lock:
            series.counts[index] += 1
            series.count += 1
            series.value += value
            if value < series.min:
                series.min = value
            if value > series.max:
                series.max = value
        span = _otel_context.get_current().get(_SPAN_KEY)
        if span is not None:
            _keep_exemplar(series, index, value, span)

    def _data(self, series: _Series) -> SeriesData:
        exemplars: tuple[Exemplar | None, ...] = ()
        if series.exemplars is not None:
            exemplars = tuple(
                None if e is None else Exemplar(e[0], e[1], f"{e[2]:032x}", f"{e[3]:016x}")
                for e in series.exemplars
            )
        empty = series.count == 0
        return SeriesData(
            series.labels,
            series.value,
            series.start,
            series.count,
            tuple(series.counts),
            None if empty else series.min,
            None if empty else series.max,
            exemplars,
        )


def _keep_exemplar(series: _Series, index: int, value: float, span: Any) -> None:
    """The latest sample of a bucket inside a sampled span is its exemplar."""
    try:
        context = span.get_span_context()
        if not context.trace_flags & 1:
            return
        exemplars = series.exemplars
        if exemplars is None:
            exemplars = series.exemplars = [None] * len(series.counts)
        exemplars[index] = (value, time.time(), context.trace_id, context.span_id)
    except Exception:  # a foreign span object: no exemplar, never an error
        pass


_INF = float("inf")


def _tell_observe(name: str, value: float, labels: dict[str, Any], ts: float | None) -> None:
    for sink in sinks:
        try:
            sink.observe(name, value, labels, ts)
        except Exception as exc:
            diagnostics.report(f"metric_sink.{type(sink).__name__}", f"metric sink raised {exc!r}")


def _tell_increment(name: str, amount: float, labels: dict[str, Any], ts: float | None) -> None:
    for sink in sinks:
        try:
            sink.increment(name, amount, labels, ts)
        except Exception as exc:
            diagnostics.report(f"metric_sink.{type(sink).__name__}", f"metric sink raised {exc!r}")


#: Instrument class per kind.
CLASSES: dict[str, type[Instrument]] = {
    "counter": Counter,
    "up_down_counter": UpDownCounter,
    "gauge": Gauge,
    "histogram": Histogram,
}
