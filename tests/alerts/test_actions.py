"""Rules that act: on_fire / on_resolve run on a worker thread with a timeout and a rate limit;
the outcome is in the history and in the notification; a failing or hanging action never stops
delivery. Time is the test clock: a hanging action is timed out by advancing it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from obskit.alerts import Action, AlertEngine, RuleError
from obskit.diagnostics import ConfigError
from obskit.signals import Alert

from .conftest import Clock, Recorder

START = 1_000_000.0


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event a hanging action waits on; set at the end so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


def _engine(
    make_engine: Callable[..., AlertEngine], clock: Clock, **rule: Any
) -> tuple[AlertEngine, Recorder]:
    clock.now = START
    engine = make_engine()
    channel = Recorder()
    engine.add_channel("team", channel)
    fields: dict[str, Any] = {
        "name": "slow",
        "metric": "latency",
        "aggregation": "max",
        "window_s": 60,
        "op": ">",
        "threshold": 1.0,
        "channels": ["team"],
    }
    engine.add_rule(**{**fields, **rule})
    return engine, channel


def _actions(engine: AlertEngine) -> list[tuple[str, str, str]]:
    return [(e["hook"], e["name"], e["status"]) for e in engine.history() if e["event"] == "action"]


def test_a_hanging_on_fire_is_timed_out_and_the_notification_still_goes_out(
    make_engine: Callable[..., AlertEngine], clock: Clock, gate: threading.Event
) -> None:
    started = threading.Event()

    def restart_worker(alert: Alert) -> None:
        started.set()
        gate.wait(120)  # hangs until the test ends

    engine, channel = _engine(
        make_engine,
        clock,
        window_s=3600,
        on_fire=Action(restart_worker, timeout_s=600, min_interval_s=0),
    )
    engine.observe("latency", 3.0, route="/checkout")
    (fired,) = engine.evaluate()  # returns although the action hangs
    assert fired.state == "firing"
    assert started.wait(30)
    assert not engine.flush(0.2)  # the notification waits for the action...
    assert channel.sent == []
    clock.advance(599)
    engine.evaluate()
    assert not engine.flush(0.2)  # ...within its timeout...
    clock.advance(1)
    engine.evaluate()  # ...and no longer: the action is timed out at 600 s on the clock
    assert engine.flush(30)
    (notification,) = channel.sent
    assert [a.rule for a in notification.alerts] == ["slow"]
    (run,) = notification.actions
    assert (run.hook, run.status, run.subject) == ("on_fire", "timed_out", fired.fingerprint)
    assert "restart_worker" in run.name
    assert run.describe().endswith("timed out (still running after 600 s)")
    (event,) = [e for e in engine.history() if e["event"] == "action"]
    assert (event["rule"], event["fingerprint"], event["status"], event["at"]) == (
        "slow",
        fired.fingerprint,
        "timed_out",
        START + 600,
    )


def test_a_failing_action_is_recorded_with_its_message_and_delivery_goes_on(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    def flush_cache(alert: Alert) -> None:
        raise ConnectionError(f"cache for {alert.labels['route']} unreachable")

    engine, channel = _engine(make_engine, clock, on_fire=flush_cache)
    engine.observe("latency", 3.0, route="/cart")
    engine.evaluate()
    assert engine.flush(30)  # the notification went once the action ended
    (notification,) = channel.sent
    (run,) = notification.actions
    assert (run.status, run.error) == ("error", "ConnectionError: cache for /cart unreachable")
    ((hook, name, status),) = _actions(engine)
    assert (hook, name.rpartition(".")[2], status) == ("on_fire", "flush_cache", "error")


def test_on_fire_and_on_resolve_get_the_alert_and_succeed(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    seen: list[tuple[str, str, str]] = []

    def opened(alert: Alert) -> None:
        seen.append(("open", alert.state, alert.labels["route"]))

    def closed(alert: Alert) -> None:
        seen.append(("close", alert.state, alert.labels["route"]))

    engine, channel = _engine(make_engine, clock, on_fire=opened, on_resolve=closed)
    engine.observe("latency", 3.0, route="/cart")
    engine.evaluate()
    assert engine.flush(30)
    clock.advance(120)  # the sample left the window: resolved
    engine.evaluate()
    assert engine.flush(30)
    assert seen == [("open", "firing", "/cart"), ("close", "resolved", "/cart")]
    firing, resolved = channel.sent
    assert [r.status for r in firing.actions] == ["ok"]
    assert [(r.hook, r.status) for r in resolved.actions] == [
        ("on_fire", "ok"),
        ("on_resolve", "ok"),
    ]
    assert [(hook, status) for hook, _, status in _actions(engine)] == [
        ("on_fire", "ok"),
        ("on_resolve", "ok"),
    ]


def test_an_action_runs_at_most_once_per_min_interval(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    calls: list[str] = []
    engine, _ = _engine(
        make_engine,
        clock,
        on_fire=Action(lambda alert: calls.append(alert.labels["route"]), min_interval_s=300),
    )
    engine.observe("latency", 3.0, route="/a")
    engine.observe("latency", 3.0, route="/b")
    engine.evaluate()  # two alerts fire at once: the action runs for the first only
    assert engine.flush(30)
    statuses = sorted(status for _, _, status in _actions(engine))
    assert statuses == ["ok", "rate_limited"]
    assert len(calls) == 1
    clock.advance(120)  # both resolve (no on_resolve)
    engine.evaluate()
    clock.advance(180)  # 300 s after the run: allowed again
    engine.observe("latency", 3.0, route="/c")
    engine.evaluate()
    assert engine.flush(30)
    assert len(calls) == 2 and calls[-1] == "/c"
    limited = [e for e in engine.history() if e.get("status") == "rate_limited"]
    assert "min_interval_s=300" in limited[0]["error"]
    assert engine.stats()["actions"] == {"ok": 2, "rate_limited": 1}


def test_actions_load_from_import_paths(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine, _ = _engine(make_engine, clock, on_fire="tests.alerts.test_actions:noop_action")
    (rule,) = engine.rules()
    assert rule.on_fire is not None and rule.on_fire.fn is noop_action
    assert "on_fire" not in rule.to_dict()  # code does not go into rule files


def noop_action(alert: Alert) -> None:
    """An action named by import path in a test."""


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"on_fire": 3}, "field 'on_fire': on_fire must be a function"),
        ({"on_resolve": "nowhere.module:fn"}, "cannot import action 'nowhere.module:fn'"),
    ],
)
def test_bad_actions_are_refused_when_the_rule_is_added(
    make_engine: Callable[..., AlertEngine], clock: Clock, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(RuleError, match=message):
        _engine(make_engine, clock, **fields)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_s": 0}, "timeout_s must be a finite number > 0, not 0"),
        ({"timeout_s": float("inf")}, "timeout_s must be a finite number > 0"),
        ({"min_interval_s": -1}, "min_interval_s must be a finite number >= 0"),
        ({"timeout_s": "5s"}, "timeout_s must be a finite number > 0, not '5s'"),
    ],
)
def test_action_limits_are_checked_when_made(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Action(noop_action, **options)


def test_an_action_is_a_callable() -> None:
    with pytest.raises(ConfigError, match="an action is a function"):
        Action("restart")  # type: ignore[arg-type]


def test_the_rule_exports_to_prometheus_with_a_note_that_its_actions_stay(
    make_engine: Callable[..., AlertEngine], clock: Clock
) -> None:
    engine, _ = _engine(make_engine, clock, on_fire=noop_action)
    export = engine.export_prometheus_rules(kinds={"latency": "gauge"})
    assert "alert: slow" in export.text
    assert export.skipped == []
    assert [note.split(" run ")[0] for note in export.notes] == ["rule 'slow': on_fire"]
    assert engine.export_prometheus_rules(kinds={"latency": "gauge"}, strict=True).notes
