"""obskit.anomaly.watch: metric series in, Anomaly signals out."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

import obskit
from obskit import anomaly, diagnostics, metrics
from obskit.config import ConfigError
from obskit.exporters import InMemoryExporter
from obskit.signals import Anomaly


@pytest.fixture
def stop_watches() -> Any:
    started: list[anomaly.Watch] = []
    yield started.append
    for watcher in started:
        watcher.stop()


def _steady(name: str, points: int = 60, start: float = 0.0, **labels: Any) -> None:
    for i in range(points):
        metrics.observe(name, 20.0 + i % 3, timestamp=start + i, **labels)


def test_a_flagged_point_becomes_an_anomaly_signal(
    memory: InMemoryExporter, stop_watches: Any
) -> None:
    stop_watches(anomaly.watch("queue.depth", anomaly.EWMA(warmup=10)))
    _steady("queue.depth", queue="mail")
    metrics.observe("queue.depth", 95.0, timestamp=60.0, queue="mail")
    obskit.flush()
    [signal] = memory.of_kind("anomaly")
    assert isinstance(signal, Anomaly)
    assert (signal.metric, signal.value, signal.labels) == ("queue.depth", 95.0, {"queue": "mail"})
    assert signal.detector == "ewma" and signal.service == "test"
    assert signal.lower is not None and signal.upper is not None
    assert signal.lower < 21.0 < signal.upper < 95.0
    payload = signal.to_dict()
    assert next(iter(payload)) == "signal" and payload["signal"] == "anomaly"
    json.dumps(payload, allow_nan=False)


def test_each_label_set_gets_its_own_detector(stop_watches: Any) -> None:
    watcher = anomaly.watch("latency", anomaly.EWMA(warmup=5))
    stop_watches(watcher)
    _steady("latency", route="/cart")
    for i in range(60):
        metrics.observe("latency", 500.0 + i % 3, timestamp=float(i), route="/pay")
    assert set(watcher.detectors) == {(("route", "/cart"),), (("route", "/pay"),)}
    # 500 ms is normal for /pay, so nothing was flagged on either series.
    assert not any(result.is_anomaly for result in watcher.last.values())
    assert all(detector.seen == 60 for detector in watcher.detectors.values())


def test_labels_keep_only_the_matching_series(stop_watches: Any) -> None:
    watcher = anomaly.watch("latency", anomaly.EWMA(), labels={"route": "/cart"})
    stop_watches(watcher)
    _steady("latency", route="/cart")
    _steady("latency", route="/pay")
    _steady("other", route="/cart")
    assert list(watcher.detectors) == [(("route", "/cart"),)]


def test_counters_are_summed_per_interval_and_quiet_intervals_count_as_zero(
    stop_watches: Any,
) -> None:
    watcher = anomaly.watch("orders", anomaly.EWMA(), interval_s=10.0)
    stop_watches(watcher)
    for moment in (1.0, 2.0, 9.0):
        metrics.increment("orders", timestamp=moment)
    for moment in (21.0, 22.0, 23.0, 24.0, 25.0):  # nothing in [10, 20)
        metrics.increment("orders", timestamp=moment)
    metrics.increment("orders", timestamp=35.0)  # closes [20, 30)
    detector = watcher.detectors[()]
    assert detector.seen == 3  # [0, 10) = 3, [10, 20) = 0, [20, 30) = 5
    assert watcher.last[()].value == 5.0 and watcher.last[()].timestamp == 20.0


def test_observed_values_are_averaged_per_interval(stop_watches: Any) -> None:
    watcher = anomaly.watch("temperature", anomaly.EWMA(), interval_s=60.0)
    stop_watches(watcher)
    for moment, value in ((0.0, 10.0), (30.0, 20.0), (130.0, 99.0)):  # no gap filling
        metrics.observe("temperature", value, timestamp=moment)
    assert watcher.detectors[()].seen == 1
    assert watcher.last[()].value == 15.0


def test_the_injected_clock_stamps_points_without_a_timestamp(stop_watches: Any) -> None:
    now = [1000.0]
    watcher = anomaly.watch("jobs", anomaly.EWMA(), clock=lambda: now[0])
    stop_watches(watcher)
    metrics.observe("jobs", 3.0)
    now[0] = 1060.0
    metrics.observe("jobs", 4.0)
    assert watcher.detectors[()].last_timestamp == 1060.0


def test_publish_score_makes_the_score_a_metric_for_alert_rules(
    stop_watches: Any,
    sink: Any,  # the RecordingSink of tests/conftest.py
) -> None:
    stop_watches(anomaly.watch("queue.depth", anomaly.EWMA(warmup=10), publish_score=True))
    _steady("queue.depth", queue="mail")
    metrics.observe("queue.depth", 95.0, timestamp=60.0, queue="mail")
    scores = [point for point in sink.observed if point[0].endswith(".anomaly_score")]
    assert len(scores) == 61
    assert scores[-1][0] == "queue.depth.anomaly_score" and scores[-1][2] == {"queue": "mail"}
    assert scores[-1][1] > 0.9 > max(score for _, score, _ in scores[:-1])
    # a score is a level, not a distribution: a gauge holding the latest score per series
    score = metrics.instruments()["queue.depth.anomaly_score"]
    assert (score.kind, score.prometheus_name) == ("gauge", "queue_depth_anomaly_score")
    [series] = metrics.snapshot()["queue.depth.anomaly_score"].series
    assert series.value == scores[-1][1]


def test_an_alert_rule_on_the_published_score_fires_on_the_anomaly(stop_watches: Any) -> None:
    from obskit.alerts import AlertEngine

    start = 1_000_000.0
    engine = AlertEngine(clock=lambda: start + 61, group_wait_s=0)
    engine.stop()  # evaluated by the test
    metrics.add_sink(engine.store)
    try:
        stop_watches(anomaly.watch("queue.depth", anomaly.EWMA(warmup=10), publish_score=True))
        engine.add_rule(
            name="queue_anomaly",
            metric="queue.depth.anomaly_score",
            aggregation="max",
            window_s=300,
            op=">=",
            threshold=0.9,
        )
        _steady("queue.depth", start=start, queue="mail")
        assert engine.evaluate(start + 59.5) == []
        metrics.observe("queue.depth", 95.0, timestamp=start + 60, queue="mail")
        (alert,) = engine.evaluate(start + 61)
    finally:
        metrics.remove_sink(engine.store)
        engine.close(timeout_s=2)
    assert (alert.rule, alert.state, alert.labels["queue"]) == ("queue_anomaly", "firing", "mail")


def test_a_published_score_clashing_with_a_declared_metric_is_a_config_error() -> None:
    metrics.histogram("orders.rate.anomaly_score")
    with pytest.raises(ConfigError, match=r"orders\.rate\.anomaly_score"):
        anomaly.watch("orders.rate", publish_score=True)


def test_a_broken_callback_is_counted_not_raised(
    memory: InMemoryExporter, stop_watches: Any
) -> None:
    def broken(signal: Anomaly) -> None:
        raise RuntimeError("pager down")

    stop_watches(anomaly.watch("queue.depth", anomaly.EWMA(warmup=10), on_anomaly=broken))
    _steady("queue.depth")
    metrics.observe("queue.depth", 95.0, timestamp=60.0)
    assert diagnostics.problem_counts()["anomaly.on_anomaly"] == 1
    obskit.flush()
    assert len(memory.of_kind("anomaly")) == 1  # the signal still went out


def test_series_beyond_the_limit_are_counted_and_ignored(stop_watches: Any) -> None:
    watcher = anomaly.watch("latency", anomaly.EWMA(), max_series=2)
    stop_watches(watcher)
    for user in range(5):
        metrics.observe("latency", 1.0, timestamp=1.0, user=user)
    assert len(watcher.detectors) == 2
    assert diagnostics.problem_counts()["anomaly.watch_series_limit"] == 3


def test_a_bad_value_reaches_no_detector_and_raises_nothing(stop_watches: Any) -> None:
    watcher = anomaly.watch("latency", anomaly.EWMA())
    stop_watches(watcher)
    watcher.observe("latency", float("nan"), {}, 1.0)  # as a sink that does not filter
    watcher.observe("latency", "slow", {}, 2.0)  # type: ignore[arg-type]
    assert watcher.detectors[()].problems == {"value_not_finite": 1, "value_not_numeric": 1}


def test_state_and_restore_carry_every_series_over_a_restart(stop_watches: Any) -> None:
    first = anomaly.watch("latency", anomaly.EWMA(warmup=5))
    _steady("latency", route="/cart")
    _steady("latency", route="/pay")
    saved = json.loads(json.dumps(first.state()))
    first.stop()
    second = anomaly.watch("latency", anomaly.EWMA(warmup=5))
    stop_watches(second)
    second.restore(saved)
    assert {series: d.state() for series, d in second.detectors.items()} == {
        series: d.state() for series, d in first.detectors.items()
    }
    with pytest.raises(anomaly.StateError):
        second.restore({"series": [{"labels": {}, "detector": {"detector": "ewma"}}]})


def test_stop_unregisters_the_sink() -> None:
    watcher = anomaly.watch("latency")
    assert watcher in metrics._sinks
    watcher.stop()
    assert watcher not in metrics._sinks
    default_watch = anomaly.watch("x")  # no detector: default() per series
    metrics.observe("x", 1.0, timestamp=1.0)
    default_watch.stop()
    assert isinstance(default_watch.detectors[()], anomaly.MultiScale)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metric": ""},
        {"metric": "x", "interval_s": 0},
        {"metric": "x", "max_series": 0},
        {"metric": "x", "detector": 3},
    ],
)
def test_watch_configuration_mistakes_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        anomaly.watch(**kwargs)


def test_the_default_flags_a_sustained_latency_shift_once_and_says_why(
    memory: InMemoryExporter, stop_watches: Any
) -> None:
    rng = random.Random(0)
    stop_watches(anomaly.watch("http.server.request.duration"))
    day = 1440  # one point a minute: a daily cycle of 15 to 25 ms, with jitter
    for i in range(3 * day + 360):
        shift = 40.0 if i >= 3 * day else 0.0  # then 6 hours at +40 ms
        value = 20.0 + 5.0 * math.sin(2 * math.pi * i / day) + rng.uniform(-1, 1) + shift
        metrics.observe("http.server.request.duration", value, timestamp=60.0 * i)
    obskit.flush()
    flagged = memory.of_kind("anomaly")
    during = [signal for signal in flagged if signal.timestamp >= 60.0 * 3 * day]
    assert [signal.timestamp for signal in during] == [60.0 * 3 * day]  # once, at once
    assert len(flagged) - len(during) <= 3  # a young history: a few flags on its first day
    [signal] = during
    assert signal.detector == "multiscale" and signal.member == "range"
    assert signal.reason.startswith(f"{signal.value:.4g} is above anything seen before")
    assert signal.to_dict()["reason"] == signal.reason and signal.to_dict()["member"] == "range"
    assert signal.lower is None or not signal.lower <= signal.value <= (signal.upper or 0.0)
