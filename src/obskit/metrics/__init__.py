"""``obskit.metrics``: instruments with declared kinds, one store, every exporter, Prometheus.

Declare an instrument once (module level), record per call, as in OpenTelemetry::

    orders = obskit.metrics.counter("orders", description="orders placed")
    latency = obskit.metrics.histogram("checkout.duration", unit="s")
    orders.add(shop="books")
    latency.record(0.27, route="/checkout")

``increment(name, amount=1, **labels)`` and ``observe(name, value, **labels)`` stay as
shortcuts: a counter and a histogram declared on first use (or the instrument already declared
under that name: ``observe`` on a gauge sets it). Both take ``timestamp=`` for the alert
windows and anomaly watches that hear the point; the name is positional-only, so a label may be
called ``name``.

Where the numbers go: the process' store (:mod:`obskit.metrics.store`); the runtime's periodic
reader sends every series to every exporter (``metrics_interval_s``, and a final collection at
``shutdown`` and exit); Prometheus scrapes ``serve()`` or ``prometheus_app()``; ``query`` and
``snapshot`` read it in-process; sinks (``add_sink``: alert windows, anomaly watches) hear each
point. See ``docs/metrics.md``.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from obskit import _runtime
from obskit._numbers import refuse
from obskit.metrics import multiprocess, runtime
from obskit.metrics.instruments import (
    KINDS,
    Counter,
    Exemplar,
    Gauge,
    Histogram,
    Instrument,
    MetricData,
    MetricSink,
    Observation,
    SeriesData,
    UpDownCounter,
)
from obskit.metrics.instruments import sinks as _sinks
from obskit.metrics.multiprocess import SnapshotWriter
from obskit.metrics.naming import label_name, prometheus_name
from obskit.metrics.query import histogram_quantile, query_store
from obskit.metrics.reader import PeriodicReader
from obskit.metrics.store import MetricsStore

if TYPE_CHECKING:
    from obskit.config import Settings
    from obskit.signals import LogRecord

__all__ = [
    "KINDS",
    "STORE",
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
    "add_sink",
    "collect",
    "counter",
    "gauge",
    "histogram",
    "histogram_quantile",
    "increment",
    "instruments",
    "label_name",
    "observe",
    "prometheus_app",
    "prometheus_name",
    "query",
    "remove_sink",
    "serve",
    "snapshot",
    "up_down_counter",
]

#: The process' metrics store.
STORE = MetricsStore()


# -- declaring -----------------------------------------------------------------------------


def counter(
    name: str,
    unit: str = "",
    description: str = "",
    *,
    callback: Callable[[], Any] | None = None,
) -> Counter:
    """A monotonic counter (``.add(amount=1, **labels)``); with ``callback``, an observable
    counter whose callback returns the cumulative value(s) at each collection."""
    return STORE.declare(  # type: ignore[return-value]
        "counter", name, unit=unit, description=description, callback=callback
    )


def up_down_counter(
    name: str,
    unit: str = "",
    description: str = "",
    *,
    callback: Callable[[], Any] | None = None,
) -> UpDownCounter:
    """A sum that goes up and down (``.add(amount, **labels)``), or observable with
    ``callback``."""
    return STORE.declare(  # type: ignore[return-value]
        "up_down_counter", name, unit=unit, description=description, callback=callback
    )


def gauge(
    name: str,
    unit: str = "",
    description: str = "",
    *,
    callback: Callable[[], Any] | None = None,
) -> Gauge:
    """A gauge (``.set(value, **labels)``), or observable with ``callback``: a function called
    at each collection returning a number or :class:`Observation` items."""
    return STORE.declare(  # type: ignore[return-value]
        "gauge", name, unit=unit, description=description, callback=callback
    )


def histogram(
    name: str,
    unit: str = "",
    description: str = "",
    *,
    buckets: Sequence[float] | None = None,
) -> Histogram:
    """A histogram (``.record(value, **labels)``) with upper-inclusive bucket ``buckets``
    (default: OpenTelemetry's for seconds when ``unit="s"``, its general default otherwise)."""
    return STORE.declare(  # type: ignore[return-value]
        "histogram", name, unit=unit, description=description, buckets=buckets
    )


def instruments() -> dict[str, Instrument]:
    """Every declared instrument by name (``.kind``, ``.unit``, ``.bounds``,
    ``.prometheus_name``)."""
    return dict(STORE.instruments)


# -- the shortcuts ------------------------------------------------------------------------


def increment(
    name: str, amount: float = 1, /, *, timestamp: float | None = None, **labels: Any
) -> None:
    """Add ``amount`` to the counter ``name`` (declared on first use) for ``labels``."""
    instrument = STORE.instruments.get(name)
    if instrument is None:
        instrument = STORE.declare("counter", name, strict=False)
    if timestamp is None and instrument.__class__ is Counter:
        instrument.add(amount, **labels)  # type: ignore[attr-defined]
    elif instrument.kind in ("counter", "up_down_counter"):
        instrument.record_at(amount, labels, timestamp)
    elif instrument.kind != "dropped":
        refuse(name, amount, f"increment() on a {instrument.kind}; declare it as a counter")


def observe(name: str, value: float, /, *, timestamp: float | None = None, **labels: Any) -> None:
    """Record ``value`` in the histogram ``name`` (declared on first use; a gauge declared
    under ``name`` is set instead).

    >>> seen = []
    >>> class Printer:
    ...     def observe(self, name, value, labels, timestamp): seen.append((name, value, labels))
    ...     def increment(self, name, value, labels, timestamp): seen.append((name, value, labels))
    >>> add_sink(printer := Printer())
    >>> observe("doc.latency", 12.5, route="/cart")
    >>> observe("doc.latency", float("nan"), route="/cart")   # counted and skipped
    >>> increment("doc.orders.placed", name="books")
    >>> seen
    [('doc.latency', 12.5, {'route': '/cart'}), ('doc.orders.placed', 1, {'name': 'books'})]
    >>> remove_sink(printer)
    """
    instrument = STORE.instruments.get(name)
    if instrument is None:
        instrument = STORE.declare("histogram", name, strict=False)
    if timestamp is None and instrument.__class__ is Histogram:
        instrument.record(value, **labels)  # type: ignore[attr-defined]
    elif instrument.kind in ("histogram", "gauge"):
        instrument.record_at(value, labels, timestamp)
    elif instrument.kind != "dropped":
        refuse(name, value, f"observe() on a {instrument.kind}; use its add()")


# -- sinks ----------------------------------------------------------------------------------


def add_sink(sink: MetricSink) -> None:
    """Let ``sink`` hear every accepted point (idempotent)."""
    if sink not in _sinks:
        _sinks.append(sink)


def remove_sink(sink: MetricSink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


# -- reading --------------------------------------------------------------------------------


def snapshot() -> dict[str, MetricData]:
    """Every metric with series now, by name (callbacks of observable instruments run)."""
    return {data.name: data for data in STORE.collect()}


def query(
    name: str, /, aggregation: str = "sum", window_s: float | None = None, **matchers: Any
) -> float | None:
    """One number over the series of ``name`` whose labels equal ``matchers``.

    ``aggregation``: ``sum`` (of a counter: the total, or its increase over the last
    ``window_s``), ``rate`` (``sum`` per second over ``window_s``, as alert rules read it),
    ``count`` (a histogram's samples; else the number of series), ``avg``, ``min``, ``max``,
    ``last`` and percentiles ``p50``,
    ``p95``, ``p99`` (any ``pNN``) from a histogram's buckets, as Prometheus'
    ``histogram_quantile``. ``None`` when nothing matches. ``name`` is positional-only, so a
    label may be called ``name``.

    >>> requests = counter("doc.requests")
    >>> requests.add(3, route="/a"); requests.add(4, route="/b")
    >>> query("doc.requests", "sum"), query("doc.requests", "sum", route="/b")
    (7.0, 4.0)
    """
    return query_store(STORE, name, aggregation, window_s, matchers)


# -- the runtime's reader -----------------------------------------------------------------

_reader: PeriodicReader | None = None
_reader_lock = threading.Lock()


def configure(settings: Settings) -> None:
    """Apply ``settings`` (``obskit.init`` calls this): limits, the reader, built-in series."""
    global _reader
    STORE.cardinality_limit = settings.metrics_cardinality_limit
    STORE.max_metrics = settings.metrics_max_names
    for instrument in STORE.instruments.values():
        instrument.cardinality_limit = settings.metrics_cardinality_limit
    with _reader_lock:
        if _reader is None:
            _reader = PeriodicReader(STORE, _runtime.emit)
        reader = _reader
        reader.stop()
        reader.interval_s = settings.metrics_interval_s
        reader.service = settings.service
        reader.temporality = settings.metrics_temporality
        reader.start()
    runtime.set_enabled(settings.runtime_metrics)
    if settings.runtime_metrics:
        runtime.install(STORE)
    runtime.install_self_metrics(STORE)
    _configure_multiprocess(settings.metrics_multiprocess_dir)
    _listen_to_logs(True)


_writer: SnapshotWriter | None = None


def _configure_multiprocess(directory: str | None) -> None:
    """Write this process' snapshots to ``directory`` (or stop) for whole-service scrapes."""
    global _writer
    from obskit.metrics import prometheus

    if _writer is not None and (directory is None or Path(directory) != _writer.directory):
        _writer.stop()
        _writer = None
    prometheus.multiprocess_dir = Path(directory) if directory else None
    if directory and _writer is None:
        _writer = SnapshotWriter(STORE, directory, multiprocess.FLUSH_INTERVAL_S)
        _writer.write()
        _writer.start()


def collect() -> int:
    """Collect now and send the points down the pipeline; how many (0 before ``init``)."""
    reader = _reader
    if reader is None or _runtime.peek() is None:
        return 0
    return reader.collect_once()


@_runtime.shutdown_listeners.add
def _final_collection(timeout_s: float = 2.0) -> None:
    """``obskit.shutdown``: stop the reader after one last collection into the pipeline."""
    writer = _writer
    if writer is not None:
        writer.stop(timeout_s)
        writer.write()
    reader = _reader
    if reader is None or not reader.running:
        return
    reader.stop(timeout_s)
    if _runtime.peek() is not None:
        reader.collect_once()


@atexit.register  # registered after the pipeline's exit flush, so it runs before it
def _collect_at_exit() -> None:
    _final_collection(1.0)


def _after_fork_in_child() -> None:
    STORE.after_fork_in_child()  # a new process: its series start from zero
    if _reader is not None:
        _reader.after_fork_in_child()
    if _writer is not None:
        _writer.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- the log records series ----------------------------------------------------------------

_log_records = counter("obskit.log.records", "{record}", "log records emitted, by level")
_log_sampled_out = counter(
    "obskit.log.sampled_out", "{record}", "log records log_sample_rate dropped, by level"
)


def _count_log_record(record: LogRecord) -> None:
    _log_records.add(level=record.level)


def _count_sampled_out(level: str) -> None:
    _log_sampled_out.add(level=level)


def _listen_to_logs(on: bool) -> None:
    from obskit.logging import record_listeners, sampled_listeners

    if on:
        record_listeners.add(_count_log_record)
        sampled_listeners.add(_count_sampled_out)
    else:
        record_listeners.remove(_count_log_record)
        sampled_listeners.remove(_count_sampled_out)


# -- Prometheus (prometheus_client is imported on first use) --------------------------------


def serve(port: int = 0, host: str = "127.0.0.1") -> Any:
    """Serve ``/metrics`` for Prometheus on a daemon thread; ``.port``, ``.url``, ``.close()``."""
    from obskit.metrics.prometheus import serve as _serve

    return _serve(STORE, port=port, host=host)


def prometheus_app() -> Any:
    """An app serving the exposition, callable as ASGI ``(scope, receive, send)`` and as WSGI
    ``(environ, start_response)``: mount it at ``/metrics``."""
    from obskit.metrics.prometheus import PrometheusApp

    return PrometheusApp(STORE)
