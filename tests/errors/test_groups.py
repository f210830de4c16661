"""Error groups: counts, first/last seen, users, per-minute history, rate limit, regressions."""

from __future__ import annotations

import obskit
from obskit.errors.groups import GroupStore
from obskit.exporters import InMemoryExporter
from obskit.signals import ErrorEvent

from .conftest import FakeClock


def fail(message: str = "card declined", **context: object) -> ErrorEvent:
    try:
        raise RuntimeError(message)
    except RuntimeError as exc:
        event = obskit.capture_exception(exc, **context)
    assert event is not None
    return event


def other_failure() -> ErrorEvent:
    try:
        {}["missing"]
    except KeyError as exc:
        event = obskit.capture_exception(exc)
    assert event is not None
    return event


def test_groups_count_events_and_know_first_and_last_seen_and_users(clock: FakeClock) -> None:
    start = clock.now
    for user in ("u-1", "u-2", "u-1", None, "u-3"):
        fail(user=user) if user else fail()
        clock.advance(5)
    (group,) = obskit.errors.groups()
    assert group.count == 5 and group.users == 3
    assert (group.first_seen, group.last_seen) == (start, start + 20)
    assert group.title == "RuntimeError: card declined" and group.level == "error"
    assert group.culprit.endswith(" in fail") and group.status == "unresolved"


def test_groups_come_newest_first(clock: FakeClock) -> None:
    fail()
    clock.advance(1)
    other = other_failure()
    clock.advance(1)
    obskit.capture_message("disk almost full", level="warning")
    titles = [group.title for group in obskit.errors.groups()]
    assert titles == ["disk almost full", "KeyError: 'missing'", "RuntimeError: card declined"]
    assert obskit.errors.get_group(other.fingerprint[:10]) is not None


def test_groups_since_leaves_out_those_not_seen_since(clock: FakeClock) -> None:
    old = fail()
    clock.advance(600)
    recent = other_failure()
    assert [g.fingerprint for g in obskit.errors.groups(since=clock.now - 60)] == [
        recent.fingerprint
    ]
    assert len(obskit.errors.groups(since=clock.now - 600)) == 2
    assert old.fingerprint in {g.fingerprint for g in obskit.errors.groups()}


def test_per_minute_history(clock: FakeClock) -> None:
    clock.now = 60 * 1_000_000 + 5
    minute = clock.now - 5
    for offset in (0, 10, 70, 200):
        clock.now = minute + 5 + offset
        fail()
    (group,) = obskit.errors.groups()
    assert group.history == ((minute, 2), (minute + 60, 1), (minute + 180, 1))
    assert group.per_minute(5) == [0, 2, 1, 0, 1]


def test_history_keeps_the_last_hour(clock: FakeClock) -> None:
    for _ in range(90):
        fail()
        clock.advance(60)
    (group,) = obskit.errors.groups()
    assert group.count == 90 and len(group.history) == 60


def test_a_flood_of_one_error_is_counted_but_not_all_exported(
    memory: InMemoryExporter, clock: FakeClock
) -> None:
    obskit.init(exporters=[memory], max_events_per_group_per_minute=3)
    obskit.errors._set_clock(clock)
    for _ in range(10):
        fail()
    other_failure()
    clock.advance(60)
    fail()
    obskit.flush()
    assert len(memory.errors) == 3 + 1 + 1
    group = next(g for g in obskit.errors.groups() if g.title.startswith("RuntimeError"))
    assert group.count == 11 and group.suppressed == 7


def test_a_group_seen_after_resolve_is_a_regression(
    memory: InMemoryExporter, clock: FakeClock
) -> None:
    first = fail()
    assert not first.regression
    assert obskit.errors.resolve(first.fingerprint)
    assert obskit.errors.groups()[0].status == "resolved"
    again = fail()
    later = fail()
    assert again.regression and not later.regression
    group = obskit.errors.groups()[0]
    assert group.status == "regressed" and group.regressed and group.count == 3
    obskit.flush()
    assert [e.to_dict()["regression"] for e in memory.errors] == [False, True, False]


def test_resolve_accepts_a_unique_prefix_and_refuses_unknown_groups(clock: FakeClock) -> None:
    event = fail()
    assert not obskit.errors.resolve("0" * 32)
    assert not obskit.errors.resolve(event.fingerprint[:3])  # too short to be safe
    assert obskit.errors.resolve(event.fingerprint[:8])


def test_groups_start_empty_after_shutdown_and_init(memory: InMemoryExporter) -> None:
    fail()
    assert obskit.errors.groups()
    obskit.shutdown()
    assert obskit.errors.groups() == []
    obskit.init(exporters=[memory])
    assert obskit.errors.groups() == []


def test_the_store_is_bounded_and_forgets_the_least_recently_seen() -> None:
    now = [0.0]
    store = GroupStore(clock=lambda: now[0], max_groups=3)
    for name in ("a", "b", "c", "a", "d"):
        now[0] += 1
        store.record(name, title=name, culprit="", level="error", event_id=name, user=None)
    assert [g.fingerprint for g in store.groups()] == ["d", "a", "c"]


def test_every_captured_event_feeds_the_errors_count_series() -> None:
    import obskit
    from obskit import metrics

    seen: list[tuple[str, dict[str, object]]] = []

    class Sink:
        def observe(self, name: str, value: float, labels: dict[str, object], ts: object) -> None:
            pass

        def increment(
            self, name: str, amount: float, labels: dict[str, object], ts: object
        ) -> None:
            seen.append((name, labels))

    sink = Sink()
    metrics.add_sink(sink)
    try:
        obskit.init(exporters=["memory"], install_hooks=False)
        for _ in range(3):
            try:
                raise ValueError("bad")
            except ValueError:
                event = obskit.capture_exception()
        assert event is not None
        counted = [labels for name, labels in seen if name == "obskit.errors"]
        assert counted == [{"fingerprint": event.fingerprint, "level": "error"}] * 3
    finally:
        metrics.remove_sink(sink)


def test_past_max_groups_the_least_recently_seen_group_is_evicted(clock: FakeClock) -> None:
    store = GroupStore(clock=clock, max_groups=3)

    def seen(fingerprint: str) -> None:
        clock.advance(1)
        store.record(fingerprint, title=fingerprint, culprit="", level="error",
                     event_id=fingerprint, user=None)  # fmt: skip

    for fingerprint in ("a", "b", "c", "a"):  # "a" seen again: "b" is now the oldest
        seen(fingerprint)
    seen("d")
    assert sorted(g.fingerprint for g in store.groups()) == ["a", "c", "d"]
    for n in range(10_000):  # eviction is O(1) per new group: this stays quick
        seen(f"new{n}")
    assert len(store.groups()) == 3
