"""Each notification carries what else was going on: the error groups whose rate rose in the
alert's window (with dashboard links when configured), the running release, and exemplar
traces of the rule's metric. Errors, metrics and alerts all read one test clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import obskit
from obskit import diagnostics, metrics
from obskit.alerts import AlertEngine
from obskit.alerts.enrich import rising_error_groups
from obskit.errors import ErrorGroup
from obskit.exporters import InMemoryExporter

from .conftest import Clock, Recorder

START = 1_000_020.0  # the alert fires here (a minute boundary is at 1_000_020)


@pytest.fixture
def shop(clock: Clock) -> Iterator[InMemoryExporter]:
    memory = InMemoryExporter()
    obskit.init(
        service="shop",
        release="1.4.2",
        dashboard_url="https://ops.example.com/obskit/",
        exporters=[memory],
    )
    obskit.errors._set_clock(clock)
    yield memory
    obskit.shutdown()


def _fail(kind: type[Exception], message: str) -> None:
    try:
        raise kind(message)
    except kind:
        obskit.capture_exception()


def test_an_error_spike_in_a_latency_rules_window_is_listed_with_release_and_trace(
    shop: InMemoryExporter, clock: Clock, make_engine: Callable[..., AlertEngine]
) -> None:
    engine = make_engine(group_wait_s=0)
    channel = Recorder()
    engine.add_channel("team", channel)
    latency = metrics.histogram("shop.checkout.duration", unit="s", buckets=[0.5, 1, 5])
    metrics.add_sink(engine.store)
    try:
        engine.add_rule(
            name="slow_checkout",
            metric="shop.checkout.duration",
            aggregation="max",
            window_s=300,
            threshold=1.0,
            channels=["team"],
        )
        # A steady error, once a minute for 20 minutes: its rate does not rise.
        clock.now = START - 1200
        for _ in range(21):
            _fail(TimeoutError, "cache answered slowly")
            clock.advance(60)
        # A spike in the last three minutes: 12 KeyErrors.
        clock.now = START - 180
        for _ in range(12):
            _fail(KeyError, "sku")
            clock.advance(15)
        clock.now = START
        with obskit.request("POST /checkout") as request:
            latency.record(2.5, route="/checkout")
        latency.record(0.2, route="/checkout")  # outside a trace: no exemplar
        (alert,) = engine.evaluate()
        assert engine.flush(10)
    finally:
        metrics.remove_sink(engine.store)
    (notification,) = channel.sent
    assert notification.release == "1.4.2"
    (group,) = notification.error_groups
    spike = next(g for g in obskit.errors.groups() if g.title.startswith("KeyError"))
    assert (group.fingerprint, group.title, group.count, group.previous_count) == (
        spike.fingerprint,
        "KeyError: 'sku'",
        12,
        0,
    )
    assert group.url == f"https://ops.example.com/obskit/errors/{spike.fingerprint}"
    (trace,) = notification.exemplars
    assert (trace.alert, trace.trace_id, trace.value) == (alert.fingerprint, request.trace_id, 2.5)
    assert trace.url == f"https://ops.example.com/obskit/traces/{request.trace_id}"
    lines = notification.context_lines()
    assert "Release: 1.4.2" in lines
    assert any(line.startswith("Error group KeyError: 'sku': 12 events") for line in lines)


def test_without_a_dashboard_url_there_are_no_links(
    clock: Clock, make_engine: Callable[..., AlertEngine]
) -> None:
    obskit.init(service="shop", exporters=[])
    obskit.errors._set_clock(clock)
    try:
        engine = make_engine(group_wait_s=0)
        channel = Recorder()
        engine.add_channel("team", channel)
        clock.now = START - 30
        _fail(ValueError, "bad coupon")
        clock.now = START
        engine.trigger("coupons_broken", channels=["team"])  # a manual alert: a 5 min window
        assert engine.flush(10)
        (notification,) = channel.sent
        (group,) = notification.error_groups
        assert (group.title, group.count, group.url) == ("ValueError: bad coupon", 1, "")
        assert notification.release is None and notification.exemplars == []
    finally:
        obskit.shutdown()


def _group(fingerprint: str, minutes: dict[int, int]) -> ErrorGroup:
    history = tuple((float(minute * 60), count) for minute, count in sorted(minutes.items()))
    last = max(minutes) * 60.0 + 59
    return ErrorGroup(fingerprint, f"Error {fingerprint}", "app.py", "error",
                      sum(minutes.values()), min(minutes) * 60.0, last, 0, history,
                      "unresolved", 0, "")  # fmt: skip


def test_rises_are_counted_in_whole_minutes_against_the_window_before() -> None:
    groups = [
        _group("rising", {100: 1, 104: 3, 105: 4}),  # 7 in 103..105, 1 in 100..102
        _group("flat", {101: 2, 104: 2}),  # 2 and 2: not a rise
        _group("new", {105: 1}),
        _group("gone", {90: 9}),  # nothing in either window: stops the scan
    ]
    rises = rising_error_groups(groups, start=103 * 60 + 30, end=105 * 60 + 10)
    assert [(r.fingerprint, r.count, r.previous_count) for r in rises] == [
        ("rising", 7, 1),
        ("new", 1, 0),
    ]
    assert rising_error_groups(groups, start=103 * 60, end=105 * 60, limit=1)[0].fingerprint == (
        "rising"
    )


def test_a_failing_enrichment_never_stops_the_notification(
    clock: Clock, make_engine: Callable[..., AlertEngine], monkeypatch: pytest.MonkeyPatch
) -> None:
    obskit.init(service="shop", release="2.0.0", exporters=[])
    try:

        def broken(since: float | None = None) -> list[ErrorGroup]:
            raise RuntimeError("error store unavailable")

        monkeypatch.setattr(obskit.errors, "groups", broken)
        engine = make_engine(group_wait_s=0)
        channel = Recorder()
        engine.add_channel("team", channel)
        clock.now = START
        engine.trigger("payments_down", channels=["team"])
        assert engine.flush(10)
        (notification,) = channel.sent
        assert notification.error_groups == [] and notification.release == "2.0.0"
        assert diagnostics.problem_counts()["alerts.enrich.errors"] >= 1
    finally:
        obskit.shutdown()
