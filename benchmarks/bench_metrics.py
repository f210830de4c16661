"""Cost of recording a metric and of one collection, beside prometheus_client and the
OpenTelemetry SDK in the same run.

Run: ``python benchmarks/bench_metrics.py`` (peers: prometheus-client, a core dependency, and
opentelemetry-sdk, one too). Add ``--quick`` for a short smoke run.

* per call, two labels (``route``, ``method``) on a label set seen before:
  ``Counter.add`` and ``Histogram.record`` of obskit; prometheus_client's
  ``Counter.labels(...).inc`` and ``Histogram.labels(...).observe`` (the same work for a caller:
  a labelled sample) and the pre-bound child's ``.observe`` (what a loop caching the child
  pays); the OpenTelemetry SDK's ``Counter.add`` and ``Histogram.record`` with an attributes
  dict (a ``MeterProvider`` with an in-memory reader, as an app runs it); and the
  ``obskit.metrics.observe`` shortcut (a name lookup more).
* one collection of 10,000 histogram series (obskit's ``STORE.collect()``, the work of a reader
  tick or a scrape before formatting), and the same 10,000 series collected by the OpenTelemetry
  SDK's reader. Best of 5.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prometheus_client
from _harness import per_call_ns, print_table
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from obskit import metrics
from obskit.metrics.store import MetricsStore

QUICK = "--quick" in sys.argv
N = 20_000 if QUICK else 200_000
SERIES = 10_000


def bench_recording() -> list[tuple[str, float, str]]:
    registry = prometheus_client.CollectorRegistry()
    p_counter = prometheus_client.Counter("orders", "o", ["route", "method"], registry=registry)
    p_histogram = prometheus_client.Histogram(
        "latency_seconds", "l", ["route", "method"], registry=registry
    )
    child = p_histogram.labels(route="/cart", method="GET")
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    o_counter = meter.create_counter("orders")
    o_histogram = meter.create_histogram("latency", unit="s")
    attributes = {"route": "/cart", "method": "GET"}
    counter = metrics.counter("bench.orders")
    histogram = metrics.histogram("bench.latency", unit="s")
    observe = metrics.observe
    cases = [
        ("obskit Counter.add", lambda: counter.add(route="/cart", method="GET")),
        ("obskit Histogram.record", lambda: histogram.record(0.12, route="/cart", method="GET")),
        ("obskit metrics.observe (shortcut)", lambda: observe("bench.latency", 0.12,
                                                             route="/cart", method="GET")),
        ("prometheus_client Counter.labels(...).inc", lambda: p_counter.labels(
            route="/cart", method="GET").inc()),
        ("prometheus_client Histogram.labels(...).observe", lambda: p_histogram.labels(
            route="/cart", method="GET").observe(0.12)),
        ("prometheus_client pre-bound child .observe", lambda: child.observe(0.12)),
        ("OpenTelemetry SDK Counter.add", lambda: o_counter.add(1, attributes)),
        ("OpenTelemetry SDK Histogram.record", lambda: o_histogram.record(0.12, attributes)),
    ]  # fmt: skip
    timed = [(name, per_call_ns(fn, number=N)) for name, fn in cases]
    reference = dict(timed)["prometheus_client Histogram.labels(...).observe"]
    return [(name, ns, f"{ns / reference:.2f}") for name, ns in timed]


def bench_collection() -> list[tuple[str, float]]:
    store = MetricsStore(cardinality_limit=SERIES * 2)
    latency = store.declare("histogram", "bench.collect", unit="s")
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    o_histogram = meter.create_histogram("collect", unit="s")
    for n in range(SERIES):
        latency.record(0.1, route=f"/r{n % 100}", shard=str(n // 100))  # type: ignore[attr-defined]
        o_histogram.record(0.1, {"route": f"/r{n % 100}", "shard": str(n // 100)})
    rows = []
    for name, collect in (
        ("obskit STORE.collect()", store.collect),
        ("OpenTelemetry SDK reader.get_metrics_data()", reader.get_metrics_data),
    ):
        best = float("inf")
        for _ in range(3 if QUICK else 5):
            start = time.perf_counter()
            collect()
            best = min(best, time.perf_counter() - start)
        rows.append((name, best * 1000))
    return rows


def main() -> None:
    print_table(
        f"Recording one point, two labels (ns per call, best of 5 x {N:,})",
        ["call", "ns", "x prometheus_client labels().observe"],
        bench_recording(),
    )
    print_table(
        f"One collection of {SERIES:,} histogram series (ms, best of 5)",
        ["collection", "ms"],
        bench_collection(),
    )


if __name__ == "__main__":
    main()
