"""Throughput of obskit's detectors, beside a bare EWMA loop and river's HalfSpaceTrees.

    python benchmarks/bench_anomaly.py            # ~30 s on one core
    python benchmarks/bench_anomaly.py --quick    # a smaller series, for a smoke test

Every row streams the same synthetic metric (a daily cycle with noise and a few incidents,
5-minute points with timestamps) through ``update`` one point at a time, in one process on
one core, and reports points per second and the ratio to the bare loop measured in the same
run (machines are noisy: compare ratios, not absolute numbers), and points per CPU second of the
process (``time.process_time``): what one core delivers even when other processes share the
machine. Each row is the best of three repetitions. Streaming rows drop each result; "kept"
and ``update_many`` rows keep them all in a list, as a backfill must (holding 100,000s of
results costs garbage-collector time).
river (``pip install 'obskit[bench]'``) is skipped when it is not installed.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable
from typing import Any

from obskit import anomaly

STEP_S = 300.0


def make_series(points: int, seed: int = 1) -> tuple[list[float], list[float]]:
    """A daily cycle between 20 and 80, gaussian noise, and a spike every 5,000 points."""
    rng = random.Random(seed)
    start = 1_700_000_000.0
    times = [start + i * STEP_S for i in range(points)]
    values = [
        50.0 + 30.0 * math.sin(2 * math.pi * (moment % 86_400) / 86_400) + rng.gauss(0, 2)
        for moment in times
    ]
    for i in range(2_500, points, 5_000):
        values[i] += 60.0
    return values, times


def bare_ewma(values: list[float], times: list[float]) -> int:
    """The floor: an exponentially weighted mean and variance, inline, no objects."""
    mean, var, alpha, flagged = values[0], 0.0, 0.05, 0
    for value in values:
        delta = value - mean
        if var > 0 and delta * delta > 16.0 * var:
            flagged += 1
        mean += alpha * delta
        var = (1 - alpha) * (var + alpha * delta * delta)
    return flagged


def streaming(factory: Callable[[], Any]) -> Callable[[list[float], list[float]], int]:
    """Point-by-point ``update(value, timestamp)`` through a fresh detector."""

    def run(values: list[float], times: list[float]) -> int:
        update = factory().update
        return sum(
            update(value, moment).is_anomaly for value, moment in zip(values, times, strict=True)
        )

    return run


def kept(factory: Callable[[], Any]) -> Callable[[list[float], list[float]], int]:
    """``update(value)`` point by point, keeping every result (what a backfill must do)."""

    def run(values: list[float], times: list[float]) -> int:
        update = factory().update
        return sum(result.is_anomaly for result in [update(value) for value in values])

    return run


def backfill(factory: Callable[[], Any]) -> Callable[[list[float], list[float]], int]:
    """One ``update_many(values)`` call (no timestamps: the vectorised path when there is one)."""

    def run(values: list[float], times: list[float]) -> int:
        return sum(result.is_anomaly for result in factory().update_many(values))

    return run


def river_hst() -> Callable[[list[float], list[float]], int] | None:
    """river's HalfSpaceTrees, scored then learned one point at a time, as river documents."""
    try:
        from river import anomaly as river_anomaly
    except ImportError:
        return None

    def run(values: list[float], times: list[float]) -> int:
        low, high = min(values), max(values)
        model = river_anomaly.HalfSpaceTrees(
            n_trees=10, height=8, window_size=250, limits={"x": (low, high)}, seed=42
        )
        flagged = 0
        for value in values:
            point = {"x": value}
            flagged += model.score_one(point) > 0.9
            model.learn_one(point)
        return flagged

    return run


def measure(run: Callable[[list[float], list[float]], int], points: int) -> tuple[float, float]:
    """Best of three: points per second of wall time and per second of this process' CPU time."""
    values, times = make_series(points)
    wall = cpu = math.inf
    for _ in range(3):
        started, used = time.perf_counter(), time.process_time()
        run(values, times)
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - used)
    return points / wall, points / max(cpu, 1e-9)


def separate_views() -> Any:
    """The default's four views as separate detectors in an :class:`Ensemble` (the old default)."""
    return anomaly.Ensemble(
        [
            anomaly.Seasonal(period=anomaly.DAY, buckets=48, alpha=0.1),
            anomaly.AnomalyLikelihood(anomaly.ContextNovelty(levels=8, order=5), smoothing=5),
            anomaly.ContextNovelty(levels=8, order=5, scale=16, fit=25, warmup=10),
            anomaly.RangeNovelty(),
        ],
        cooldown=120,
        threshold=0.25,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10x smaller series")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    rows: list[tuple[str, Callable[[list[float], list[float]], int] | None, int]] = [
        ("bare Python EWMA loop (floor)", bare_ewma, 400_000),
        ("obskit EWMA.update", streaming(anomaly.EWMA), 200_000),
        ("obskit RangeNovelty.update", streaming(anomaly.RangeNovelty), 200_000),
        ("obskit RollingZScore.update", streaming(anomaly.RollingZScore), 200_000),
        ("obskit RollingZScore.update, kept", kept(anomaly.RollingZScore), 200_000),
        ("obskit RollingZScore.update_many", backfill(anomaly.RollingZScore), 200_000),
        ("obskit CUSUM.update", streaming(anomaly.CUSUM), 200_000),
        ("obskit HoltWinters.update", streaming(anomaly.HoltWinters), 200_000),
        ("obskit Seasonal.update", streaming(anomaly.Seasonal), 200_000),
        ("obskit MedianMAD.update", streaming(anomaly.MedianMAD), 100_000),
        ("obskit ContextNovelty.update", streaming(anomaly.ContextNovelty), 100_000),
        ("obskit default().update (MultiScale)", streaming(anomaly.default), 100_000),
        ("obskit default().update_many", backfill(anomaly.default), 100_000),
        ("obskit same views as an Ensemble", streaming(separate_views), 100_000),
        ("river HalfSpaceTrees score+learn", river_hst(), 10_000),
    ]
    print(f"{'detector':<40}{'points':>10}{'points/s':>12}{'points/CPU-s':>14}{'vs bare loop':>14}")
    print("-" * 90)
    floor = None
    for name, run, points in rows:
        points //= scale
        if run is None:
            print(f"{name:<40}{'-':>10}{'not installed':>12}{'-':>14}{'-':>14}")
            continue
        rate, cpu_rate = measure(run, points)
        floor = floor or cpu_rate
        print(f"{name:<40}{points:>10,}{rate:>12,.0f}{cpu_rate:>14,.0f}{cpu_rate / floor:>13.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
