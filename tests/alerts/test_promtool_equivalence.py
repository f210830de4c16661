"""The same series through ``promtool test rules`` (the exported rules) and through obskit's
engine: both fire and resolve at the same evaluations, within one evaluation interval.

Each scenario drives obskit's engine every 15 s with what the application records (counter
increments, histogram observations, gauge values) and writes the same data as the scraped
series Prometheus would hold. obskit's firing alerts at each evaluation become promtool's
expectations; promtool names every evaluation where Prometheus disagrees, and each must sit
next to a change of obskit's state (one evaluation early or late at most).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import obskit.metrics
from obskit.alerts import AlertEngine
from obskit.alerts.prometheus import prometheus_duration
from obskit.alerts.rules import parse_duration
from obskit.metrics import prometheus_name

from .promstack import need, run

STEP = 15
STEPS = 80  # 20 minutes
BAD = range(24, 48)  # six minutes of trouble
BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Scenario:
    """Per step: counter increments, gauge values and histogram observations, by metric."""

    counters: dict[str, list[float]] = field(default_factory=dict)
    gauges: dict[str, list[float]] = field(default_factory=dict)
    histograms: dict[str, list[list[float]]] = field(default_factory=dict)

    def declare(self) -> None:
        """Declare the metrics, as the application does (what both exports and windows read)."""
        for name in self.counters:
            obskit.metrics.counter(name)
        for name in self.gauges:
            obskit.metrics.gauge(name)
        for name in self.histograms:
            obskit.metrics.histogram(name, buckets=BOUNDS)

    def feed(self, engine: AlertEngine, step: int, now: float) -> None:
        for name, increments in self.counters.items():
            engine.increment(name, increments[step], timestamp=now)
        for name, values in self.gauges.items():
            engine.observe(name, values[step], timestamp=now)
        for name, batches in self.histograms.items():
            for value in batches[step]:
                engine.observe(name, value, timestamp=now)

    def input_series(self) -> list[dict[str, str]]:
        out = []
        for name, increments in self.counters.items():
            # a counter of a process that has been up a while (Prometheus' rate does not
            # guess that it started at zero just before the window)
            total, values = 100_000.0, []
            for amount in increments:
                total += amount
                values.append(_number(total))
            out.append({"series": prometheus_name(name, "counter"), "values": " ".join(values)})
        for name, gauge in self.gauges.items():
            values = " ".join(_number(v) for v in gauge)
            out.append({"series": prometheus_name(name, "gauge"), "values": values})
        for metric, batches in self.histograms.items():
            name = prometheus_name(metric, "histogram")
            cumulative = [0] * (len(BOUNDS) + 1)
            total = count = 0.0
            buckets: list[list[str]] = [[] for _ in cumulative]
            sums, counts = [], []
            for batch in batches:
                for value in batch:
                    cumulative[bisect.bisect_left(BOUNDS, value)] += 1
                    total += value
                    count += 1
                running = 0
                for index, bucket in enumerate(cumulative):
                    running += bucket
                    buckets[index].append(str(running))
                sums.append(_number(total))
                counts.append(_number(count))
            for index, upper in enumerate([*map(str, BOUNDS), "+Inf"]):
                out.append(
                    {"series": f'{name}_bucket{{le="{upper}"}}', "values": " ".join(buckets[index])}
                )
            out.append({"series": f"{name}_sum", "values": " ".join(sums)})
            out.append({"series": f"{name}_count", "values": " ".join(counts)})
        return out


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def in_trouble(step: int, bad: float, good: float) -> float:
    return bad if step in BAD else good


def compare(
    tmp_path: Path,
    scenario: Scenario,
    setup: Callable[[AlertEngine], None],
) -> dict[str, list[float]]:
    """Run both engines; return obskit's state-change times per alert (and assert agreement)."""
    need("promtool")
    now = [0.0]
    engine = AlertEngine(
        clock=lambda: now[0],
        window_resolution_s=STEP,
        external_labels={"service": "", "instance": ""},
    )
    scenario.declare()
    setup(engine)
    firing_at: list[set[tuple[str, tuple[tuple[str, str], ...]]]] = []
    for step in range(STEPS):
        now[0] = step * STEP
        scenario.feed(engine, step, now[0])
        engine.evaluate(now[0])
        firing_at.append(
            {
                (a.rule, tuple(sorted(a.labels.items())))
                for a in engine.active()
                if a.state == "firing"
            }
        )
    engine.close()
    export = engine.export_prometheus_rules()
    assert not export.skipped, export.report()
    rule_file = yaml.safe_load(export.text)
    for rule in rule_file["groups"][0]["rules"]:
        rule.pop("annotations", None)  # firing times are compared here, not texts
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_file))
    names = sorted({rule.name for rule in engine.rules()})
    tests = []
    for step, firing in enumerate(firing_at):
        for name in names:
            expected = [
                {"exp_labels": {k: v for k, v in labels if k != "alertname"}}
                for rule, labels in sorted(firing)
                if rule == name
            ]
            tests.append(
                {"eval_time": f"{step * STEP}s", "alertname": name, "exp_alerts": expected}
            )
    test_file = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": f"{STEP}s",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": scenario.input_series(),
                "alert_rule_test": tests,
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test_file, sort_keys=False))
    status, output = run("promtool", "test", "rules", "test.yml", cwd=tmp_path)
    changes = {
        name: [
            step * STEP
            for step in range(1, STEPS)
            if {f for f in firing_at[step] if f[0] == name}
            != {f for f in firing_at[step - 1] if f[0] == name}
        ]
        for name in names
    }
    disagreements = [
        (name, parse_duration(at))
        for name, at in re.findall(r"alertname: (\S+), time: (\S+),", output)
    ]
    assert status == 0 or disagreements, output
    for name, at in disagreements:
        near = [t for t in changes[name] if abs(t - at) <= STEP]
        assert near, f"{name} differs at {at:g}s, not next to a change ({changes[name]})\n{output}"
    for name in names:  # each alert fired (and resolved) in obskit: the test can fail
        assert len(changes[name]) >= (1 if name.endswith("_ticket") else 2), (name, changes)
    return changes


