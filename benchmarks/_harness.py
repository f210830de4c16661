"""Tiny timing helpers shared by the benchmark scripts: best-of-N per-call cost, and a table."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence

__all__ = ["per_call_ns", "print_table"]


def per_call_ns(fn: Callable[[], object], *, number: int, repeat: int = 5) -> float:
    """Best (lowest) mean nanoseconds per call of ``fn`` over ``repeat`` runs of ``number``.

    The minimum is the least noisy estimate on a shared machine: noise only ever adds time.
    """
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter_ns()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / number)
    return best


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table (also valid Markdown)."""
    cells = [list(map(str, header))] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n### {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    return str(value)
