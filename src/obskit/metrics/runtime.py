"""Runtime metrics of the process, on OpenTelemetry's semantic conventions (stdlib only).

Observable instruments read at each collection (reader tick, scrape, ``snapshot``), so they
cost nothing between reads. On by default; ``obskit.init(runtime_metrics=False)`` turns them
off.

=====================================  ==============  =========================================
name                                   kind, unit      labels
=====================================  ==============  =========================================
``process.cpu.time``                   counter, s      ``cpu.mode`` (user, system)
``process.memory.usage``               up-down, By     (resident set size)
``process.memory.virtual``             up-down, By
``process.thread.count``               up-down
``process.open_file_descriptor.count`` up-down
``process.uptime``                     gauge, s
``cpython.gc.collections``             counter         ``cpython.gc.generation``
``cpython.gc.collected_objects``       counter         ``cpython.gc.generation``
=====================================  ==============  =========================================

obskit's own pipeline is read the same way (always on): ``obskit.pipeline.exported``,
``obskit.pipeline.dropped``, ``obskit.pipeline.failed``, ``obskit.pipeline.retried`` (counters)
and ``obskit.pipeline.queued`` (up-down) labelled ``exporter``, and ``obskit.problems``
{``kind``}, the count of each internal problem (``obskit.pipeline_stats()`` as series).

Memory and descriptors come from ``/proc/self`` where it exists (Linux); elsewhere memory
falls back to the peak resident size of ``resource`` and descriptors are left out.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from typing import Any

from obskit.metrics.instruments import Observation
from obskit.metrics.store import MetricsStore

__all__ = ["install", "install_self_metrics", "set_enabled"]

_enabled = True
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _process_start() -> float:
    """When the process started (from ``/proc``; else when obskit was imported)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            ticks = int(stat.read().rsplit(b")", 1)[1].split()[19])
        with open("/proc/stat", "rb") as system:
            for line in system:
                if line.startswith(b"btime"):
                    return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return time.time()


_started = _process_start()


def set_enabled(on: bool) -> None:
    """Report runtime metrics (``True``) or leave them out of collections."""
    global _enabled
    _enabled = on


def _when_enabled(read: Any) -> Any:
    def callback() -> Any:
        return read() if _enabled else None

    return callback


def _cpu() -> list[Observation]:
    times = os.times()
    return [
        Observation(times.user, {"cpu.mode": "user"}),
        Observation(times.system, {"cpu.mode": "system"}),
    ]


def _statm() -> tuple[int, int] | None:
    try:
        with open("/proc/self/statm", "rb") as statm:
            virtual, resident = statm.read().split()[:2]
        return int(virtual) * _PAGE, int(resident) * _PAGE
    except (OSError, ValueError):
        return None


def _resident() -> float | None:
    found = _statm()
    if found is not None:
        return float(found[1])
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak if os.uname().sysname == "Darwin" else peak * 1024)
    except (ImportError, OSError):
        return None


def _virtual() -> float | None:
    found = _statm()
    return None if found is None else float(found[0])


def _descriptors() -> float | None:
    try:
        return float(len(os.listdir("/proc/self/fd")))
    except OSError:
        return None


def _gc(field: str) -> list[Observation]:
    return [
        Observation(stats[field], {"cpython.gc.generation": generation})
        for generation, stats in enumerate(gc.get_stats())
    ]


def install(store: MetricsStore) -> None:
    """Declare the runtime instruments in ``store`` (idempotent)."""
    declare = store.declare
    declare("counter", "process.cpu.time", unit="s", description="CPU time used by the process",
            callback=_when_enabled(_cpu))  # fmt: skip
    declare("up_down_counter", "process.memory.usage", unit="By",
            description="resident set size", callback=_when_enabled(_resident))  # fmt: skip
    declare("up_down_counter", "process.memory.virtual", unit="By",
            description="virtual memory size", callback=_when_enabled(_virtual))  # fmt: skip
    declare("up_down_counter", "process.thread.count", unit="{thread}",
            description="threads of the process",
            callback=_when_enabled(threading.active_count))  # fmt: skip
    declare("up_down_counter", "process.open_file_descriptor.count", unit="{file_descriptor}",
            description="open file descriptors", callback=_when_enabled(_descriptors))  # fmt: skip
    declare("gauge", "process.uptime", unit="s", description="seconds since the process started",
            callback=_when_enabled(lambda: time.time() - _started))  # fmt: skip
    declare("counter", "cpython.gc.collections", unit="{collection}",
            description="garbage collections by generation",
            callback=_when_enabled(lambda: _gc("collections")))  # fmt: skip
    declare("counter", "cpython.gc.collected_objects", unit="{object}",
            description="objects collected by the garbage collector",
            callback=_when_enabled(lambda: _gc("collected")))  # fmt: skip


def _pipeline(field: str) -> Any:
    def callback() -> list[Observation]:
        from obskit import _runtime

        runtime = _runtime.peek()
        if runtime is None:
            return []
        return [
            Observation(stats[field], {"exporter": name})
            for name, stats in runtime.pipeline.stats().items()
        ]

    return callback


def _problems() -> list[Observation]:
    from obskit import diagnostics

    return [Observation(n, {"kind": kind}) for kind, n in diagnostics.problem_counts().items()]


def install_self_metrics(store: MetricsStore) -> None:
    """Declare obskit's own pipeline series in ``store`` (idempotent)."""
    for field in ("exported", "dropped", "failed", "retried"):
        store.declare("counter", f"obskit.pipeline.{field}", unit="{signal}",
                      description=f"signals {field} per exporter",
                      callback=_pipeline(field))  # fmt: skip
    store.declare("up_down_counter", "obskit.pipeline.queued", unit="{signal}",
                  description="signals waiting per exporter",
                  callback=_pipeline("queued"))  # fmt: skip
    store.declare("counter", "obskit.problems", unit="{problem}",
                  description="obskit's own problems, by kind", callback=_problems)  # fmt: skip
