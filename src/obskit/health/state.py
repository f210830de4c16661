"""A registered check and what it remembers: thresholds against flapping, latest result, history.

Thresholds work as Kubernetes probes' ``failureThreshold`` / ``successThreshold``: a check
reports fail only after ``failure_threshold`` consecutive failing runs, and a failing check
reports pass again only after ``success_threshold`` consecutive passing runs. Until then it
keeps reporting what it reported before (a check that never reported counts as passing, so a
check with ``failure_threshold=3`` failing from the start reports fail at its third run). A
held-back result keeps what the check really answered in ``raw_status`` and says so in its
message. Warn is never held back: it is a healthy status.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from obskit.health.model import CheckResult, Status

if TYPE_CHECKING:
    from obskit._actions import Action
    from obskit.health.runner import Execution

__all__ = ["CheckSpec", "CheckState", "apply_thresholds"]


def apply_thresholds(
    previous: Status | None,
    raw: Status,
    failures: int,
    successes: int,
    failure_threshold: int,
    success_threshold: int,
) -> Status:
    """The status to report, given the last reported one and the current streak lengths.

    >>> apply_thresholds(Status.PASS, Status.FAIL, 1, 0, 3, 1)  # 1st failure of 3: held
    <Status.PASS: 'pass'>
    >>> apply_thresholds(Status.PASS, Status.FAIL, 3, 0, 3, 1)
    <Status.FAIL: 'fail'>
    >>> apply_thresholds(Status.FAIL, Status.PASS, 0, 1, 1, 2)  # 1st pass of 2: still fail
    <Status.FAIL: 'fail'>
    """
    before = previous or Status.PASS
    if raw is Status.FAIL:
        return Status.FAIL if failures >= failure_threshold else before
    if before is Status.FAIL and successes < success_threshold:
        return Status.FAIL
    return raw


class CheckState:
    """What a check remembers between runs. Mutated only under the registry's lock."""

    def __init__(self, history_size: int) -> None:
        self.reported: Status | None = None
        self.failures = 0  # consecutive failing runs
        self.successes = 0  # consecutive passing (or warning) runs
        self.latest: CheckResult | None = None
        self.history: collections.deque[CheckResult] = collections.deque(maxlen=history_size)
        self.last_started: float | None = None  # clock time of the last run's start
        self.execution: Execution | None = None  # the run in flight, or the last one

    def record(
        self, raw: CheckResult, failure_threshold: int, success_threshold: int
    ) -> tuple[CheckResult, Status | None]:
        """Apply the thresholds to ``raw``; return what to report and the status reported before."""
        if raw.status is Status.FAIL:
            self.failures, self.successes = self.failures + 1, 0
        else:
            self.failures, self.successes = 0, self.successes + 1
        previous = self.reported
        status = apply_thresholds(
            previous,
            raw.status,
            self.failures,
            self.successes,
            failure_threshold,
            success_threshold,
        )
        result = dataclasses.replace(raw, status=status, raw_status=raw.status)
        if status is not raw.status:
            if raw.status is Status.FAIL:
                note = f"failure {self.failures} of {failure_threshold} before reporting fail"
            else:
                note = f"pass {self.successes} of {success_threshold} before recovering"
            message = f"{raw.message} [{note}]" if raw.message else note
            result = dataclasses.replace(result, message=message)
        self.reported = status
        self.latest = result
        self.history.append(result)
        return result, previous


@dataclass(eq=False)
class CheckSpec:
    """A registered check: how to call it and how to judge it, plus its :class:`CheckState`."""

    name: str
    fn: Callable[[], Any]
    is_async: bool
    critical: bool
    timeout_s: float
    interval_s: float | None
    tags: frozenset[str]
    failure_threshold: int
    success_threshold: int
    component_type: str | None
    measurement: str | None
    cache_ttl_s: float | None
    history_size: int
    on_status_change: Action | None = None
    enabled: bool = True
    state: CheckState = field(init=False)

    def __post_init__(self) -> None:
        self.state = CheckState(self.history_size)
