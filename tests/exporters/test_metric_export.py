"""Metrics reach every exporter on their own: no alert rule, no flush, only init and shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from otlp_receiver import Receiver, attributes_of

from obskit import store

SCRIPT = """
import sys
import obskit
from obskit.exporters import InMemoryExporter, JsonLinesExporter, OTLPExporter, SQLiteExporter

memory = InMemoryExporter()
obskit.init(service="shop", runtime_metrics=False, exporters=[
    memory,
    JsonLinesExporter({jsonl!r}),
    SQLiteExporter({db!r}),
    OTLPExporter({endpoint!r}, protocol={protocol!r}),
])
orders = obskit.metrics.counter("orders", description="orders placed")
latency = obskit.metrics.histogram("checkout.duration", unit="s", buckets=[0.1, 0.5, 1.0])
for n in range(10):
    orders.add(shop="eu")
    latency.record(n / 10, route="/checkout")
obskit.shutdown()  # no flush, no collect: the final collection sends everything
assert "obskit.alerts" not in sys.modules, "nothing here needs the alert engine"
points = {{p.name: p for p in memory.of_kind("metric")}}
print(points["orders"].value, points["checkout.duration"].count)
"""


def test_ten_adds_reach_every_exporter_as_a_sum_of_ten_without_any_rule(
    tmp_path: Path, receiver: Receiver
) -> None:
    jsonl, db = tmp_path / "m.jsonl", tmp_path / "m.db"
    script = SCRIPT.format(
        jsonl=str(jsonl), db=str(db), endpoint=receiver.endpoint, protocol=receiver.protocol
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10.0", "10"]  # InMemory

    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    by_name = {line["name"]: line for line in lines if line["signal"] == "metric"}
    assert by_name["orders"]["value"] == 10 and by_name["orders"]["metric_type"] == "counter"
    assert by_name["checkout.duration"]["bucket_counts"] == [2, 4, 4, 0]  # JSON lines

    with store.open(db) as stored:
        assert sum(r.sum for r in stored.metrics(name="orders")) == 10  # SQLite
        histogram = stored.histogram("checkout.duration")
    assert histogram.count == 10 and dict(histogram.buckets) == {0.1: 2, 0.5: 4, 1.0: 4}

    assert receiver.received.wait_for(lambda r: len(r.metrics) >= 2)  # OTLP
    metrics = {m.name: m for _, _, m in receiver.received.metrics}
    (total,) = metrics["orders"].sum.data_points
    assert total.as_double == 10 and metrics["orders"].sum.is_monotonic
    assert attributes_of(total) == {"shop": "eu"}
    (buckets,) = metrics["checkout.duration"].histogram.data_points
    assert list(buckets.explicit_bounds) == [0.1, 0.5, 1.0]
    assert list(buckets.bucket_counts) == [2, 4, 4, 0]
    assert (buckets.count, buckets.min, buckets.max) == (10, 0.0, 0.9)
    assert metrics["checkout.duration"].unit == "s"


def test_a_process_exiting_without_shutdown_still_sends_its_metrics(tmp_path: Path) -> None:
    jsonl = tmp_path / "exit.jsonl"
    script = f"""
import obskit
from obskit.exporters import JsonLinesExporter
obskit.init(runtime_metrics=False, exporters=[JsonLinesExporter({str(jsonl)!r})])
obskit.metrics.counter("jobs").add(3)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    points = [(p["name"], p["value"]) for p in lines if p["signal"] == "metric"]
    assert [p for p in points if not p[0].startswith("obskit.")] == [("jobs", 3.0)]
