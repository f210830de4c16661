"""``obskit.metrics``: numbers in (gauges, latencies, counters), fanned out to metric sinks.

``observe(name, value, **labels)`` records a sample (a gauge reading, a latency);
``increment(name, amount=1, **labels)`` adds to a counter. Both take an optional ``timestamp``
(UNIX seconds; the receiver's clock otherwise). The name is positional-only, so a label may be
called ``name``.

Who listens: sinks (``add_sink``). The alert engine's series store is one
(:mod:`obskit.alerts`; it also sends :class:`~obskit.signals.MetricPoint` signals to the
pipeline periodically); :class:`OpenTelemetrySink` forwards to OpenTelemetry instruments (a
``Counter`` per counter, a ``Histogram`` per observed metric). With no sink a call costs one
list check.

Bad values never raise: NaN, infinities, non-numbers (strings included) and negative counter
increments are counted (``obskit.pipeline_stats()["problems"]["metrics.bad_value"]``) and
skipped.

Built-in series, fed by the other capabilities (name, labels, what feeds it):

* ``request.count`` {name}, ``request.errors`` {name} (an exception, or a status >= 500) and
  ``request.duration_ms`` {name}: ``obskit.request``.
* ``function.duration_ms`` {function} and ``function.errors`` {function}: ``@obskit.instrument``.
* ``log.records`` {level}: every emitted log record, counted while any sink is registered;
  ``log.sampled_out`` {level}: each record ``log_sample_rate`` dropped.
* ``errors.count`` {fingerprint, level}: error capture, one increment per captured event (also
  past a group's export rate limit).
* ``health.status`` {check}: the health runner, one observation per check and run: 1 pass,
  0.5 warn, 0 fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from obskit import diagnostics
from obskit._numbers import finite_number, refuse

if TYPE_CHECKING:
    from obskit.signals import LogRecord

__all__ = ["MetricSink", "OpenTelemetrySink", "add_sink", "increment", "observe", "remove_sink"]


class MetricSink(Protocol):
    """Receives every accepted point (values are finite numbers); must be cheap, thread-safe."""

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None: ...

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None: ...


_sinks: list[MetricSink] = []


def add_sink(sink: MetricSink) -> None:
    """Register a sink (idempotent). The first sink turns on the ``log.records`` series."""
    if sink not in _sinks:
        _sinks.append(sink)
    _listen_to_logs(True)


def remove_sink(sink: MetricSink) -> None:
    """Unregister a sink; with none left, log records stop being counted."""
    if sink in _sinks:
        _sinks.remove(sink)
    if not _sinks:
        _listen_to_logs(False)


def observe(name: str, value: float, /, *, timestamp: float | None = None, **labels: Any) -> None:
    """Record a gauge or latency sample for series ``name{labels}``.

    >>> seen = []
    >>> class Printer:
    ...     def observe(self, name, value, labels, timestamp): seen.append((name, value, labels))
    ...     def increment(self, name, value, labels, timestamp): seen.append((name, value, labels))
    >>> add_sink(printer := Printer())
    >>> observe("http.latency_ms", 12.5, route="/cart")
    >>> observe("http.latency_ms", float("nan"), route="/cart")   # counted and skipped
    >>> increment("orders", name="books")
    >>> seen
    [('http.latency_ms', 12.5, {'route': '/cart'}), ('orders', 1, {'name': 'books'})]
    >>> remove_sink(printer)
    """
    if not _sinks:
        return
    cls = value.__class__
    if cls is not float and cls is not int:
        value = finite_number(name, value)  # type: ignore[assignment]
        if value is None:
            return
    elif value - value != 0:  # NaN or an infinity
        finite_number(name, value)
        return
    for sink in _sinks:
        try:
            sink.observe(name, value, labels, timestamp)
        except Exception as exc:
            diagnostics.report(f"metric_sink.{type(sink).__name__}", f"metric sink raised {exc!r}")


def increment(
    name: str, amount: float = 1, /, *, timestamp: float | None = None, **labels: Any
) -> None:
    """Add ``amount`` to the counter series ``name{labels}``."""
    if not _sinks:
        return
    cls = amount.__class__
    if cls is not int and cls is not float:
        amount = finite_number(name, amount)  # type: ignore[assignment]
        if amount is None:
            return
    if amount < 0 or amount - amount != 0:  # counters only go up; NaN and inf are refused
        refuse(name, amount, "a counter takes finite increments >= 0")
        return
    for sink in _sinks:
        try:
            sink.increment(name, amount, labels, timestamp)
        except Exception as exc:
            diagnostics.report(f"metric_sink.{type(sink).__name__}", f"metric sink raised {exc!r}")


# -- the log.records series -------------------------------------------------------------------


def _count_log_record(record: LogRecord) -> None:
    increment("log.records", level=record.level)


def _count_sampled_out(level: str) -> None:
    increment("log.sampled_out", level=level)


def _listen_to_logs(on: bool) -> None:
    from obskit.logging import record_listeners, sampled_listeners

    if on:
        record_listeners.add(_count_log_record)
        sampled_listeners.add(_count_sampled_out)
    else:
        record_listeners.remove(_count_log_record)
        sampled_listeners.remove(_count_sampled_out)


# -- OpenTelemetry --------------------------------------------------------------------------


class OpenTelemetrySink:
    """Forwards points to OpenTelemetry metric instruments of ``meter``.

    ``increment`` goes to a ``Counter`` and ``observe`` to a ``Histogram``, one instrument per
    metric name, labels as attributes. OpenTelemetry stamps points itself, so an explicit
    ``timestamp`` is ignored here. Install with ``obskit.metrics.add_sink(OpenTelemetrySink())``
    (the global meter provider) or pass a meter of your own provider.
    """

    def __init__(self, meter: Any = None) -> None:
        if meter is None:
            from opentelemetry import metrics as otel_metrics

            meter = otel_metrics.get_meter("obskit")
        self.meter = meter
        self._counters: dict[str, Any] = {}
        self._histograms: dict[str, Any] = {}

    def observe(
        self, name: str, value: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        histogram = self._histograms.get(name)
        if histogram is None:
            histogram = self._histograms[name] = self.meter.create_histogram(name)
        histogram.record(value, attributes=_attributes(labels))

    def increment(
        self, name: str, amount: float, labels: dict[str, Any], timestamp: float | None
    ) -> None:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = self.meter.create_counter(name)
        counter.add(amount, attributes=_attributes(labels))


def _attributes(labels: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, (str, bool, int, float)) else str(v) for k, v in labels.items()}
