"""What a check answers and what a run adds up to: :class:`Status`, :class:`CheckResult`,
:class:`HealthReport`.

``HealthReport.to_dict()`` is the ``application/health+json`` document of the IETF draft
"Health Check Response Format for HTTP APIs" (draft-inadarei-api-health-check-06): a top-level
``status`` (pass, warn or fail), an ``output`` when not passing, and ``checks`` keyed
``"{componentName}:{measurementName}"``, each an array holding one object with ``status``,
``componentType``, ``observedValue``, ``observedUnit``, ``time`` and (when not passing)
``output``.

The report users get is this module's :class:`HealthReport`; exporters see the plain signal
:class:`obskit.signals.HealthRecord` that :meth:`HealthReport.to_signal` makes from it, so the
pipeline's in-place scrubbing never touches a report the application holds.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from obskit import signals
from obskit.signals import iso_time

__all__ = ["Check", "CheckResult", "HealthReport", "Status", "aggregate"]


class Status(str, enum.Enum):
    """A check's or a report's status. A ``str``, so ``report.status == "pass"`` holds.

    >>> Status.parse("UP"), Status.parse("degraded"), str(Status.FAIL)
    (<Status.PASS: 'pass'>, <Status.WARN: 'warn'>, 'fail')
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    def __str__(self) -> str:
        return self.value

    @property
    def gauge(self) -> float:
        """The value of the ``obskit.health.status`` gauge: 1 pass, 0.5 warn, 0 fail."""
        return _GAUGE[self]

    @property
    def severity(self) -> int:
        """0 pass, 1 warn, 2 fail: the worse status has the larger number."""
        return _SEVERITY[self]

    @classmethod
    def parse(cls, value: object) -> Status:
        """A status from its name or an alias used by peers (ok/up, degraded, error/down)."""
        if isinstance(value, Status):
            return value
        text = str(value).strip().lower()
        try:
            return _ALIASES[text]
        except KeyError:
            raise ValueError(
                f"{value!r} is not a health status; use 'pass', 'warn' or 'fail'"
            ) from None


