"""The metrics store: every instrument of the process, declared once, collected on demand.

One store per process (``obskit.metrics.STORE``), like prometheus_client's registry and
OpenTelemetry's meter provider: instruments are declared at import time (before ``init``) and
survive re-``init``. The runtime's periodic reader, the Prometheus endpoint, ``query`` and
``snapshot`` all read it through :meth:`MetricsStore.collect`.

Declaring a name twice returns the same instrument; with another kind or unit it is a
:class:`~obskit.ConfigError` naming both places. Two bounds keep memory flat: at most
``cardinality_limit`` label sets per instrument (then the overflow series) and at most
``max_metrics`` names (a new name past it records nothing, counted and reported once).

The store also keeps a short history of collections (the reader's ticks), so ``query`` can
answer "over the last ``window_s``" the way Prometheus does: from samples taken at the
collection interval.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from obskit import diagnostics
from obskit.diagnostics import ConfigError
from obskit.metrics.instruments import (
    CLASSES,
    DEFAULT_BUCKETS,
    KINDS,
    SECONDS_BUCKETS,
    Instrument,
    MetricData,
)

__all__ = ["DEFAULT_CARDINALITY_LIMIT", "DEFAULT_MAX_METRICS", "MetricsStore", "default_buckets"]

#: OpenTelemetry's default cardinality limit per metric.
DEFAULT_CARDINALITY_LIMIT = 2000
DEFAULT_MAX_METRICS = 1000
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-/]{0,254}$")  # OpenTelemetry's instrument name syntax
_HERE = os.path.dirname(os.path.abspath(__file__))


def default_buckets(unit: str) -> tuple[float, ...]:
    """Bucket bounds for a histogram declared without ``buckets``."""
    return SECONDS_BUCKETS if unit == "s" else DEFAULT_BUCKETS


class _Dropped(Instrument):
    """What a name past ``max_metrics`` gets: every call is a no-op."""

    kind = "dropped"

    def add(self, amount: float = 1, /, **labels: Any) -> None:
        pass

    def set(self, value: float, /, **labels: Any) -> None:
        pass

    def record(self, value: float, /, **labels: Any) -> None:
        pass

    def record_at(self, value: Any, labels: dict[str, Any], timestamp: float | None) -> None:
        pass


class MetricsStore:
    """The instruments of one process and a short history of their collections."""

    def __init__(
        self,
        *,
        cardinality_limit: int = DEFAULT_CARDINALITY_LIMIT,
        max_metrics: int = DEFAULT_MAX_METRICS,
        clock: Callable[[], float] = time.time,
        history_s: float = 3600.0,
    ) -> None:
        self.cardinality_limit = cardinality_limit
        self.max_metrics = max_metrics
        self.clock = clock
        self.history_s = history_s
        self.instruments: dict[str, Instrument] = {}
        self.dropped_metrics = 0
        self._lock = threading.Lock()
        #: (time, {name: MetricData}) of past collections, oldest first
        self.history: deque[tuple[float, dict[str, MetricData]]] = deque()

    # -- declaring ----------------------------------------------------------------------------

    def declare(
        self,
        kind: str,
        name: str,
        *,
        unit: str = "",
        description: str = "",
        buckets: Sequence[float] | None = None,
        callback: Callable[[], Any] | None = None,
        strict: bool = True,
    ) -> Instrument:
        """The instrument ``name`` of ``kind``, created on first declaration.

        ``strict`` (declarations) raises :class:`ConfigError` on a bad name or a clash;
        the shortcuts pass ``strict=False`` and get ``None``-like no-op instruments instead.
        """
        found = self.instruments.get(name)
        if found is not None and found.kind == kind and found.unit == unit:
            if buckets is not None and tuple(float(b) for b in buckets) != found.bounds:
                self._clash(found, kind, unit, strict, "other buckets")
            return found
        with self._lock:
            found = self.instruments.get(name)
            if found is not None:
                if found.kind == kind and found.unit == unit:
                    return found
                clash: Instrument = self._clash(found, kind, unit, strict, "")
                return clash
            if kind not in KINDS:
                raise ConfigError(f"unknown metric kind {kind!r}; use one of {', '.join(KINDS)}")
            if not isinstance(name, str) or not _NAME.match(name):
                if strict:
                    raise ConfigError(
                        f"metric name {name!r} is not valid: start with a letter, then letters, "
                        "digits, '_', '.', '-' or '/' (at most 255 characters)"
                    )
                diagnostics.report("metrics.bad_name", f"metric name {name!r} is not valid")
                return _Dropped(str(name))
            if len(self.instruments) >= self.max_metrics:
                self.dropped_metrics += 1
                diagnostics.report(
                    "metrics.too_many_metrics",
                    f"metric {name!r} was not created: the process already has "
                    f"{self.max_metrics} metric names (metrics_max_names); a name built from "
                    "data (an id in the name) is the usual cause",
                )
                return _Dropped(name)
            bounds: tuple[float, ...] = ()
            if kind == "histogram":
                bounds = _check_buckets(name, default_buckets(unit) if buckets is None else buckets)
            instrument = CLASSES[kind](
                name,
                unit=unit,
                description=description,
                callback=callback,
                bounds=bounds,
                cardinality_limit=self.cardinality_limit,
                declared_at=_caller(),
            )
            instrument.implicit = not strict
            self.instruments[name] = instrument
            return instrument

    def _clash(self, found: Instrument, kind: str, unit: str, strict: bool, what: str) -> Any:
        message = (
            f"metric {found.name!r} is declared as {found.kind} (unit {found.unit!r}) at "
            f"{found.declared_at or 'an unknown place'} and as {kind} (unit {unit!r})"
            f"{' with ' + what if what else ''} at {_caller()}; one name has one kind, unit and "
            "buckets: rename one of them"
        )
        if strict:
            raise ConfigError(message)
        diagnostics.report(f"metrics.kind_clash.{found.name}", message)
        return _Dropped(found.name)

    # -- reading ------------------------------------------------------------------------------

    def collect(self) -> list[MetricData]:
        """Every instrument's series now; a failing callback leaves its metric out."""
        out = []
        for instrument in list(self.instruments.values()):
            try:
                data = instrument.collect()
            except Exception as exc:  # never into the reader or the scrape
                diagnostics.report("metrics.collect", f"collecting {instrument!r} failed: {exc!r}")
                continue
            if data.series:
                out.append(data)
        return out

    def remember(self, now: float, collected: list[MetricData]) -> None:
        """Keep a collection for windowed queries (the reader calls this each tick)."""
        with self._lock:
            self.history.append((now, {data.name: data for data in collected}))
            while self.history and self.history[0][0] < now - self.history_s:
                self.history.popleft()

    def baseline(self, since: float) -> dict[str, MetricData] | None:
        """The newest remembered collection at or before ``since`` (``None`` if none is)."""
        with self._lock:
            found = None
            for moment, data in self.history:
                if moment > since:
                    break
                found = data
        return found

    def reset(self) -> None:
        """For tests: forget every series, the history, and the instruments declared outside
        obskit (by the shortcuts, or by the test itself), back to default limits; obskit's
        own built-in instruments stay declared (modules hold them)."""
        package = os.path.dirname(_HERE) + os.sep
        with self._lock:
            for name, instrument in list(self.instruments.items()):
                if instrument.implicit or not instrument.declared_at.startswith(package):
                    del self.instruments[name]
                instrument.reset()
            self.history.clear()
            self.dropped_metrics = 0
            self.cardinality_limit = DEFAULT_CARDINALITY_LIMIT
            self.max_metrics = DEFAULT_MAX_METRICS
            for instrument in self.instruments.values():
                instrument.cardinality_limit = DEFAULT_CARDINALITY_LIMIT

    def after_fork_in_child(self) -> None:
        """A forked child is a process of its own: fresh locks, series from zero."""
        self._lock = threading.Lock()
        self.history.clear()
        for instrument in self.instruments.values():
            instrument.after_fork_in_child()


def _check_buckets(name: str, buckets: Sequence[float]) -> tuple[float, ...]:
    try:
        bounds = tuple(float(b) for b in buckets)
    except (TypeError, ValueError):
        bounds = ()
    if (
        not bounds
        or any(not math.isfinite(b) for b in bounds)
        or any(a >= b for a, b in itertools.pairwise(bounds))
    ):
        raise ConfigError(
            f"histogram {name!r}: buckets must be finite numbers in increasing order "
            f"(the +Inf bucket is implicit), got {list(buckets)!r}"
        )
    return bounds


def _caller() -> str:
    """``file:line`` of the declaring call site: the first frame outside ``obskit.metrics``, or
    a module body inside it (its own built-in series)."""
    frame: Any = sys._getframe(1)
    package = _HERE
    while frame is not None:
        code = frame.f_code
        inside = os.path.abspath(code.co_filename).startswith(package + os.sep)
        if not inside or code.co_name == "<module>":
            return f"{code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "obskit"
