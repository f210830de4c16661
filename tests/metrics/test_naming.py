"""Prometheus names from OpenTelemetry names and units."""

from __future__ import annotations

import pytest

from obskit.metrics import label_name, prometheus_name


@pytest.mark.parametrize(
    ("name", "kind", "unit", "expected"),
    [
        ("orders", "counter", "", "orders_total"),
        ("orders_total", "counter", "", "orders_total"),
        ("http.server.request.duration", "histogram", "s", "http_server_request_duration_seconds"),
        ("checkout.duration", "histogram", "ms", "checkout_duration_milliseconds"),
        ("process.cpu.time", "counter", "s", "process_cpu_time_seconds_total"),
        ("process.memory.usage", "up_down_counter", "By", "process_memory_usage_bytes"),
        ("process.thread.count", "up_down_counter", "{thread}", "process_threads"),
        ("process.open_file_descriptor.count", "gauge", "", "process_open_file_descriptors"),
        ("jobs.count", "counter", "", "jobs_count_total"),
        ("cart.sum", "gauge", "", "cart_sum_value"),
        ("cache.hit", "gauge", "1", "cache_hit_ratio"),
        ("net.io", "counter", "By/s", "net_io_bytes_per_second_total"),
        ("obskit.errors", "counter", "{event}", "obskit_errors_total"),
        ("size_bytes", "gauge", "By", "size_bytes"),
        ("9lives", "gauge", "", "_9lives"),
        ("a-b/c", "gauge", "", "a_b_c"),
    ],
)
def test_prometheus_names_follow_the_opentelemetry_compatibility_rules(
    name: str, kind: str, unit: str, expected: str
) -> None:
    assert prometheus_name(name, kind, unit) == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [("http.route", "http_route"), ("error.type", "error_type"), ("1x", "_1x"), ("__a", "key__a")],
)
def test_label_names_are_sanitised(label: str, expected: str) -> None:
    assert label_name(label) == expected
