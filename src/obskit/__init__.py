"""obskit: embeddable observability. Structured logs, errors, health, alerts, anomalies.

The public facade. Everything an application needs is here::

    import obskit
    obskit.init(service="shop", environment="prod")
    log = obskit.get_logger(__name__)
    with obskit.context(request_id="r-1"):
        log.info("checkout started", cart_items=3)
    obskit.shutdown()

``import obskit`` does no work and imports almost nothing: every name below is loaded the
first time it is used (``dir(obskit)`` lists them all), so an application that imports obskit
at its top pays for what it uses, when it uses it.
"""

from __future__ import annotations

import sys
import time

from obskit._version import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (about 10 ms)
if TYPE_CHECKING:
    from typing import Any

    from obskit import alerts, anomaly, errors, health, metrics
    from obskit.config import Settings
    from obskit.contextstack import bind, context, current_context, set_tags, unbind
    from obskit.diagnostics import ConfigError
    from obskit.errors import add_breadcrumb
    from obskit.instrumentation import instrument, request, timer
    from obskit.logging import Logger
    from obskit.signals import ErrorEvent

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
    "errors",
    "flush",
    "get_logger",
    "health",
    "init",
    "instrument",
    "metrics",
    "pipeline_stats",
    "request",
    "set_tags",
    "shutdown",
    "timer",
    "unbind",
]

