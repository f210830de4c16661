"""Status changes become signals and log records; every run feeds the ``obskit.health.status``
metric, so alert rules and exporters see health without polling it."""

from __future__ import annotations

from typing import Any

import obskit
from obskit.exporters import InMemoryExporter
from obskit.health import HealthRegistry


def test_a_status_change_emits_a_health_signal_naming_the_changed_checks(
    memory: InMemoryExporter, clock: Any
) -> None:
    answers = iter([True, True, False, False, True])
    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    registry.register("db", lambda: next(answers))
    registry.register("cache", lambda: True)
    for _ in range(5):
        registry.run()
    obskit.flush()
    signals = memory.of_kind("health")
    assert [(s.status, s.changed) for s in signals] == [
        ("pass", ["db", "cache"]),  # first results
        ("fail", ["db"]),
        ("pass", ["db"]),
    ]
    assert set(signals[1].checks) == {"db:responseTime", "cache:responseTime"}
    assert signals[1].checks["db:responseTime"][0]["output"] == "returned False"


def test_status_changes_are_logged_on_the_obskit_health_logger(
    memory: InMemoryExporter, clock: Any
) -> None:
    answers = iter([True, False, True])
    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    registry.register("db", lambda: next(answers))
    for _ in range(3):
        registry.run()
    obskit.flush()
    logs = [r for r in memory.logs if r.logger == "obskit.health"]
    assert [(r.level, r.event, r.fields["previous"], r.fields["status"]) for r in logs] == [
        ("debug", "health check passing", "none", "pass"),
        ("warning", "health check failing", "pass", "fail"),
        ("info", "health check recovered", "fail", "pass"),
    ]
    assert logs[1].fields["check"] == "db" and logs[1].fields["output"] == "returned False"


def test_every_run_of_a_check_feeds_the_health_status_metric(sink: Any, clock: Any) -> None:
    answers = iter([True, "warn", False])
    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    registry.register("db", lambda: next(answers))
    for _ in range(3):
        registry.run()
    status = [(v, labels) for name, v, labels in sink.observed if name == "obskit.health.status"]
    assert status == [(1.0, {"check": "db"}), (0.5, {"check": "db"}), (0.0, {"check": "db"})]
    durations = [n for n, _, _ in sink.observed if n == "obskit.health.check.duration"]
    assert len(durations) == 3


def test_cached_answers_feed_no_metric_and_emit_nothing(sink: Any, clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=60)
    registry.register("db", lambda: True)
    for _ in range(10):
        registry.run()
    assert len([n for n, _, _ in sink.observed if n == "obskit.health.status"]) == 1