GAUGE = Scenario(gauges={"eq.temp": [in_trouble(s, 60 + (s - 24) * 5, 20) for s in range(STEPS)]})
COUNTER = Scenario(counters={"eq.requests": [in_trouble(s, 60, 15) for s in range(STEPS)]})
HISTOGRAM = Scenario(
    histograms={
        "eq.latency": [
            ([0.05] * 10 + [0.8] * (15 + s % 3)) if s in BAD else [0.05] * 18 + [0.3] * 2
            for s in range(STEPS)
        ]
    }
)
RATIO = Scenario(
    counters={
        "eq.requests": [20.0] * STEPS,
        "eq.errors": [in_trouble(s, 6, 0) for s in range(STEPS)],
    }
)


@pytest.mark.parametrize(
    ("aggregation", "threshold"), [("avg", 70), ("min", 50), ("max", 100), ("last", 120)]
)
def test_gauge_aggregations_agree(tmp_path: Path, aggregation: str, threshold: float) -> None:
    compare(
        tmp_path,
        GAUGE,
        lambda e: e.add_rule(
            name=f"temp_{aggregation}",
            metric="eq.temp",
            aggregation=aggregation,
            window_s="1m",
            threshold=threshold,
        ),
    )


@pytest.mark.parametrize(("aggregation", "threshold"), [("rate", 2), ("sum", 150)])
def test_counter_aggregations_agree(tmp_path: Path, aggregation: str, threshold: float) -> None:
    compare(
        tmp_path,
        COUNTER,
        lambda e: e.add_rule(
            name=f"requests_{aggregation}",
            metric="eq.requests",
            aggregation=aggregation,
            window_s="1m",
            threshold=threshold,
        ),
    )


@pytest.mark.parametrize(
    ("aggregation", "threshold"),
    [
        ("count", 90),
        ("sum", 20),
        ("rate", 0.3),
        ("avg", 0.3),
        ("p50", 0.2),
        ("p90", 0.6),
        ("p95", 0.6),
        ("p99", 0.6),
    ],
)
def test_histogram_aggregations_agree(tmp_path: Path, aggregation: str, threshold: float) -> None:
    compare(
        tmp_path,
        HISTOGRAM,
        lambda e: e.add_rule(
            name=f"latency_{aggregation}",
            metric="eq.latency",
            aggregation=aggregation,
            window_s="1m",
            threshold=threshold,
        ),
    )


def test_ratio_agrees(tmp_path: Path) -> None:
    compare(
        tmp_path,
        RATIO,
        lambda e: e.add_rule(
            name="error_ratio",
            metric="eq.errors",
            denominator="eq.requests",
            aggregation="rate",
            window_s="2m",
            threshold=0.1,
        ),
    )


def test_slo_burn_rate_agrees(tmp_path: Path) -> None:
    good = Scenario(
        counters={
            "eq.requests": [20.0] * STEPS,
            "eq.good": [in_trouble(s, 10, 20) for s in range(STEPS)],
        }
    )
    changes = compare(
        tmp_path,
        good,
        lambda e: e.add_slo(
            name="checkout", good="eq.good", total="eq.requests", objective=0.99, window_s="1d"
        ),
    )
    fired, resolved = changes["checkout_burn_rate_page"][:2]
    assert BAD.start * STEP < fired < BAD.stop * STEP < resolved


def test_durations_round_trip() -> None:
    assert parse_duration(prometheus_duration(1234.0)) == 1234.0
