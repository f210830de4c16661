"""Caching (so heavy polling does not hammer dependencies) and the per-check history ring,
driven by an injected clock."""

from __future__ import annotations

from typing import Any

from obskit.health import HealthRegistry, Status


def counting(registry: HealthRegistry, name: str, **options: Any) -> list[int]:
    calls: list[int] = []
    registry.register(name, lambda: calls.append(1) or True, **options)
    return calls


def test_results_are_served_from_cache_for_cache_ttl_s(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=5)
    calls = counting(registry, "db")
    for _ in range(100):  # a load balancer polling hard
        registry.run()
    assert len(calls) == 1
    clock.advance(4.9)
    registry.run()
    assert len(calls) == 1
    clock.advance(0.1)
    registry.run()
    assert len(calls) == 2


def test_a_wall_clock_stepping_back_expires_the_cache(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=5)
    calls = counting(registry, "db")
    registry.run()
    clock.advance(-3600)  # NTP stepped back an hour: the cached result is "from the future"
    registry.run()
    assert len(calls) == 2


def test_a_check_can_have_its_own_cache_time(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=1)
    cheap = counting(registry, "cheap")
    costly = counting(registry, "costly", cache_ttl_s=30)
    never = counting(registry, "never", cache_ttl_s=0)
    for _ in range(10):
        registry.run()
        clock.advance(1)
    assert (len(cheap), len(costly), len(never)) == (10, 1, 10)


def test_fresh_runs_everything_now(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=60)
    calls = counting(registry, "db")
    registry.run()
    registry.run(fresh=True)
    assert len(calls) == 2


def test_cached_results_keep_the_time_they_were_observed(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=60)
    counting(registry, "db")
    first = registry.run().checks["db"].time
    clock.advance(30)
    report = registry.run()
    assert report.checks["db"].time == first
    assert report.time == first + 30


def test_history_keeps_the_last_results_oldest_first_up_to_history_size(clock: Any) -> None:
    answers = iter([True, False, True, False, False, True])
    registry = HealthRegistry(clock=clock, cache_ttl_s=0, history_size=4)
    registry.register("dep", lambda: next(answers))
    for _ in range(6):
        registry.run()
        clock.advance(1)
    history = registry.history("dep")
    assert [r.status for r in history] == [Status.PASS, Status.FAIL, Status.FAIL, Status.PASS]
    assert [r.time - history[0].time for r in history] == [0, 1, 2, 3]
    assert [r.status for r in registry.history("dep", limit=2)] == [Status.FAIL, Status.PASS]
    assert registry.latest("dep") == history[-1]


def test_latest_is_none_before_the_first_run() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: True)
    assert registry.latest("db") is None
    assert registry.history("db") == []
