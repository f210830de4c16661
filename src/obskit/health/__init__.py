"""Health checks: register, run concurrently with timeouts, schedule, serve over HTTP.

The module-level functions work on one default registry; ``HealthRegistry()`` makes a fresh,
independent one with the same methods::

    import obskit

    @obskit.health.check("db", critical=True, timeout_s=2, tags=["ready"])
    def db_ok() -> bool:
        return pool.ping()

    report = obskit.health.run()            # HealthReport: .status is "pass", "warn" or "fail"
    report.to_dict()                        # application/health+json (IETF draft)
    server = obskit.health.serve(port=8081) # /health, /health/live, /health/ready

The whole story, with FastAPI, Flask and Kubernetes examples, is in docs/health.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from obskit import _runtime
from obskit._actions import Action
from obskit.health.model import Check, CheckResult, HealthReport, Status, aggregate
from obskit.health.registry import HealthRegistry
from obskit.health.registry import stop_all as _stop_all
from obskit.health.runner import time_left

if TYPE_CHECKING:
    from obskit.health import checks
    from obskit.health.client import format_report

__all__ = [
    "Action",
    "Check",
    "CheckResult",
    "HealthRegistry",
    "HealthReport",
    "Status",
    "aggregate",
    "asgi_app",
    "check",
    "checks",
    "clear",
    "close",
    "default_registry",
    "disable",
    "enable",
    "force",
    "format_report",
    "history",
    "latest",
    "names",
    "register",
    "run",
    "run_async",
    "serve",
    "start",
    "time_left",
    "unregister",
    "wsgi_app",
]

#: The registry the module-level functions below work on.
default_registry = HealthRegistry(name="default")

check = default_registry.check
register = default_registry.register
unregister = default_registry.unregister
enable = default_registry.enable
disable = default_registry.disable
clear = default_registry.clear
names = default_registry.names
run = default_registry.run
run_async = default_registry.run_async
force = default_registry.force
history = default_registry.history
latest = default_registry.latest
asgi_app = default_registry.asgi_app
wsgi_app = default_registry.wsgi_app
serve = default_registry.serve
start = default_registry.start
close = default_registry.close


def __getattr__(name: str) -> Any:
    # The built-in checks and the HTTP client pull in urllib, sqlite3...: loaded on first use.
    if name == "checks":
        return importlib.import_module("obskit.health.checks")
    if name == "format_report":
        return importlib.import_module("obskit.health.client").format_report
    raise AttributeError(f"module 'obskit.health' has no attribute {name!r}")


@_runtime.shutdown_listeners.add
def _shutdown(timeout_s: float = 2.0) -> None:
    """Stop every registry's background thread (called by ``obskit.shutdown``)."""
    _stop_all(timeout_s)
