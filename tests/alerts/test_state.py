"""The alert state machine follows Prometheus' alerting rules (rules/alerting.go).

Each test drives an engine on a test clock: observe, move the clock, evaluate.
"""

from __future__ import annotations

from typing import Any

from obskit import diagnostics
from obskit.alerts import AlertEngine
from obskit.exporters import InMemoryExporter

from .conftest import Clock


def states(alerts: list[Any]) -> list[str]:
    return [a.state for a in alerts]


def rule(engine: AlertEngine, **fields: Any) -> None:
    defaults: dict[str, Any] = {
        "name": "hot",
        "metric": "temp",
        "aggregation": "last",
        "window_s": 60,
        "op": ">",
        "threshold": 100,
    }
    engine.add_rule(**{**defaults, **fields})


def step(engine: AlertEngine, clock: Clock, value: float | None, seconds: float = 15) -> list[str]:
    """Move the clock, observe ``value`` (unless None), evaluate: the states that changed."""
    clock.advance(seconds)
    if value is not None:
        engine.observe("temp", value, room="a")
    return states(engine.evaluate())


# -- for -------------------------------------------------------------------------------------------


def test_pending_until_for_has_elapsed_then_firing(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, for_s=60)
    assert step(engine, clock, 150) == ["pending"]
    assert step(engine, clock, 150) == []  # 15 s
    assert step(engine, clock, 150) == []  # 30 s
    assert step(engine, clock, 150) == []  # 45 s
    assert step(engine, clock, 150) == ["firing"]  # 60 s: ts - activeAt >= for
    (alert,) = engine.active()
    assert alert.state == "firing"
    assert alert.fired_at is not None and alert.active_since is not None
    assert alert.fired_at - alert.active_since == 60


