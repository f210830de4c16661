"""Several worker processes, one scrape: each process' series in a shared directory.

``obskit.init(metrics_multiprocess_dir=...)`` (or ``OBSKIT_METRICS_MULTIPROCESS_DIR``) makes every
process of the service (gunicorn or uvicorn workers, which each call ``init``) write a snapshot
of its store to ``<dir>/obskit-<pid>.json`` every ``FLUSH_INTERVAL_S`` (1 s), at every
collection and at exit (atomically: a temporary file renamed over the old one). Whichever
worker answers a scrape merges its live store with every other process' snapshot:

* counters, histograms (buckets, sum, count, min, max) and up-down counters add up across
  processes, series by series; a process that exited keeps its counters and histograms in the
  sum (so the service's totals never go down), its up-down counters leave it;
* gauges cannot be added up: each live process' series gets a ``process.pid`` label
  (``process_pid`` in Prometheus), and those of exited processes are dropped.

Why snapshots and not a value per ``mmap`` slot as prometheus_client's multiprocess mode: the
recording hot path stays the single-process one (no file write per ``add``), exemplars and
min/max survive, and a worker's cost is one small file write per second. The price: a scrape
sees the other workers as of their last snapshot (at most ~1 s old). Empty the directory when
the service starts (as with prometheus_client), or old processes' counters count again.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from obskit import diagnostics
from obskit.metrics._periodic import Periodic
from obskit.metrics.instruments import Exemplar, MetricData, SeriesData
from obskit.metrics.store import MetricsStore

__all__ = ["FLUSH_INTERVAL_S", "SnapshotWriter", "merge", "read_snapshots"]

FLUSH_INTERVAL_S = 1.0
_PREFIX = "obskit-"


def _snapshot(collected: list[MetricData]) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "metrics": [
            {
                "name": m.name,
                "kind": m.kind,
                "unit": m.unit,
                "description": m.description,
                "bounds": list(m.bounds),
                "series": [
                    [
                        s.labels,
                        s.value,
                        s.start,
                        s.count,
                        list(s.bucket_counts),
                        s.min,
                        s.max,
                        [None if e is None else list(e) for e in s.exemplars],
                    ]
                    for s in m.series
                ],
            }
            for m in collected
        ],
    }


def _metric(raw: dict[str, Any]) -> MetricData:
    series = [
        SeriesData(
            labels,
            value,
            start,
            count,
            tuple(counts),
            low,
            high,
            tuple(None if e is None else Exemplar(*e) for e in exemplars),
        )
        for labels, value, start, count, counts, low, high, exemplars in raw["series"]
    ]
    return MetricData(
        raw["name"], raw["kind"], raw["unit"], raw["description"], tuple(raw["bounds"]), series
    )


class SnapshotWriter(Periodic):
    """Writes this process' store to ``directory`` every ``interval_s`` on a daemon thread."""

    thread_name = "obskit-metrics-snapshot"

    def __init__(
        self, store: MetricsStore, directory: str | os.PathLike[str], interval_s: float = 1.0
    ) -> None:
        super().__init__(interval_s)
        self.store = store
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        return self.directory / f"{_PREFIX}{os.getpid()}.json"

    def write(self, collected: list[MetricData] | None = None) -> None:
        """Write the snapshot now (never raises: a failure is counted)."""
        try:
            data = self.store.collect() if collected is None else collected
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.path
            temporary = target.with_suffix(f".tmp-{threading.get_ident()}")
            temporary.write_text(json.dumps(_snapshot(data)), encoding="utf-8")
            os.replace(temporary, target)
        except Exception as exc:
            diagnostics.report(
                "metrics.multiprocess", f"could not write metrics to {self.directory}: {exc!r}"
            )

    def tick(self) -> None:
        self.write()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def read_snapshots(directory: str | os.PathLike[str]) -> list[tuple[int, bool, list[MetricData]]]:
    """(pid, alive, metrics) of every other process' snapshot in ``directory``."""
    out = []
    own = os.getpid()
    try:
        paths = sorted(Path(directory).glob(f"{_PREFIX}*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            pid = int(raw["pid"])
            if pid == own:
                continue
            out.append((pid, _alive(pid), [_metric(m) for m in raw["metrics"]]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            diagnostics.report("metrics.multiprocess", f"unreadable snapshot {path}: {exc!r}")
    return out


def merge(
    own: list[MetricData], others: Iterable[tuple[int, bool, list[MetricData]]]
) -> list[MetricData]:
    """One collection for the whole service (see the module docstring for the rules)."""
    merged: dict[str, MetricData] = {}
    by_key: dict[tuple[str, tuple[tuple[str, str], ...]], SeriesData] = {}
    sources = [(os.getpid(), True, own), *others]
    for pid, alive, collected in sources:
        for data in collected:
            if data.kind in ("gauge", "up_down_counter") and not alive:
                continue
            target = merged.get(data.name)
            if target is None:
                target = merged[data.name] = data._replace(series=[])
            elif target.kind != data.kind or target.bounds != data.bounds:
                continue  # another version of the app declared it otherwise: keep the first
            for series in data.series:
                if data.kind == "gauge":
                    labeled = SeriesData({**series.labels, "process.pid": str(pid)}, series.value,
                                         series.start)  # fmt: skip
                    target.series.append(labeled)
                    continue
                key = (data.name, tuple(sorted(series.labels.items())))
                found = by_key.get(key)
                if found is None:
                    copy = SeriesData(dict(series.labels), series.value, series.start,
                                      series.count, series.bucket_counts, series.min, series.max,
                                      series.exemplars)  # fmt: skip
                    by_key[key] = copy
                    target.series.append(copy)
                else:
                    _add(found, series)
    return [m for m in merged.values() if m.series]


def _add(total: SeriesData, series: SeriesData) -> None:
    total.value += series.value
    total.start = min(total.start, series.start)
    total.count += series.count
    if series.bucket_counts:
        total.bucket_counts = tuple(
            a + b for a, b in zip(total.bucket_counts, series.bucket_counts, strict=False)
        )
    if series.min is not None:
        total.min = series.min if total.min is None else min(total.min, series.min)
    if series.max is not None:
        total.max = series.max if total.max is None else max(total.max, series.max)
    if series.exemplars:
        mine = list(total.exemplars) or [None] * len(series.exemplars)
        for index, exemplar in enumerate(series.exemplars):
            if exemplar is not None and index < len(mine):
                current = mine[index]
                if current is None or exemplar.timestamp > current.timestamp:
                    mine[index] = exemplar
        total.exemplars = tuple(mine)
