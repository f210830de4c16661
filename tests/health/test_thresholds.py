"""Flapping thresholds, driven by an injected clock: a check reports fail only after
``failure_threshold`` consecutive failures, and passes again only after ``success_threshold``
consecutive passes (Kubernetes probes' failureThreshold / successThreshold)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from obskit.health import CheckResult, HealthRegistry, Status
from obskit.health.state import CheckState

P, W, F = Status.PASS, Status.WARN, Status.FAIL


def scripted(statuses: list[Status]) -> Callable[[], CheckResult]:
    """A check answering the given statuses in turn."""
    answers: Iterator[Status] = iter(statuses)
    return lambda: CheckResult(next(answers), "dependency said so")


def reported(clock: Any, raw: list[Status], **options: Any) -> list[Status]:
    """What a check answering ``raw`` reports at each run, one run per clock second."""
    registry = HealthRegistry(clock=clock, cache_ttl_s=0.5)
    registry.register("dep", scripted(raw), **options)
    out = []
    for _ in raw:
        out.append(registry.run().checks["dep"].status)
        clock.advance(1.0)
    return out


def test_with_threshold_1_every_failure_is_reported_at_once(clock: Any) -> None:
    assert reported(clock, [P, F, P, F]) == [P, F, P, F]


def test_failure_threshold_holds_fail_back_until_that_many_consecutive_failures(
    clock: Any,
) -> None:
    raw = [P, F, F, P, F, F, F, F]
    assert reported(clock, raw, failure_threshold=3) == [P, P, P, P, P, P, F, F]


def test_a_check_failing_from_the_start_reports_fail_at_its_threshold(clock: Any) -> None:
    assert reported(clock, [F, F, F], failure_threshold=2) == [P, F, F]


def test_success_threshold_holds_a_failing_check_down_until_it_has_recovered(
    clock: Any,
) -> None:
    raw = [F, P, F, P, P, P]
    assert reported(clock, raw, success_threshold=2) == [F, F, F, F, P, P]


def test_an_alternating_dependency_never_flaps_the_report_with_threshold_2(clock: Any) -> None:
    assert reported(clock, [P, F, P, F, P, F], failure_threshold=2) == [P] * 6


def test_warn_is_healthy_so_it_is_never_held_back_and_counts_toward_recovery(
    clock: Any,
) -> None:
    assert reported(clock, [P, W, F, W], failure_threshold=2) == [P, W, W, W]
    assert reported(clock, [F, W, W], success_threshold=2) == [F, F, W]


def test_a_held_back_result_keeps_what_the_check_said_and_explains(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=0)
    registry.register("dep", scripted([F, F]), failure_threshold=3)
    result = registry.run().checks["dep"]
    assert (result.status, result.raw_status) == (P, F)
    assert result.message == "dependency said so [failure 1 of 3 before reporting fail]"
    entry = registry.run().to_dict()["checks"]["dep:responseTime"][0]
    assert entry["status"] == "pass" and entry["rawStatus"] == "fail"
    assert entry["output"].endswith("[failure 2 of 3 before reporting fail]")


def test_cached_results_do_not_count_as_runs_toward_a_threshold(clock: Any) -> None:
    registry = HealthRegistry(clock=clock, cache_ttl_s=10)
    registry.register("dep", scripted([F, F, F]), failure_threshold=2)
    assert [registry.run().checks["dep"].status for _ in range(5)] == [P] * 5
    clock.advance(11)
    assert registry.run().checks["dep"].status is F


@given(
    raw=st.lists(st.sampled_from([P, W, F]), max_size=40),
    failure_threshold=st.integers(1, 4),
    success_threshold=st.integers(1, 4),
)
def test_reported_fail_always_has_a_reason_in_the_raw_history(
    raw: list[Status], failure_threshold: int, success_threshold: int
) -> None:
    state = CheckState(history_size=100)
    statuses = []
    for status in raw:
        result, _ = state.record(CheckResult(status), failure_threshold, success_threshold)
        statuses.append(result.status)
        assert result.raw_status is status
    for index, status in enumerate(statuses):
        window = raw[max(0, index - failure_threshold + 1) : index + 1]
        started_failing = len(window) == failure_threshold and all(s is F for s in window)
        if status is F and raw[index] is F:
            # reported fail on a failing run: a full streak now, or it was already failing
            assert started_failing or (index > 0 and statuses[index - 1] is F)
        if status is F and raw[index] is not F:
            # reported fail on a healthy run: still recovering, fewer passes than needed
            assert index > 0 and statuses[index - 1] is F
        if status is not F:
            assert status is raw[index] or raw[index] is F  # healthy runs report as they are
