"""A plain script instrumented with obskit: run ``python examples/script.py``.

Logs go to the console (pretty on a terminal, JSON lines when piped) and to ``script.jsonl``.
"""

from __future__ import annotations

import random

import obskit
from obskit.exporters import JsonLinesExporter

log = obskit.get_logger("etl")


@obskit.instrument
def extract(batch: int) -> list[int]:
    return [random.randint(0, 100) for _ in range(10 * batch)]


@obskit.instrument
def transform(rows: list[int]) -> list[int]:
    if not rows:
        raise ValueError("empty batch")
    return [r * 2 for r in rows]


def main() -> None:
    obskit.init(service="etl-script", exporters=["console", JsonLinesExporter("script.jsonl")])
    for batch in range(3):
        with obskit.request(f"batch {batch}", batch=batch):
            rows = transform(extract(batch + 1))
            log.info("batch loaded", rows=len(rows))
    with obskit.timer("etl.report"):
        log.business("etl finished", batches=3)
    obskit.shutdown()


if __name__ == "__main__":
    main()
