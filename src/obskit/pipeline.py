"""The pipeline: every signal goes through here, to one BatchProcessor per exporter.

Layering follows the OpenTelemetry SDK (provider -> processor -> exporter): capabilities create
signals, :class:`Pipeline` scrubs each once and fans it out, each
:class:`~obskit.processor.BatchProcessor` buffers it in a bounded queue and delivers batches on
its own worker thread to its :class:`~obskit.exporting.Exporter`.
"""

from __future__ import annotations

import atexit
import collections
import time
import weakref
from collections.abc import Sequence
from typing import Any

from obskit import diagnostics
from obskit.exporting import Exporter
from obskit.processor import BatchProcessor
from obskit.scrubbing import Scrubber
from obskit.signals import Signal

__all__ = ["Pipeline"]


class Pipeline:
    """Stamps each signal with the service identity, scrubs it once and hands it to every
    exporter's processor.

    ``resource`` (an OpenTelemetry ``Resource``) is the setup's identity: its
    ``service.name``, ``deployment.environment.name`` and ``service.version`` fill the
    ``service``, ``environment`` and ``release`` fields a signal left empty, and exporters
    with a ``set_resource(resource)`` method receive it before their first batch.
    """

    def __init__(
        self,
        exporters: Sequence[Exporter],
        *,
        scrubber: Scrubber | None = None,
        resource: Any = None,
        **processor_options: Any,
    ) -> None:
        self.scrubber = scrubber or Scrubber()
        self.resource = resource
        attributes = dict(resource.attributes) if resource is not None else {}
        self._identity = {
            "service": str(attributes.get("service.name") or ""),
            "environment": str(attributes.get("deployment.environment.name") or ""),
            "release": str(attributes.get("service.version") or "") or None,
        }
        for exporter in exporters:
            set_resource = getattr(exporter, "set_resource", None)
            if resource is not None and callable(set_resource):
                try:
                    set_resource(resource)
                except Exception as exc:
                    diagnostics.report(
                        "set_resource", f"{type(exporter).__name__}.set_resource raised {exc!r}"
                    )
        names = _unique_names([type(e).__name__ for e in exporters])
        self.processors = [
            BatchProcessor(e, name=name, **processor_options)
            for e, name in zip(exporters, names, strict=True)
        ]
        self._closed = False
        _live_pipelines.add(self)

    @property
    def exporters(self) -> list[Exporter]:
        return [p.exporter for p in self.processors]

    def emit(self, signal: Signal) -> None:
        """Stamp and scrub ``signal`` and queue it for every exporter. Never raises."""
        try:
            for name in _identity_fields(type(signal)):
                if not getattr(signal, name):
                    setattr(signal, name, self._identity[name])
            signal.scrub(self.scrubber)
        except Exception as exc:
            diagnostics.report("scrub_error", f"could not scrub a {signal.kind} signal: {exc!r}")
            return
        for processor in self.processors:
            processor.enqueue(signal)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Deliver everything queued so far, within ``timeout_s`` in total."""
        deadline = time.monotonic() + timeout_s
        ok = True
        for processor in self.processors:
            ok = processor.force_flush(max(0.0, deadline - time.monotonic())) and ok
        return ok

    def shutdown(self, timeout_s: float = 5.0, *, keep: Sequence[Exporter] = ()) -> None:
        """Flush and stop every processor, in parallel, within ``timeout_s`` in total.

        Exporters in ``keep`` are flushed but not shut down: ``init`` passes the ones the new
        setup reuses.
        """
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout_s
        kept = {id(exporter) for exporter in keep}
        for processor in self.processors:
            processor.begin_shutdown(deadline)
        for processor in self.processors:
            processor.finish_shutdown(deadline, keep_exporter=id(processor.exporter) in kept)

    def stats(self) -> dict[str, dict[str, int]]:
        return {p.name: p.stats().to_dict() for p in self.processors}


_IDENTITY_FIELDS = ("service", "environment", "release")
_identity_cache: dict[type, tuple[str, ...]] = {}


def _identity_fields(cls: type) -> tuple[str, ...]:
    """Which of service/environment/release a signal class carries (cached per class)."""
    fields = _identity_cache.get(cls)
    if fields is None:
        declared = getattr(cls, "__dataclass_fields__", {})
        fields = _identity_cache[cls] = tuple(f for f in _IDENTITY_FIELDS if f in declared)
    return fields


def _unique_names(names: list[str]) -> list[str]:
    seen: collections.Counter[str] = collections.Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}#{seen[name]}")
    return unique


_live_pipelines: weakref.WeakSet[Pipeline] = weakref.WeakSet()
#: How long interpreter exit may spend flushing (settable through ``init(shutdown_timeout_s=)``).
exit_timeout_s = 5.0


@atexit.register
def _flush_at_exit() -> None:
    for pipeline in list(_live_pipelines):
        pipeline.shutdown(exit_timeout_s)
