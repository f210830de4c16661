"""obskit: embeddable observability. Structured logs, errors, health, alerts, anomalies.

The public facade. Everything an application needs is here::

    import obskit
    obskit.init(service="shop", environment="prod")
    log = obskit.get_logger(__name__)
    with obskit.context(request_id="r-1"):
        log.info("checkout started", cart_items=3)
    obskit.shutdown()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from obskit import _runtime, diagnostics, errors, metrics
from obskit.contextstack import bind, context, current_context, unbind
from obskit.diagnostics import ConfigError
from obskit.errors import add_breadcrumb
from obskit.instrumentation import instrument, request, timer
from obskit.logging import Logger, get_logger
from obskit.signals import ErrorEvent

if TYPE_CHECKING:
    from obskit import alerts, anomaly, health
    from obskit.config import Settings

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Logger",
    "Settings",
    "__version__",
    "add_breadcrumb",
    "alerts",
    "anomaly",
    "bind",
    "capture_exception",
    "capture_message",
    "context",
    "current_context",
    "flush",
    "get_logger",
    "health",
    "init",
    "instrument",
    "metrics",
    "pipeline_stats",
    "request",
    "shutdown",
    "timer",
    "unbind",
]


def init(**settings: Any) -> None:
    """Set obskit up (or set it up again, flushing the previous setup).

    Keyword arguments are :class:`~obskit.config.Settings` fields (``service``,
    ``environment``, ``release``, ``level``, ``exporters``, ...); unset ones come from
    ``OBSKIT_*`` and ``OTEL_*`` environment variables. A bad value raises
    :class:`ConfigError` here, never later. With ``install_hooks=True`` (the default) it
    chains the interpreter's error hooks and says so once on stderr;
    ``obskit.errors.installed_hooks()`` lists them.
    """
    from obskit.config import load_settings
    from obskit.exporters import create_exporter
    from obskit.logging import configure_chain, processors, set_level
    from obskit.logging import stdlib as stdlib_bridge

    resolved = load_settings(**settings)
    exporters = [
        create_exporter(item, resolved) if isinstance(item, str) else item
        for item in resolved.exporters
    ]
    runtime = _runtime.build(resolved, exporters)
    set_level(resolved.level)
    configure_chain(list(resolved.processors))
    processors.resource.update(service=resolved.service, environment=resolved.environment)
    previous = _runtime.replace(runtime)
    if previous is not None:
        previous.pipeline.shutdown(resolved.shutdown_timeout_s, keep=exporters)
    if resolved.capture_stdlib_logging:
        stdlib_bridge.install(resolved.level)
    else:
        stdlib_bridge.uninstall()
    errors.configure(resolved)
    metrics.configure(resolved)


def flush(timeout_s: float = 5.0) -> bool:
    """Deliver everything queued so far; ``True`` if it all left within ``timeout_s``."""
    runtime = _runtime.peek()
    return True if runtime is None else runtime.pipeline.flush(timeout_s)


def shutdown(timeout_s: float = 5.0) -> None:
    """Flush and stop every exporter within ``timeout_s``. Logging afterwards starts defaults."""
    from obskit.logging import stdlib as stdlib_bridge

    _runtime.run_shutdown_hooks(timeout_s / 2)  # background threads stop before the flush
    previous = _runtime.replace(None)
    stdlib_bridge.uninstall()
    errors.reset()
    if previous is not None:
        previous.pipeline.shutdown(timeout_s)


def pipeline_stats() -> dict[str, Any]:
    """Self-metrics: per exporter accepted/exported/dropped/failed/retried/queued, and problems."""
    runtime = _runtime.peek()
    exporters = runtime.pipeline.stats() if runtime is not None else {}
    return {"exporters": exporters, "problems": diagnostics.problem_counts()}


def capture_exception(
    exc: BaseException | None = None,
    *,
    level: str = "error",
    fingerprint: list[str] | str | None = None,
    **context: Any,
) -> ErrorEvent | None:
    """Capture an exception (the one being handled when ``exc`` is None) as a grouped event.

    Returns the :class:`~obskit.signals.ErrorEvent` (``.fingerprint`` names its group), or
    ``None`` when it was ignored, sampled out or dropped by ``before_send``.
    """
    return errors.capture_exception(exc, level=level, fingerprint=fingerprint, **context)


def capture_message(
    message: str,
    level: str = "info",
    *,
    fingerprint: list[str] | str | None = None,
    **context: Any,
) -> ErrorEvent | None:
    """Capture a message as an event, grouped by its text with variable parts removed."""
    return errors.capture_message(message, level=level, fingerprint=fingerprint, **context)


def __getattr__(name: str) -> Any:
    # pydantic (about 100 ms to import) loads only when settings are first needed.
    if name == "Settings":
        from obskit import config

        return getattr(config, name)
    if name in ("alerts", "anomaly", "health"):  # loaded on first use (keeps import light)
        import importlib

        return importlib.import_module(f"obskit.{name}")
    raise AttributeError(f"module 'obskit' has no attribute {name!r}")
