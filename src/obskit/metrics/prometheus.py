"""Prometheus exposition of the metrics store: ``serve()`` and ``prometheus_app()``.

The format is written by prometheus_client (its custom-collector API and exposition): the
text format 0.0.4, or OpenMetrics 1.0 with exemplars when the scraper asks for it in
``Accept`` (Prometheus does), gzip when accepted, ``?name[]=`` filters. obskit only maps its
store onto metric families:

* names by the OpenTelemetry compatibility rules (:mod:`obskit.metrics.naming`):
  ``orders_total``, ``http_server_request_duration_seconds_bucket{le="0.25"}``; label names
  sanitised (``http.route`` -> ``http_route``);
* counters -> counter; up-down counters and gauges -> gauge; histograms -> histogram with
  cumulative ``le`` buckets, ``_sum``, ``_count``, and each bucket's exemplar (``trace_id``,
  ``span_id``) in OpenMetrics;
* with ``metrics_multiprocess_dir``, every worker's snapshot merged in
  (:mod:`obskit.metrics.multiprocess`), so one scrape gives the service's totals.

Two obskit names that map to one Prometheus name: the first is kept, the other counted as
``metrics.prometheus.name_clash`` and reported once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, make_asgi_app, make_wsgi_app
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Exemplar as PrometheusExemplar
from prometheus_client.utils import floatToGoString

from obskit import diagnostics
from obskit.metrics import multiprocess
from obskit.metrics.instruments import MetricData, SeriesData
from obskit.metrics.naming import label_name, prometheus_name, unit_suffix
from obskit.metrics.store import MetricsStore

__all__ = ["MetricsServer", "PrometheusApp", "StoreCollector", "families", "serve"]

#: Where each process writes its snapshot when several share a scrape (``configure`` sets it).
multiprocess_dir: Path | None = None


class StoreCollector:
    """A prometheus_client collector over an obskit store (and the other workers' snapshots)."""

    def __init__(self, store: MetricsStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        try:
            collected = self.store.collect()
            if multiprocess_dir is not None:
                collected = multiprocess.merge(
                    collected, multiprocess.read_snapshots(multiprocess_dir)
                )
            yield from families(collected)
        except Exception as exc:  # a scrape gets what could be built, never a traceback
            diagnostics.report("metrics.prometheus", f"exposition failed: {exc!r}")

    def describe(self) -> list[Metric]:
        return []  # registering must not run callbacks


def families(collected: Iterable[MetricData]) -> Iterator[Metric]:
    """Prometheus metric families for a collection."""
    seen: set[str] = set()
    for data in collected:
        name = prometheus_name(data.name, data.kind, data.unit)
        if name in seen:
            diagnostics.report(
                "metrics.prometheus.name_clash",
                f"metric {data.name!r} maps to the Prometheus name {name!r} of another metric; "
                "it is left out of the exposition (rename one of them)",
            )
            continue
        seen.add(name)
        yield _family(name, data)


def _family(name: str, data: MetricData) -> Metric:
    keys = sorted({key for series in data.series for key in series.labels})
    labels = [label_name(key) for key in keys]
    help_text = data.description or data.name
    suffix = unit_suffix(data.unit, data.kind)
    base = name[: -len("_total")] if data.kind == "counter" else name
    unit = suffix if suffix and base.endswith("_" + suffix) else ""
    family: Any
    if data.kind == "counter":
        family = CounterMetricFamily(base, help_text, labels=labels, unit=unit)
    elif data.kind == "histogram":
        family = HistogramMetricFamily(base, help_text, labels=labels, unit=unit)
    else:
        family = GaugeMetricFamily(base, help_text, labels=labels, unit=unit)
    for series in data.series:
        values = [str(series.labels.get(key, "")) for key in keys]
        if data.kind == "histogram":
            family.add_metric(values, _buckets(data.bounds, series), series.value)
        else:
            family.add_metric(values, series.value)
    return family  # type: ignore[no-any-return]


def _buckets(bounds: tuple[float, ...], series: SeriesData) -> list[Any]:
    out: list[Any] = []
    cumulative = 0
    exemplars = series.exemplars
    for index, count in enumerate(series.bucket_counts):
        cumulative += count
        le = floatToGoString(bounds[index]) if index < len(bounds) else "+Inf"  # type: ignore[no-untyped-call]
        exemplar = exemplars[index] if index < len(exemplars) else None
        if exemplar is None:
            out.append((le, cumulative))
        else:
            labels = {"trace_id": exemplar.trace_id, "span_id": exemplar.span_id}
            out.append(
                (le, cumulative, PrometheusExemplar(labels, exemplar.value, exemplar.timestamp))
            )
    return out


def registry_for(store: MetricsStore) -> CollectorRegistry:
    """A registry holding only ``store``'s collector (prometheus_client's own stays apart)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))  # type: ignore[arg-type]
    return registry


class PrometheusApp:
    """``/metrics`` as an app: call it as ASGI ``(scope, receive, send)`` or as WSGI
    ``(environ, start_response)``; ``.asgi`` and ``.wsgi`` are the two apps themselves (give
    ``.asgi`` to a server that inspects the app, e.g. ``uvicorn`` directly).

    >>> from obskit import metrics
    >>> metrics.counter("doc.app.hits").add(3)
    >>> app = metrics.prometheus_app()
    >>> body = []
    >>> environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""}
    >>> chunks = app(environ, lambda status, headers: body.append(status))
    >>> body
    ['200 OK']
    >>> for line in b"".join(chunks).decode().splitlines():
    ...     if "doc_app" in line:
    ...         print(line)
    # HELP doc_app_hits_total doc.app.hits
    # TYPE doc_app_hits_total counter
    doc_app_hits_total 3.0
    """

    def __init__(self, store: MetricsStore) -> None:
        registry = registry_for(store)
        self.wsgi: Callable[..., Any] = make_wsgi_app(registry)
        self.asgi: Callable[..., Any] = make_asgi_app(registry)

    def __call__(self, *args: Any) -> Any:
        if len(args) == 3:  # ASGI: the server awaits what this returns
            return self.asgi(*args)
        return self.wsgi(*args)


class MetricsServer:
    """``/metrics`` on prometheus_client's threaded HTTP server, in a daemon thread."""

    def __init__(self, store: MetricsStore, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server, self._thread = start_http_server(port, host, registry_for(store))
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The ``/metrics`` URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_servers_lock = threading.Lock()


def serve(store: MetricsStore, port: int = 0, host: str = "127.0.0.1") -> MetricsServer:
    """Serve ``store`` for Prometheus at ``http://host:port/metrics``."""
    with _servers_lock:
        return MetricsServer(store, host, port)