_GAUGE = {Status.PASS: 1.0, Status.WARN: 0.5, Status.FAIL: 0.0}
_SEVERITY = {Status.PASS: 0, Status.WARN: 1, Status.FAIL: 2}
_ALIASES = {
    **{s.value: s for s in Status},
    "ok": Status.PASS,
    "up": Status.PASS,
    "healthy": Status.PASS,
    "warning": Status.WARN,
    "degraded": Status.WARN,
    "error": Status.FAIL,
    "down": Status.FAIL,
    "unhealthy": Status.FAIL,
}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check's answer. A check returns one (or ``True``/``False``, or raises).

    The first six fields are the check's to fill; the runner fills the rest. Without an
    ``observed_value`` the report shows the check's duration as ``{name}:responseTime`` in ms.

    >>> result = CheckResult.warn("queue is deep", observed_value=950, observed_unit="messages",
    ...                           measurement="depth", name="orders")  # the runner sets name
    >>> result.status, result.key, result.to_dict()["observedValue"]
    (<Status.WARN: 'warn'>, 'orders:depth', 950)
    """

    status: Status = Status.PASS
    message: str = ""
    observed_value: Any = None
    observed_unit: str | None = None
    measurement: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    # -- filled by the runner ----------------------------------------------------------------
    name: str = ""
    time: float = 0.0
    duration_ms: float = 0.0
    critical: bool = True
    component_type: str | None = None
    #: What the check itself answered; differs from ``status`` while a threshold holds it back.
    raw_status: Status | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.status, Status):
            object.__setattr__(self, "status", Status.parse(self.status))

    @classmethod
    def ok(cls, message: str = "", **fields: Any) -> CheckResult:
        """A passing result."""
        return cls(Status.PASS, message, **fields)

    @classmethod
    def warn(cls, message: str = "", **fields: Any) -> CheckResult:
        """A warning: healthy, with a concern (ASP.NET Core "Degraded")."""
        return cls(Status.WARN, message, **fields)

    @classmethod
    def fail(cls, message: str = "", **fields: Any) -> CheckResult:
        """A failing result."""
        return cls(Status.FAIL, message, **fields)

    @property
    def key(self) -> str:
        """The IETF checks key: ``name:measurement`` (bare ``name`` when the unit is unknown)."""
        if self.measurement:
            return f"{self.name}:{self.measurement}"
        return self.name if self.observed_value is not None else f"{self.name}:responseTime"

    def to_dict(self) -> dict[str, Any]:
        """The IETF "component details" object for this result."""
        value, unit = self.observed_value, self.observed_unit
        if value is None and not self.measurement:
            value, unit = round(self.duration_ms, 3), "ms"
        out: dict[str, Any] = {"status": self.status.value}
        if self.component_type:
            out["componentType"] = self.component_type
        if value is not None:
            out["observedValue"] = value
            if unit:
                out["observedUnit"] = unit
        out["time"] = iso_time(self.time)
        # The draft: output SHOULD be omitted for pass; a pass held back by a threshold is not.
        if self.status is not Status.PASS or self.raw_status not in (None, Status.PASS):
            out["output"] = self.message
        if self.raw_status is not None and self.raw_status is not self.status:
            out["rawStatus"] = self.raw_status.value
        if self.details:
            out["details"] = dict(self.details)
        return out


class Check(Protocol):
    """A health check: anything called with no arguments, sync or async, that answers with
    ``True``/``False``, ``None`` (pass), a status, or a :class:`CheckResult`, or raises (fail).

    Optional attributes ``component_type`` and ``measurement`` are used as registration
    defaults (the built-in checks in :mod:`obskit.health.checks` set them).
    """

    def __call__(self) -> CheckResult | bool | Awaitable[CheckResult | bool | None] | None: ...


def aggregate(results: Iterable[CheckResult]) -> Status:
    """Any critical fail is fail; a non-critical fail or any warn is warn; otherwise pass.

    >>> aggregate([CheckResult.ok(), CheckResult.fail(critical=False)])
    <Status.WARN: 'warn'>
    >>> aggregate([CheckResult.warn(), CheckResult.fail()])
    <Status.FAIL: 'fail'>
    >>> aggregate([])
    <Status.PASS: 'pass'>
    """
    status = Status.PASS
    for result in results:
        if result.status is Status.FAIL and result.critical:
            return Status.FAIL
        if result.status is not Status.PASS:
            status = Status.WARN
    return status


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The result of a run: the aggregated ``status`` and each check's result by name.

    >>> report = HealthReport(Status.PASS, {}, time=0.0)
    >>> report.status == "pass", report.http_status, report.to_dict()
    (True, 200, {'status': 'pass', 'checks': {}})
    """

    status: Status
    checks: Mapping[str, CheckResult]
    time: float
    duration_ms: float = 0.0
    service: str | None = None
    release: str | None = None

    @property
    def http_status(self) -> int:
        """200 for pass and warn, 503 for fail (as ASP.NET Core and Spring Boot answer)."""
        return 503 if self.status is Status.FAIL else 200

    @property
    def output(self) -> str:
        """One line naming what is not passing, worst first (empty when all pass)."""
        troubled = sorted(
            (r for r in self.checks.values() if r.status is not Status.PASS),
            key=lambda r: (-r.status.severity, not r.critical, r.name),
        )
        return "; ".join(f"{r.name}: {r.message or r.status.value}" for r in troubled)

    def to_dict(self, *, verbose: bool = True) -> dict[str, Any]:
        """The ``application/health+json`` document; ``verbose=False`` keeps only the status."""
        out: dict[str, Any] = {"status": self.status.value}
        if not verbose:
            return out
        if self.service:
            out["serviceId"] = self.service
        if self.release:
            out["releaseId"] = self.release
        if self.status is not Status.PASS:
            out["output"] = self.output
        out["checks"] = {r.key: [r.to_dict()] for r in self.checks.values()}
        return out

    def to_signal(self, changed: Iterable[str] = ()) -> signals.HealthRecord:
        """The signal exporters see: the same document, plus which checks changed status."""
        return signals.HealthRecord(
            timestamp=self.time,
            status=self.status.value,
            checks={r.key: [r.to_dict()] for r in self.checks.values()},
            service=self.service or "",
            changed=list(changed),
        )