#: Names loaded on first use: name -> (module, attribute or None for the module itself).
_LAZY: dict[str, tuple[str, str | None]] = {
    "ConfigError": ("obskit.diagnostics", "ConfigError"),
    "bind": ("obskit.contextstack", "bind"),
    "context": ("obskit.contextstack", "context"),
    "current_context": ("obskit.contextstack", "current_context"),
    "set_tags": ("obskit.contextstack", "set_tags"),
    "unbind": ("obskit.contextstack", "unbind"),
    "Logger": ("obskit.logging", "Logger"),
    "Settings": ("obskit.config", "Settings"),
    "add_breadcrumb": ("obskit.errors", "add_breadcrumb"),
    "alerts": ("obskit.alerts", None),
    "anomaly": ("obskit.anomaly", None),
    "errors": ("obskit.errors", None),
    "health": ("obskit.health", None),
    "instrument": ("obskit.instrumentation", "instrument"),
    "metrics": ("obskit.metrics", None),
    "request": ("obskit.instrumentation", "request"),
    "timer": ("obskit.instrumentation", "timer"),
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'obskit' has no attribute {name!r}")
    __import__(where[0])  # importlib itself costs an import
    module = sys.modules[where[0]]
    value = module if where[1] is None else getattr(module, where[1])
    globals()[name] = value  # the next access is a plain global
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def init(**settings: Any) -> None:
    """Set obskit up (or set it up again, flushing the previous setup).

    Keyword arguments are :class:`~obskit.config.Settings` fields (``service``,
    ``environment``, ``release``, ``level``, ``exporters``, ``exporter_options``, ...); unset
    ones come from ``OBSKIT_*`` and ``OTEL_*`` environment variables. A bad value raises
    :class:`ConfigError` here, never later. ``init`` prints nothing; with ``debug=True`` it
    says on stderr what it set up (exporters, chained error hooks).
    ``obskit.errors.installed_hooks()`` lists the hooks it chained.
    """
    from obskit import _runtime, errors, instrumentation
    from obskit import pipeline as _pipeline
    from obskit.config import load_settings
    from obskit.logging import configure_chain, set_level, set_sample_rates
    from obskit.logging import stdlib as stdlib_bridge

    resolved = load_settings(**settings)
    exporters = _runtime.make_exporters(resolved)
    runtime = _runtime.build(resolved, exporters)
    set_level(resolved.level)
    set_sample_rates(resolved.log_sample_rate)
    configure_chain(list(resolved.processors))
    previous = _runtime.replace(runtime)
    if previous is not None:
        previous.pipeline.shutdown(previous.settings.shutdown_timeout_s, keep=exporters)
    if resolved.flush_on_signals:
        _pipeline.install_signal_flush()
    else:
        _pipeline.uninstall_signal_flush()
    if resolved.capture_stdlib_logging:
        stdlib_bridge.install(resolved.level)
    else:
        stdlib_bridge.uninstall()
    hooks = errors.configure(resolved)
    instrumentation.configure(
        slow_ms=resolved.slow_ms,
        slow_capture=resolved.slow_capture,
        instrument_root=resolved.instrument_root,
    )
    from obskit import metrics

    metrics.configure(resolved)
    if resolved.debug:
        _say_what_was_set_up(runtime, hooks)


def _say_what_was_set_up(runtime: Any, hooks: list[str]) -> None:
    names = ", ".join(
        f"{p.name} (batches up to {p.max_batch_size}, every {p.schedule_delay_s:g} s)"
        for p in runtime.pipeline.processors
    )
    names = names or "none"
    lines = [f"obskit: service {runtime.service!r}, exporters {names}"]
    if hooks:
        lines.append(
            f"obskit: chained {', '.join(hooks)} to capture uncaught errors "
            "(init(install_hooks=False) to opt out)"
        )
    try:
        sys.stderr.write("\n".join(lines) + "\n")
    except Exception:
        pass


def flush(timeout_s: float = 5.0) -> bool:
    """Deliver everything queued so far; ``True`` if it all left within ``timeout_s``."""
    from obskit import _runtime

    runtime = _runtime.peek()
    return True if runtime is None else runtime.pipeline.flush(timeout_s)


def shutdown(timeout_s: float | None = None) -> None:
    """Stop background work, flush and stop every exporter, within ``timeout_s`` in total.

    ``None`` takes the ``shutdown_timeout_s`` setting. Logging afterwards starts defaults.
    """
    from obskit import _runtime, diagnostics

    runtime = _runtime.peek()
    if timeout_s is None:
        timeout_s = runtime.settings.shutdown_timeout_s if runtime is not None else 5.0
    timeout_s = diagnostics.bounded_timeout(timeout_s)
    deadline = time.monotonic() + timeout_s
    # Background threads stop first (they may still emit), with half the budget at most.
    _runtime.notify_shutdown(timeout_s / 2)
    previous = _runtime.replace(None)
    if "obskit.pipeline" in sys.modules:
        from obskit import pipeline as _pipeline

        _pipeline.uninstall_signal_flush()
    if "obskit.logging.stdlib" in sys.modules:
        from obskit.logging import stdlib as stdlib_bridge

        stdlib_bridge.uninstall()
    if "obskit.errors" in sys.modules:
        from obskit import errors

        errors.reset()
    if previous is not None:
        previous.pipeline.shutdown(max(0.0, deadline - time.monotonic()))


def pipeline_stats() -> dict[str, Any]:
    """Self-metrics: per exporter accepted/exported/dropped/failed/retried/queued, problems,
    and log records sampled out per level (``log_sample_rate``)."""
    from obskit import _runtime, diagnostics
    from obskit.logging import sampled_out

    runtime = _runtime.peek()
    exporters = runtime.pipeline.stats() if runtime is not None else {}
    return {
        "exporters": exporters,
        "problems": diagnostics.problem_counts(),
        "logs": {"sampled_out": dict(sampled_out)},
    }


def get_logger(name: str = "", **fields: Any) -> Logger:
    """A logger called ``name`` with ``fields`` bound to every record it emits.

    Usable at import time, before ``init``: it follows the current configuration.
    """
    from obskit.logging import get_logger as _get_logger

    return _get_logger(name, **fields)


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
    from obskit import errors

    return errors.capture_exception(exc, level=level, fingerprint=fingerprint, **context)


def capture_message(
    message: str,
    level: str = "info",
    *,
    fingerprint: list[str] | str | None = None,
    **context: Any,
) -> ErrorEvent | None:
    """Capture a message as an event, grouped by its text with variable parts removed."""
    from obskit import errors

    return errors.capture_message(message, level=level, fingerprint=fingerprint, **context)
