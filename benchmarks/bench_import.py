"""What ``import obskit`` costs, beside the peers, each in a fresh interpreter, in one run.

Run: ``python benchmarks/bench_import.py`` (``--quick`` for fewer rounds). Every round starts
one fresh interpreter per module, in alternating order, and times only the import statement
inside it (``time.perf_counter`` around ``import X``), so interpreter start-up, which dwarfs
some of these, is not counted. The table gives the median and the best round, and the ratio
of medians to ``import structlog``.

``import obskit`` does no work: the rest of obskit loads when first used. The last rows show
what that first use costs (``obskit.get_logger``, and ``obskit.init`` with the console
exporter), so the deferred cost is on the table too.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import print_table

#: Row label -> statement timed in a fresh interpreter (after any set-up in SETUP).
STATEMENTS = {
    "import obskit": "import obskit",
    "import structlog": "import structlog",
    "import logging (stdlib)": "import logging",
    "import loguru": "import loguru",
    "import sentry_sdk": "import sentry_sdk",
    "import obskit; obskit.get_logger()": "import obskit; obskit.get_logger('app')",
    "import obskit; obskit.init()": "import obskit; obskit.init(install_hooks=False)",
}

_PROGRAM = """
import time
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""


def time_once(statement: str) -> float | None:
    """Seconds the statement takes in a fresh interpreter; ``None`` if it cannot run."""
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(statement=statement)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        return None
    return float(done.stdout.strip().splitlines()[-1])


def measure(rounds: int) -> dict[str, list[float]]:
    """Every statement once per round, the order reversed every other round."""
    samples: dict[str, list[float]] = {label: [] for label in STATEMENTS}
    skipped: set[str] = set()
    labels = list(STATEMENTS)
    for index in range(rounds):
        for label in labels if index % 2 == 0 else reversed(labels):
            if label in skipped:
                continue
            seconds = time_once(STATEMENTS[label])
            if seconds is None:  # a peer that is not installed
                skipped.add(label)
            else:
                samples[label].append(seconds)
    return {label: values for label, values in samples.items() if label not in skipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 15")
    args = parser.parse_args()
    samples = measure(3 if args.quick else 15)
    structlog_median = statistics.median(samples["import structlog"])
    rows = [
        (
            label,
            statistics.median(values) * 1000,
            min(values) * 1000,
            statistics.median(values) / structlog_median,
        )
        for label, values in samples.items()
    ]
    print_table(
        f"Import time in a fresh interpreter ({len(samples['import obskit'])} rounds, "
        f"Python {sys.version_info.major}.{sys.version_info.minor})",
        ["statement", "median ms", "best ms", "x import structlog (median)"],
        rows,
    )


if __name__ == "__main__":
    main()
