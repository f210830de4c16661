"""What a registry says on the ``obskit.health`` logger: status changes, and the outcomes of
``on_status_change`` actions (failures also reported once on stderr)."""

from __future__ import annotations

from obskit import diagnostics
from obskit._actions import ActionRun
from obskit.health.model import CheckResult, Status
from obskit.logging import get_logger

__all__ = ["log", "log_action", "log_change"]

log = get_logger("obskit.health")


def log_change(result: CheckResult, previous: Status | None) -> None:
    """A change of a check's reported status: warning when it fails or warns, info when it
    recovers, debug for a first pass."""
    fields = {"check": result.name, "status": result.status.value, "output": result.message}
    if previous is None:
        fields["previous"] = "none"
    else:
        fields["previous"] = previous.value
    if result.status is Status.FAIL:
        log.warning("health check failing", **fields)
    elif result.status is Status.WARN:
        log.warning("health check warning", **fields)
    elif previous is None:
        log.debug("health check passing", **fields)
    else:
        log.info("health check recovered", **fields)


def log_action(run: ActionRun) -> None:
    """The outcome of an ``on_status_change`` action, on the ``obskit.health`` logger."""
    fields = {"check": run.subject, "action": run.name, "status": run.status}
    if run.status == "ok":
        log.info("health check action ran", duration_s=run.duration_s, **fields)
    else:
        log.warning("health check action failed", error=run.error, **fields)
        diagnostics.report(f"health.action.{run.name}", f"health check action {run.describe()}")
