"""Who must not be bothered, and who must be bothered more: silences, inhibition, escalation.

* :class:`Silence` (Alertmanager silences): label matchers, a start and an end, who made it
  and why. A silenced alert is still evaluated and still in ``active()``; it is only not
  notified. When the silence ends, the next group flush notifies it as new.
* :class:`InhibitRule` (Alertmanager ``inhibit_rules``): while an alert matching
  ``source_matchers`` fires, alerts matching ``target_matchers`` with the same values of the
  ``equal`` labels are muted. As in Alertmanager, an alert never inhibits itself, and an alert
  matching both sides is not inhibited by alerts that also match both sides.
* :class:`EscalationPolicy` (PagerDuty-style, not in Alertmanager): levels of channels
  notified (and severities raised to, e.g. warning to critical) ``after_s`` seconds after an
  alert started firing, stopping as soon as it is acknowledged or resolved; and escalation on
  recurrence (the same alert starting to fire ``recurrence_count`` times within
  ``recurrence_window_s`` is escalated at once).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from obskit.alerts.matchers import Matcher, matches_all, parse_matchers
from obskit.alerts.rules import Matchers, Severity, parse_duration

__all__ = ["EscalationLevel", "EscalationPolicy", "InhibitRule", "Silence"]

_silence_ids = itertools.count(1)

#: Severities in rising order (what ``raise_severity`` may only go up along).
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2, "critical": 3}


@dataclass(slots=True)
class Silence:
    """Mutes notifications of matching alerts from ``starts_at`` until ``ends_at``."""

    id: str
    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    comment: str = ""
    created_by: str = ""

    @classmethod
    def create(
        cls,
        matchers: Any,
        *,
        starts_at: float,
        ends_at: float,
        comment: str = "",
        created_by: str = "",
    ) -> Silence:
        """A validated silence (raises ``ValueError`` when it could never match or end)."""
        parsed = parse_matchers(matchers)
        if not parsed:
            raise ValueError("a silence needs at least one matcher (it would mute everything)")
        if ends_at <= starts_at:
            raise ValueError("a silence must end after it starts")
        return cls(f"s-{next(_silence_ids)}", parsed, starts_at, ends_at, comment, created_by)

    def is_active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [str(m) for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "comment": self.comment,
            "created_by": self.created_by,
        }


class InhibitRule(BaseModel):
    """Mute targets while a matching source fires.

    >>> rule = InhibitRule(source_matchers={"severity": "critical"},
    ...                    target_matchers={"severity": "warning"}, equal=["name"])
    >>> firing = [{"alertname": "errors_critical", "severity": "critical", "name": "/cart"}]
    >>> rule.mutes({"alertname": "errors_warning", "severity": "warning", "name": "/cart"}, firing)
    True
    >>> rule.mutes({"alertname": "errors_warning", "severity": "warning", "name": "/"}, firing)
    False
    """

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    source_matchers: Matchers
    target_matchers: Matchers
    equal: tuple[str, ...] = ()

    @field_validator("source_matchers", "target_matchers")
    @classmethod
    def _not_empty(cls, value: tuple[Matcher, ...]) -> tuple[Matcher, ...]:
        if not value:
            raise ValueError("needs at least one matcher (an empty side would match everything)")
        return value

    def mutes(self, target: Mapping[str, str], firing: Iterable[Mapping[str, str]]) -> bool:
        """Whether an alert with labels ``target`` is muted while ``firing`` alerts fire."""
        if not matches_all(self.target_matchers, target):
            return False
        two_sided = matches_all(self.source_matchers, target)
        for source in firing:
            if source is target or source == target:
                continue
            if not matches_all(self.source_matchers, source):
                continue
            if two_sided and matches_all(self.target_matchers, source):
                continue
            if all(source.get(name, "") == target.get(name, "") for name in self.equal):
                return True
        return False


Delay = Annotated[float, BeforeValidator(parse_duration), Field(ge=0, allow_inf_nan=False)]


class EscalationLevel(BaseModel):
    """What happens once an alert has fired for ``after_s`` without acknowledgement:
    ``channels`` are told, and with ``raise_severity`` the alert's severity (its ``severity``
    label included) becomes that, e.g. warning to critical. A level without ``channels`` tells
    the channels that already heard of the alert.

    >>> EscalationLevel(after_s="15m", raise_severity="critical").after_s
    900.0
    >>> EscalationLevel(after_s=60)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for EscalationLevel
      Value error, a level needs channels to tell, a severity to raise to, or both ...
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_s: Delay = 0.0
    channels: tuple[str, ...] = ()
    raise_severity: Severity | None = None

    @model_validator(mode="after")
    def _does_something(self) -> EscalationLevel:
        if not self.channels and self.raise_severity is None:
            raise ValueError(
                "a level needs channels to tell, a severity to raise to, or both "
                "(channels=[...], raise_severity='critical')"
            )
        if any(not name for name in self.channels):
            raise ValueError("channel names must not be empty")
        return self


class EscalationPolicy(BaseModel):
    """Named levels of escalation, in strictly increasing ``after_s`` order, and recurrence.

    An alert that starts firing for the ``recurrence_count``-th time within
    ``recurrence_window_s`` (counting this time) is escalated at once: every level applies
    now, as if it had fired unacknowledged for the longest delay (a flapping alert whose
    episodes are each too short to escalate still reaches the last level).

    >>> EscalationPolicy(name="checkout", levels=[{"after_s": 0, "channels": ["slack"]},
    ...                                           {"after_s": "10m", "channels": ["pager"]}]
    ...                  ).levels[1].after_s
    600.0
    >>> EscalationPolicy(name="flaky", levels=[{"channels": ["pager"]}], recurrence_count=3,
    ...                  recurrence_window_s="1h").recurrence_window_s
    3600.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    levels: tuple[EscalationLevel, ...] = Field(min_length=1)
    recurrence_count: int | None = Field(default=None, ge=2)
    recurrence_window_s: (
        Annotated[float, BeforeValidator(parse_duration), Field(gt=0, allow_inf_nan=False)] | None
    ) = None

    @field_validator("levels")
    @classmethod
    def _increasing(cls, value: tuple[EscalationLevel, ...]) -> tuple[EscalationLevel, ...]:
        delays = [level.after_s for level in value]
        if any(later <= earlier for earlier, later in itertools.pairwise(delays)):
            raise ValueError(
                f"level delays must strictly increase (got {delays}); two levels at the same "
                "delay are one level with both channels"
            )
        raised = [SEVERITY_RANK[lv.raise_severity] for lv in value if lv.raise_severity]
        if any(later <= earlier for earlier, later in itertools.pairwise(raised)):
            raise ValueError(
                "raise_severity must go up from level to level (info < warning < error < critical)"
            )
        return value

    @model_validator(mode="after")
    def _recurrence_pair(self) -> EscalationPolicy:
        if (self.recurrence_count is None) != (self.recurrence_window_s is None):
            raise ValueError(
                "recurrence_count and recurrence_window_s go together: escalate when the "
                "alert starts firing recurrence_count times within recurrence_window_s"
            )
        return self

    @property
    def last_delay_s(self) -> float:
        return self.levels[-1].after_s

    @property
    def channels(self) -> set[str]:
        return {name for level in self.levels for name in level.channels}
