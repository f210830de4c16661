"""Cost of recording a metric point and of evaluating alert rules, beside prometheus_client.

Run: ``python benchmarks/bench_alerts.py`` (peer from the ``bench`` extra: prometheus-client).

* ``obskit.metrics.observe`` per call, with the default alert engine listening: on a metric no
  rule reads (running totals only), on one an ``avg`` rule reads (plus a window ring), on one a
  ``p95`` rule reads (plus the quantile sketch); ``obskit.metrics.increment`` likewise. Beside
  them, in the same run: ``prometheus_client`` ``Histogram.labels(...).observe`` and
  ``Counter.labels(...).inc`` (the same work for a caller: a labelled sample), and the
  pre-bound child ``.observe`` (what a hot loop that caches the child pays).
* one full ``evaluate()`` of 1,000 rules over 10,000 series (windows filled with 10 points per
  series), in two layouts: 1,000 metrics of 10 series with one rule each (10,000 rule-series
  pairs), and 100 metrics of 100 series with 10 rules each (100,000 pairs); with cheap
  aggregations (avg, max, rate, count, last), with p95 everywhere, and with ratio rules
  aggregated by route (each reads its metric and a denominator metric). Best of 5.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prometheus_client
from _harness import per_call_ns, print_table

import obskit
import obskit.alerts
from obskit import metrics
from obskit.alerts import AlertEngine

N = 200_000


def bench_observe() -> list[tuple[str, float]]:
    registry = prometheus_client.CollectorRegistry()
    histogram = prometheus_client.Histogram("latency_ms", "latency", ["route"], registry=registry)
    counter = prometheus_client.Counter("orders", "orders", ["route"], registry=registry)
    child = histogram.labels(route="/cart")
    engine = obskit.alerts.configure(evaluation_interval_s=None)
    engine.add_rule(name="avg", metric="read_avg", aggregation="avg", window_s=300, threshold=1e9)
    engine.add_rule(name="p95", metric="read_p95", aggregation="p95", window_s=300, threshold=1e9)
    engine.add_rule(name="cnt", metric="read_rate", aggregation="rate", window_s=300, threshold=1e9)
    observe, increment = metrics.observe, metrics.increment
    rows = [
        (
            "obskit observe, no rule on the metric",
            per_call_ns(lambda: observe("plain", 12.5, route="/cart"), number=N),
        ),
        (
            "obskit observe, an avg rule reads it",
            per_call_ns(lambda: observe("read_avg", 12.5, route="/cart"), number=N),
        ),
        (
            "obskit observe, a p95 rule reads it",
            per_call_ns(lambda: observe("read_p95", 12.5, route="/cart"), number=N),
        ),
        (
            "obskit increment, a rate rule reads it",
            per_call_ns(lambda: increment("read_rate", 1, route="/cart"), number=N),
        ),
        (
            "prometheus_client Histogram.labels().observe",
            per_call_ns(lambda: histogram.labels(route="/cart").observe(12.5), number=N),
        ),
        (
            "prometheus_client Counter.labels().inc",
            per_call_ns(lambda: counter.labels(route="/cart").inc(), number=N),
        ),
        (
            "prometheus_client bound child Histogram.observe",
            per_call_ns(lambda: child.observe(12.5), number=N),
        ),
    ]
    obskit.alerts.reset()
    return rows


def build(
    metric_count: int, series_count: int, rules_each: int, aggregations: list[str]
) -> tuple[AlertEngine, list[float]]:
    now = [1_000_000.0]
    engine = AlertEngine(clock=lambda: now[0], series_ttl_s=None)
    for m in range(metric_count):
        for r in range(rules_each):
            aggregation = aggregations[(m + r) % len(aggregations)]
            if aggregation == "ratio":  # metric_m / metric_m+1 per route, across instances
                engine.add_rule(
                    name=f"rule_{m}_{r}",
                    metric=f"metric_{m}",
                    denominator=f"metric_{(m + 1) % metric_count}",
                    aggregation="sum",
                    aggregate_by=["route"],
                    window_s=300,
                    threshold=1.9 + r * 0.01,
                )
                continue
            engine.add_rule(
                name=f"rule_{m}_{r}",
                metric=f"metric_{m}",
                aggregation=aggregation,
                window_s=300,
                op=">",
                threshold=99.0 + r * 0.1,  # a few alerts fire: the steady state of a real set
            )
    rng = random.Random(7)
    for m in range(metric_count):
        for s in range(series_count):
            labels = {"route": f"/r{s}"}
            for k in range(10):
                engine.store.observe(f"metric_{m}", rng.random() * 100, labels, now[0] - k * 25)
    return engine, now


def bench_evaluate() -> list[tuple[str, str, float, int]]:
    rows = []
    layouts = [(1000, 10, 1), (100, 100, 10)]
    for metric_count, series_count, rules_each in layouts:
        for label, aggregations in (
            ("avg/max/rate/count/last", ["avg", "max", "rate", "count", "last"]),
            ("p95", ["p95"]),
            ("ratio (denominator) by route", ["ratio"]),
        ):
            engine, now = build(metric_count, series_count, rules_each, aggregations)
            engine.evaluate()
            best = float("inf")
            for _ in range(5):
                now[0] += 1.0
                start = time.perf_counter()
                engine.evaluate()
                best = min(best, time.perf_counter() - start)
            layout = f"{metric_count} metrics x {series_count} series, {rules_each} rule(s) each"
            pairs = metric_count * series_count * rules_each
            rows.append((layout, label, best * 1000, pairs))
            engine.close()
    return rows


def main() -> None:
    obskit.init(service="bench", exporters=["memory"], install_hooks=False)  # a quiet sink
    observe_rows = bench_observe()
    peer = dict(observe_rows)["prometheus_client Histogram.labels().observe"]
    print_table(
        f"Recording one point (best of 5 x {N:,} calls; Python {sys.version.split()[0]})",
        ["call", "ns per call", "x prometheus Histogram.labels().observe"],
        [(name, ns, f"{ns / peer:.2f}") for name, ns in observe_rows],
    )
    evaluate_rows = bench_evaluate()
    print_table(
        "One evaluate() of 1,000 rules over 10,000 series (best of 5)",
        ["layout", "aggregations", "ms", "rule-series pairs", "us per pair"],
        [
            (layout, agg, ms, f"{pairs:,}", ms * 1000 / pairs)
            for layout, agg, ms, pairs in evaluate_rows
        ],
    )
    obskit.shutdown()


if __name__ == "__main__":
    main()