def test_a_pending_alert_whose_condition_fails_is_dropped_silently(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(engine, for_s=60)
    assert step(engine, clock, 150) == ["pending"]
    assert step(engine, clock, 50) == []  # never fired: no resolved notification
    assert engine.active() == []
    assert step(engine, clock, 150) == ["pending"]  # the for clock starts again
    assert step(engine, clock, 150, seconds=45) == []
    assert step(engine, clock, 150, seconds=15) == ["firing"]


def test_for_zero_fires_at_once_reported_once_as_firing(engine: AlertEngine, clock: Clock) -> None:
    rule(engine)
    assert step(engine, clock, 150) == ["firing"]
    assert step(engine, clock, 150) == []


def test_firing_resolves_when_the_condition_fails(engine: AlertEngine, clock: Clock) -> None:
    rule(engine)
    step(engine, clock, 150)
    changes = engine.evaluate(clock.advance(15))  # still 150: nothing
    assert changes == []
    clock.advance(15)
    engine.observe("temp", 20.0, room="a")
    (resolved,) = engine.evaluate()
    assert resolved.state == "resolved"
    assert resolved.resolved_at == clock.now
    assert resolved.value == 20.0
    assert engine.active() == []


def test_each_label_set_is_its_own_alert(engine: AlertEngine, clock: Clock) -> None:
    rule(engine)
    clock.advance(15)
    engine.observe("temp", 150.0, room="a")
    engine.observe("temp", 50.0, room="b")
    engine.observe("temp", 160.0, room="c")
    fired = engine.evaluate()
    assert sorted(a.labels["room"] for a in fired) == ["a", "c"]
    assert len({a.fingerprint for a in fired}) == 2
    assert fired[0].labels["alertname"] == "hot" and fired[0].labels["severity"] == "warning"


# -- keep_firing_for -----------------------------------------------------------------------------


def test_keep_firing_for_holds_firing_after_the_condition_clears(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(engine, keep_firing_for_s=60)
    assert step(engine, clock, 150) == ["firing"]
    assert step(engine, clock, 50) == []  # condition false: keep firing since now
    assert step(engine, clock, 50) == []  # 15 s
    assert step(engine, clock, 50, seconds=30) == []  # 45 s
    assert step(engine, clock, 50, seconds=15) == ["resolved"]  # 60 s since it cleared


def test_a_true_evaluation_restarts_the_keep_firing_clock(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(engine, keep_firing_for_s=60)
    step(engine, clock, 150)
    step(engine, clock, 50)  # keep firing since t1
    step(engine, clock, 150, seconds=45)  # true again: the clock restarts
    assert step(engine, clock, 50, seconds=15) == []  # cleared again at t
    assert step(engine, clock, 50, seconds=45) == []  # 45 s < 60 s
    assert step(engine, clock, 50, seconds=15) == ["resolved"]


def test_keep_firing_for_does_not_apply_to_pending_alerts(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(engine, for_s=60, keep_firing_for_s=600)
    assert step(engine, clock, 150) == ["pending"]
    assert step(engine, clock, 50) == []
    assert engine.active() == []


# -- hysteresis ----------------------------------------------------------------------------------


def test_resolve_threshold_stops_a_value_hovering_at_the_threshold_from_flapping(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(engine, threshold=100, resolve_threshold=80)
    assert step(engine, clock, 101) == ["firing"]
    for hovering in (99, 101, 95, 100, 81):
        assert step(engine, clock, hovering) == []  # still above 80: stays firing
    assert step(engine, clock, 79) == ["resolved"]
    assert step(engine, clock, 95) == []  # a new alert needs the threshold again
    assert step(engine, clock, 101) == ["firing"]


def test_without_resolve_threshold_the_same_values_flap(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, threshold=100)
    seen = [step(engine, clock, v) for v in (101, 99, 101, 99)]
    assert seen == [["firing"], ["resolved"], ["firing"], ["resolved"]]


def test_hysteresis_below_a_threshold(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, op="<", threshold=10, resolve_threshold=20)
    assert step(engine, clock, 5) == ["firing"]
    assert step(engine, clock, 15) == []
    assert step(engine, clock, 21) == ["resolved"]


def test_hysteresis_holds_pending_too(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, threshold=100, resolve_threshold=80, for_s=30)
    assert step(engine, clock, 101) == ["pending"]
    assert step(engine, clock, 90) == []  # still active (above 80)
    assert step(engine, clock, 90) == ["firing"]  # 30 s after it became active


# -- no data ---------------------------------------------------------------------------------------


def test_no_data_ok_resolves_like_prometheus(engine: AlertEngine, clock: Clock) -> None:
    rule(engine)
    assert step(engine, clock, 150) == ["firing"]
    assert step(engine, clock, None, seconds=61) == ["resolved"]  # the window emptied


def test_no_data_alerting_fires_on_an_empty_window(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, no_data="alerting")
    assert step(engine, clock, 50) == []
    changes = [(a.state, a.value) for a in engine.evaluate(clock.advance(61))]
    assert changes == [("firing", None)]


def test_no_data_alerting_fires_when_no_series_exists(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, no_data="alerting", matchers={"room": "cellar"}, annotations={"s": "{{ value }}"})
    (alert,) = engine.evaluate(clock.advance(1))
    assert alert.state == "firing"
    labels = {"room": "cellar", "alertname": "hot", "severity": "warning"}
    assert alert.labels == {**engine.external_labels, **labels}
    assert set(engine.external_labels) == {"service", "instance"}
    assert alert.annotations == {"s": "no data"}


def test_no_data_keep_state_keeps_firing_and_freezes_pending(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(engine, no_data="keep_state", keep_firing_for_s=30)
    assert step(engine, clock, 150) == ["firing"]
    assert step(engine, clock, None, seconds=600) == []  # grafana#82585: keep the last state
    assert states(engine.active()) == ["firing"]
    assert step(engine, clock, 50) == []  # data again, and false: keep_firing_for starts now
    assert step(engine, clock, 50, seconds=30) == ["resolved"]


def test_count_sum_and_rate_of_an_existing_quiet_series_are_zero_not_no_data(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(
        engine,
        name="quiet",
        metric="orders",
        aggregation="count",
        op="<",
        threshold=1,
        no_data="keep_state",
    )
    engine.increment("orders", shop="eu")
    assert engine.evaluate(clock.advance(1)) == []
    assert states(engine.evaluate(clock.advance(120))) == ["firing"]  # zero orders in the window


# -- selection, labels, annotations -------------------------------------------------------


def test_matchers_select_series(engine: AlertEngine, clock: Clock) -> None:
    rule(engine, matchers=['room=~"a|b"', "floor!=0"])
    clock.advance(1)
    for room, floor in (("a", "1"), ("b", "0"), ("c", "1")):
        engine.observe("temp", 150.0, room=room, floor=floor)
    assert [a.labels["room"] for a in engine.evaluate()] == ["a"]


def test_annotations_are_rendered_with_value_labels_and_threshold(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(
        engine,
        labels={"team": "facilities", "where": "room-{{ labels.room }}"},
        annotations={
            "summary": "{{ labels.room }} is at {{ value }} (limit {{ threshold }})",
            "prometheus_style": "{{ $labels.room }}: {{ $value }}",
        },
    )
    clock.advance(1)
    engine.observe("temp", 123.456789, room="a")
    (alert,) = engine.evaluate()
    assert alert.annotations == {
        "summary": "a is at 123.457 (limit 100)",
        "prometheus_style": "a: 123.457",
    }
    assert alert.labels["team"] == "facilities" and alert.labels["where"] == "room-a"


def test_transitions_go_to_the_pipeline_and_to_the_log(
    engine: AlertEngine, clock: Clock, memory: InMemoryExporter
) -> None:
    rule(engine, severity="critical")
    step(engine, clock, 150)
    step(engine, clock, 50)
    import obskit

    obskit.flush()
    assert [(a.rule, a.state) for a in memory.of_kind("alert")] == [
        ("hot", "firing"),
        ("hot", "resolved"),
    ]
    logged = [(r.level, r.event) for r in memory.logs if r.logger == "obskit.alerts"]
    assert logged == [("error", "alert hot firing"), ("info", "alert hot resolved")]
    assert memory.of_kind("alert")[0].to_dict()["signal"] == "alert"


# -- anomaly detectors ----------------------------------------------------------------------------


class Result:
    def __init__(self, score: float) -> None:
        self.score = score
        self.is_anomaly = score > 0.9


class JumpDetector:
    """A stand-in for obskit.anomaly: anomalous when a value jumps 10x above the last one."""

    def __init__(self) -> None:
        self.previous: float | None = None

    def update(self, value: float, timestamp: float | None = None) -> Result:
        previous, self.previous = self.previous, value
        jump = 0.0 if not previous else min(1.0, value / previous / 10)
        return Result(jump)


def test_a_rule_can_use_a_detector_instead_of_a_threshold(
    engine: AlertEngine, clock: Clock
) -> None:
    rule(
        engine,
        threshold=None,
        detector=JumpDetector,
        aggregation="last",
        annotations={"s": "score {{ score }}"},
    )
    assert step(engine, clock, 10) == []
    assert step(engine, clock, 11) == []
    clock.advance(15)
    engine.observe("temp", 200.0, room="a")
    (alert,) = engine.evaluate()
    assert (alert.state, alert.details["score"], alert.annotations["s"]) == (
        "firing",
        1.0,
        "score 1",
    )
    assert step(engine, clock, 200) == ["resolved"]  # no jump any more


def test_a_detector_object_is_copied_per_series_and_a_threshold_applies_to_its_score(
    engine: AlertEngine, clock: Clock
) -> None:
    prototype = JumpDetector()
    rule(engine, threshold=0.5, op=">=", detector=prototype)
    clock.advance(1)
    engine.observe("temp", 10.0, room="a")
    engine.observe("temp", 10.0, room="b")
    engine.evaluate()
    clock.advance(15)
    engine.observe("temp", 60.0, room="a")  # a 6x jump: score 0.6
    engine.observe("temp", 20.0, room="b")  # 2x: score 0.2
    assert [a.labels["room"] for a in engine.evaluate()] == ["a"]
    assert prototype.previous is None  # the prototype itself was never fed


def test_a_broken_detector_is_counted_never_raised(engine: AlertEngine, clock: Clock) -> None:
    class Broken:
        def update(self, value: float, timestamp: float | None = None) -> Result:
            raise RuntimeError("model not loaded")

    rule(engine, threshold=None, detector=Broken)
    assert step(engine, clock, 150) == []
    assert diagnostics.problem_counts()["alerts.detector.hot"] == 1
