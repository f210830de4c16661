"""Service level objectives: multi-window, multi-burn-rate alerts and the error budget left.

An :class:`SLO` says what fraction of events must be good (``objective``, e.g. 0.999 of
requests) over a compliance window (``window_s``, 30 days). The error budget is what may fail:
``1 - objective``. The alerts are those of the Google SRE workbook (chapter 5, "Alerting on
SLOs"), each a ratio rule (``good / total``) over a long and a short window that must both burn
the budget fast enough:

* **page** (``page_severity``, critical): 14.4 times the sustainable rate over 1 h and 5 min
  (2 % of a 30-day budget gone in an hour);
* **ticket** (``ticket_severity``, warning): 6 times over 6 h and 30 min (5 % in six hours).

The short window lets the alert end within minutes of the problem. Burn rate ``b`` over a
window means the good ratio there is below ``1 - b * (1 - objective)``; the alerts' value is
that good ratio. ``AlertEngine.slo_status(name)`` reports the good ratio over the whole
compliance window and the error budget remaining, ``1 - (1 - ratio) / (1 - objective)``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from obskit.alerts.rules import AlertRule, Matchers, PositiveSeconds, Severity

__all__ = ["BURN_RATES", "SLO"]

#: (name, burn rate, long window s, short window s) of the workbook's recommended alerts.
BURN_RATES: tuple[tuple[str, float, float, float], ...] = (
    ("page", 14.4, 3600.0, 300.0),
    ("ticket", 6.0, 21600.0, 1800.0),
)


class SLO(BaseModel):
    """An objective on the ratio of good events to all events, and its burn-rate alerts.

    >>> slo = SLO(name="checkout", good="checkout.ok", total="checkout.requests",
    ...           objective=0.999)
    >>> [(r.name, r.window_s, r.short_window_s, r.op, round(r.threshold, 4), r.severity)
    ...  for r in slo.rules()]   # doctest: +NORMALIZE_WHITESPACE
    [('checkout_burn_rate_page', 3600.0, 300.0, '<', 0.9856, 'critical'),
     ('checkout_burn_rate_ticket', 21600.0, 1800.0, '<', 0.994, 'warning')]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: counter of good events, and of all events (the same labels)
    good: str = Field(min_length=1)
    total: str = Field(min_length=1)
    objective: float = Field(gt=0, lt=1)
    window_s: PositiveSeconds = 30 * 86400.0
    matchers: Matchers = ()
    #: labels the objective is kept per (``[]``: one objective for the whole service)
    aggregate_by: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    channels: tuple[str, ...] = ()
    page_severity: Severity = "critical"
    ticket_severity: Severity = "warning"

    @property
    def error_budget(self) -> float:
        """The fraction of events allowed to fail (``1 - objective``)."""
        return 1.0 - self.objective

    def rules(self) -> list[AlertRule]:
        """The page and ticket burn-rate alert rules."""
        out = []
        for kind, burn, long_s, short_s in BURN_RATES:
            severity = self.page_severity if kind == "page" else self.ticket_severity
            out.append(
                AlertRule(
                    name=f"{self.name}_burn_rate_{kind}",
                    metric=self.good,
                    denominator=self.total,
                    aggregation="rate",
                    window_s=long_s,
                    short_window_s=short_s,
                    op="<",
                    threshold=1.0 - burn * self.error_budget,
                    matchers=self.matchers,
                    aggregate_by=self.aggregate_by,
                    severity=severity,
                    labels={**self.labels, "slo": self.name},
                    channels=self.channels,
                    annotations={
                        "summary": f"{self.name}: error budget burning over {burn:g}x as fast "
                        f"as the objective {self.objective:g} allows",
                        "description": f"good ratio {{{{ value }}}} over {long_s / 3600:g}h "
                        f"(and over {short_s / 60:g}m) is below "
                        f"{1.0 - burn * self.error_budget:.6g}",
                    },
                )
            )
        return out

    def budget_rule(self) -> AlertRule:
        """The good ratio over the compliance window (read for the budget; never alerts)."""
        return AlertRule(
            name=f"{self.name}_error_budget",
            metric=self.good,
            denominator=self.total,
            aggregation="sum",
            window_s=self.window_s,
            op="<",
            threshold=self.objective,
            matchers=self.matchers,
            aggregate_by=self.aggregate_by,
        )

    def status(self, labels: dict[str, str], good_ratio: float | None) -> dict[str, Any]:
        """The report of one label set: good ratio and error budget remaining (1: untouched,
        0: spent, below 0: overspent)."""
        remaining = None
        if good_ratio is not None:
            remaining = 1.0 - (1.0 - good_ratio) / self.error_budget
        return {
            "slo": self.name,
            "labels": labels,
            "objective": self.objective,
            "window_s": self.window_s,
            "good_ratio": good_ratio,
            "error_budget_remaining": remaining,
        }
