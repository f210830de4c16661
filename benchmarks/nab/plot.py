"""Plot one NAB series through ``obskit.anomaly.default()``: band, flagged points, NAB windows.

    python benchmarks/nab/plot.py                      # writes docs/anomaly_nab.png
    python benchmarks/nab/plot.py --series realKnownCause/machine_temperature_system_failure.csv
    python benchmarks/nab/plot.py --strict --out /tmp/strict.png

Needs matplotlib (``pip install 'obskit[bench]'``). The data is read from the NAB copy (see
``run.py``), never stored in the repository; the figure is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import Series, find_root, load_corpus  # noqa: E402
from scoring import probation_length  # noqa: E402

from obskit import anomaly  # noqa: E402

REPO_ROOT = HERE.parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nab", type=Path, default=find_root(REPO_ROOT), help="NAB root")
    parser.add_argument("--series", default="realKnownCause/machine_temperature_system_failure.csv")
    parser.add_argument("--strict", action="store_true", help="no min/max hint")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "anomaly_nab.png")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    [series] = [item for item in load_corpus(args.nab) if item.name == args.series]
    detector = anomaly.default(value_range=None if args.strict else series.value_range)
    results = detector.update_many(series.values, series.times)
    when = [dt.datetime.fromtimestamp(moment, tz=dt.timezone.utc) for moment in series.times]
    flagged = [i for i, result in enumerate(results) if result.is_anomaly]

    figure, axes = plt.subplots(2, 1, figsize=(14, 7.5), dpi=110)
    span = len(series.values)
    focus = series.windows[len(series.windows) // 2] if series.windows else (0, span - 1)
    width = (focus[1] - focus[0] + 1) * 3
    zoom = (max(0, focus[0] - width // 2), min(span, focus[1] + width // 2))
    for axis, (first, last) in zip(axes, [(0, span), zoom], strict=True):
        _draw(axis, series, when, results, range(first, last))
    protocol = "strict streaming (no hint)" if args.strict else "NAB protocol (min/max hint)"
    axes[0].set_title(f"obskit.anomaly.default() on NAB {series.name}: {protocol}", fontsize=10)
    axes[1].set_title("zoom on one window", fontsize=9)
    axes[0].legend(loc="upper left", fontsize=8, ncol=4)
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out)
    print(f"wrote {args.out} ({len(flagged)} flagged points, {len(series.windows)} windows)")
    return 0


def _draw(axis: Any, series: Series, when: list[Any], results: list[Any], rows: range) -> None:
    """Band, values, windows and flagged points of ``rows`` on one axis."""
    banded = [i for i in rows if results[i].lower is not None]
    axis.fill_between(
        [when[i] for i in banded],
        [results[i].lower for i in banded],
        [results[i].upper for i in banded],
        color="#9ecae1",
        alpha=0.6,
        linewidth=0,
        label="expected band (time-of-day baseline)",
    )
    axis.plot(
        [when[i] for i in rows],
        [series.values[i] for i in rows],
        color="#08519c",
        linewidth=0.7,
        label="value",
    )
    shown = [
        (left, right) for left, right in series.windows if right >= rows[0] and left < rows[-1]
    ]
    for k, (left, right) in enumerate(shown):
        axis.axvspan(
            when[max(left, rows[0])],
            when[min(right, rows[-1])],
            color="#fdae6b",
            alpha=0.35,
            label="NAB window" if k == 0 else None,
        )
    probation = probation_length(len(series.values))
    if probation in rows:
        axis.axvline(when[probation], color="grey", linestyle="--", linewidth=0.8)
    flagged = [i for i in rows if results[i].is_anomaly]
    axis.scatter(
        [when[i] for i in flagged],
        [series.values[i] for i in flagged],
        color="#cb181d",
        zorder=5,
        s=28,
        label=f"flagged ({len(flagged)})",
    )
    axis.margins(x=0.01)


if __name__ == "__main__":
    raise SystemExit(main())
