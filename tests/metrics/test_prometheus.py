"""The Prometheus exposition against the real thing: promtool, a real Prometheus scraping.

Needs the Debian ``prometheus`` package (``prometheus`` and ``promtool``); the tests say so and
skip without it, and ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

import obskit
from obskit import metrics
from obskit.integrations.wsgi import ObskitWSGIMiddleware

from ..alerts.promstack import get_json, need, prometheus, wait_for
from ..loopback import werkzeug_server

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def scrape(url: str, accept: str = "") -> tuple[str, str]:
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers["Content-Type"], response.read().decode()


@pytest.fixture
def server() -> Iterator[Any]:
    obskit.init(service="shop", exporters=[])
    served = metrics.serve()
    yield served
    served.close()


def record_shop_traffic() -> None:
    orders = metrics.counter("orders", description="orders placed")
    latency = metrics.histogram("checkout.duration", unit="s", description="checkout latency")
    metrics.gauge("queue.depth", unit="{item}").set(7, queue="mail")
    metrics.up_down_counter("carts.open").add(3)
    for n in range(100):
        orders.add(shop="eu" if n % 3 else "us")
        latency.record(0.004 + n * 0.004, route="/checkout")  # 0.004 .. 0.4 s


def test_the_exposition_passes_promtool_check_metrics(server: Any) -> None:
    promtool = need("promtool")
    record_shop_traffic()
    with obskit.request("GET /traced"):
        metrics.histogram("checkout.duration", unit="s").record(0.2, route="/checkout")
    content_type, openmetrics = scrape(server.url, OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name for f in text_string_to_metric_families(openmetrics)}  # strict parser
    assert {"orders", "checkout_duration_seconds", "process_threads"} <= families
    content_type, text = scrape(server.url)  # promtool lints the text format
    assert content_type.startswith("text/plain; version=0.0.4")
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr + text
    assert 'orders_total{shop="eu"} 66.0' in text
    assert 'checkout_duration_seconds_bucket{le="0.25",route="/checkout"}' in text
    assert "# TYPE carts_open gauge" in text and 'queue_depth{queue="mail"} 7.0' in text
    assert "process_cpu_time_seconds_total" in text  # runtime metrics, by default


def test_an_exemplar_carries_the_trace_id_of_a_request_in_its_bucket(server: Any) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with werkzeug_server(ObskitWSGIMiddleware(app)) as base:
        traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
        request = urllib.request.Request(base + "/pay", headers={"traceparent": traceparent})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    _, text = scrape(server.url, OPENMETRICS)
    buckets = [
        line
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_bucket") and " # " in line
    ]
    assert len(buckets) == 1, text  # the one bucket the request fell in
    assert f'trace_id="{trace_id}"' in buckets[0]
    le = float(buckets[0].split('le="')[1].split('"')[0])
    value = float(buckets[0].split("} ")[-1].split()[0])
    assert value <= le  # the exemplar's sample is in that bucket


def test_a_real_prometheus_scrapes_and_agrees_with_query(server: Any) -> None:
    record_shop_traffic()
    target = f"127.0.0.1:{server.port}"
    config = json.dumps(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "shop", "static_configs": [{"targets": [target]}]}],
        }
    )
    with prometheus(config, args=("--enable-feature=exemplar-storage",)) as url:

        def instant(expr: str) -> float | None:
            query = urllib.parse.urlencode({"query": expr})
            data = get_json(f"{url}/api/v1/query?{query}")["data"]["result"]
            return float(data[0]["value"][1]) if data else None

        def target_up() -> bool:
            targets = get_json(f"{url}/api/v1/targets")["data"]["activeTargets"]
            return bool(targets) and targets[0]["health"] == "up"

        wait_for(target_up, 60, "the obskit target to be up")
        total = wait_for(lambda: instant("sum(orders_total)"), 60, "orders_total in Prometheus")
        assert total == metrics.query("orders", "sum") == 100
        assert instant('sum(orders_total{shop="us"})') == metrics.query("orders", "sum", shop="us")
        p95 = instant("histogram_quantile(0.95, sum by (le) (checkout_duration_seconds_bucket))")
        ours = metrics.query("checkout.duration", "p95")
        assert p95 is not None and ours is not None
        assert abs(p95 - ours) < 1e-9  # the same buckets, the same interpolation
        assert 0.25 <= ours <= 0.5  # the bucket holding the true p95 (0.38 s)
        assert instant("sum(checkout_duration_seconds_count)") == 100
        assert instant('queue_depth{queue="mail"}') == 7
