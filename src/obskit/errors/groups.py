"""Error groups: every captured event counted under its fingerprint, in process.

A group keeps what an issue list shows: title, culprit, level, count, first and last seen,
distinct users and a per-minute count history. ``resolve`` marks a group resolved; an event
arriving for it afterwards flags it as a regression. A per-group, per-minute export budget
keeps one error in a tight loop from flooding the exporters: events over the budget are still
counted here, just not exported. Time comes from an injected clock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["ErrorGroup", "GroupStore", "Recorded", "user_key"]

HISTORY_MINUTES = 60
#: Distinct users are counted exactly up to this many per group.
MAX_USERS_TRACKED = 10_000


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """A snapshot of one group of events sharing a fingerprint."""

    fingerprint: str
    title: str
    culprit: str
    level: str
    count: int
    first_seen: float
    last_seen: float
    users: int
    #: ``(minute start, events)`` for the minutes with events, oldest first (last hour).
    history: tuple[tuple[float, int], ...]
    #: "unresolved", "resolved" or "regressed" (seen again after ``resolve``).
    status: str
    #: Events counted but not exported because of ``max_events_per_group_per_minute``.
    suppressed: int
    last_event_id: str

    @property
    def regressed(self) -> bool:
        return self.status == "regressed"

    def per_minute(self, minutes: int = 15, now: float | None = None) -> list[int]:
        """Events in each of the last ``minutes`` minutes up to ``now``, oldest first."""
        current = int((self.last_seen if now is None else now) // 60)
        counts = dict((int(start // 60), count) for start, count in self.history)
        return [counts.get(minute, 0) for minute in range(current - minutes + 1, current + 1)]


class Recorded(NamedTuple):
    """What recording one event decided."""

    new: bool
    regression: bool
    export: bool


class _GroupState:
    __slots__ = (
        "count",
        "culprit",
        "first_seen",
        "history",
        "last_event_id",
        "last_seen",
        "level",
        "status",
        "suppressed",
        "title",
        "users",
    )

    def __init__(self, title: str, culprit: str, level: str, now: float) -> None:
        self.title = title
        self.culprit = culprit
        self.level = level
        self.count = 0
        self.first_seen = now
        self.last_seen = now
        self.users: set[str] = set()
        self.history: deque[list[int]] = deque()  # [minute number, count]
        self.status = "unresolved"
        self.suppressed = 0
        self.last_event_id = ""


class GroupStore:
    """All groups of one obskit setup. Thread-safe; bounded to ``max_groups``."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        max_events_per_group_per_minute: int | None = None,
        max_groups: int = 10_000,
    ) -> None:
        self.clock = clock
        self.max_events_per_group_per_minute = max_events_per_group_per_minute
        self.max_groups = max_groups
        # Least recently seen first: a new fingerprint past max_groups evicts in O(1).
        self._groups: OrderedDict[str, _GroupState] = OrderedDict()
        self._lock = threading.Lock()

    def record(
        self,
        fingerprint: str,
        *,
        title: str,
        culprit: str,
        level: str,
        event_id: str,
        user: str | None,
        timestamp: float | None = None,
    ) -> Recorded:
        """Count one event; say whether it is new, a regression, and whether to export it."""
        now = self.clock() if timestamp is None else timestamp
        minute = int(now // 60)
        with self._lock:
            state = self._groups.get(fingerprint)
            new = state is None
            if state is None:
                if len(self._groups) >= self.max_groups:
                    self._groups.popitem(last=False)
                state = self._groups[fingerprint] = _GroupState(title, culprit, level, now)
            else:
                self._groups.move_to_end(fingerprint)
            regression = state.status == "resolved"
            if regression:
                state.status = "regressed"
            state.count += 1
            state.last_seen = max(state.last_seen, now)
            state.title, state.culprit, state.level = title, culprit, level
            state.last_event_id = event_id
            if user is not None and len(state.users) < MAX_USERS_TRACKED:
                state.users.add(user)
            history = state.history
            if history and history[-1][0] >= minute:  # (a clock going back counts as now)
                history[-1][1] += 1
            else:
                history.append([minute, 1])
            while history and history[0][0] <= minute - HISTORY_MINUTES:
                history.popleft()
            limit = self.max_events_per_group_per_minute
            export = limit is None or history[-1][1] <= limit
            if not export:
                state.suppressed += 1
        return Recorded(new=new, regression=regression, export=export)

    def groups(self, since: float | None = None) -> list[ErrorGroup]:
        """Snapshots of every group (only those seen at or after ``since``, when given), most
        recently seen first."""
        with self._lock:
            snapshots = [
                _snapshot(fp, state)
                for fp, state in self._groups.items()
                if since is None or state.last_seen >= since
            ]
        snapshots.sort(key=lambda group: group.last_seen, reverse=True)
        return snapshots

    def get(self, fingerprint: str) -> ErrorGroup | None:
        """The group with this fingerprint (or unique fingerprint prefix), if any."""
        with self._lock:
            found = self._find(fingerprint)
            return None if found is None else _snapshot(found, self._groups[found])

    def resolve(self, fingerprint: str) -> bool:
        """Mark a group resolved (by fingerprint or unique prefix); ``False`` if unknown."""
        with self._lock:
            found = self._find(fingerprint)
            if found is None:
                return False
            self._groups[found].status = "resolved"
            return True

    def _find(self, fingerprint: str) -> str | None:
        if fingerprint in self._groups:
            return fingerprint
        if len(fingerprint) < 6:
            return None
        matches = [fp for fp in self._groups if fp.startswith(fingerprint)]
        return matches[0] if len(matches) == 1 else None

    def clear(self) -> None:
        with self._lock:
            self._groups.clear()


def _snapshot(fingerprint: str, state: _GroupState) -> ErrorGroup:
    return ErrorGroup(
        fingerprint=fingerprint,
        title=state.title,
        culprit=state.culprit,
        level=state.level,
        count=state.count,
        first_seen=state.first_seen,
        last_seen=state.last_seen,
        users=len(state.users),
        history=tuple((float(minute * 60), count) for minute, count in state.history),
        status=state.status,
        suppressed=state.suppressed,
        last_event_id=state.last_event_id,
    )


def user_key(user: Any) -> str | None:
    """What tells users apart in a group: id, else e-mail, else username, else IP."""
    if not isinstance(user, dict):
        return None
    for field in ("id", "email", "username", "ip_address"):
        if user.get(field) is not None:
            return str(user[field])
    return None
