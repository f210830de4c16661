"""The ``trace`` level below debug, and ``log_sample_rate`` per level (errors never sampled,
what is sampled out counted)."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest

import obskit
from obskit import logging as obskit_logging
from obskit.exporters import InMemoryExporter

from ..conftest import RecordingSink


def setup(**settings: Any) -> InMemoryExporter:
    memory = InMemoryExporter()
    obskit.init(exporters=[memory], install_hooks=False, **settings)
    return memory


def test_trace_records_only_at_level_trace() -> None:
    log = obskit.get_logger("wire")
    memory = setup(level="debug")
    log.trace("frame bytes", size=3)
    log.debug("decoded")
    obskit.flush(30)
    assert [r.level for r in memory.logs] == ["debug"]
    memory = setup(level="trace")
    log.trace("frame bytes", size=3)
    log.log("trace", "by name")
    log.log(5, "by number")
    obskit.flush(30)
    assert [(r.level, r.event) for r in memory.logs] == [
        ("trace", "frame bytes"),
        ("trace", "by name"),
        ("trace", "by number"),
    ]
    assert log.is_enabled_for("trace")


def test_stdlib_records_below_debug_are_trace() -> None:
    memory = setup(level="trace", capture_stdlib_logging=True)
    logging.getLogger("lib").log(5, "very low")
    obskit.flush(30)
    assert [(r.level, r.event) for r in memory.logs] == [("trace", "very low")]
    obskit.shutdown()


def test_sampling_keeps_a_share_per_level_and_counts_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws = iter([0.05, 0.5, 0.95, 0.2] * 50)
    monkeypatch.setattr(obskit_logging.random, "random", lambda: next(draws))
    before = dict(obskit.pipeline_stats()["logs"]["sampled_out"])
    memory = setup(level="debug", log_sample_rate={"debug": 0.1, "info": 0.5})
    log = obskit.get_logger("batch")
    for _ in range(4):
        log.debug("row")  # kept only when the draw is below 0.1: once in four
    for _ in range(4):
        log.info("step")  # kept below 0.5: twice in four
    for _ in range(3):
        log.warning("odd")  # not sampled: no draw
        log.error("bad")  # never sampled
    obskit.flush(30)
    counts = {
        level: sum(1 for r in memory.logs if r.level == level)
        for level in ("debug", "info", "warning", "error")
    }
    assert counts == {"debug": 1, "info": 2, "warning": 3, "error": 3}
    after = obskit.pipeline_stats()["logs"]["sampled_out"]
    assert after["debug"] - before.get("debug", 0) == 3
    assert after["info"] - before.get("info", 0) == 2
    assert "error" not in after and "warning" not in after


def test_records_bridged_from_stdlib_logging_are_sampled_and_counted_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    draws = iter([0.05, 0.5, 0.95, 0.2] * 50)
    monkeypatch.setattr(obskit_logging.random, "random", lambda: next(draws))
    before = dict(obskit.pipeline_stats()["logs"]["sampled_out"])
    memory = setup(
        level="debug",
        capture_stdlib_logging=True,
        log_sample_rate={"debug": 0.1, "info": 0.5},
    )
    library = logging.getLogger("some.library")
    for _ in range(4):
        library.debug("row")  # kept only when the draw is below 0.1: once in four
    for _ in range(4):
        library.info("step")  # kept below 0.5: twice in four
    for _ in range(3):
        library.warning("odd")  # not sampled: no draw
        library.error("bad")  # never sampled
    try:
        raise OSError("reset by peer")
    except OSError:
        library.exception("failed")  # an error with its exception: never sampled either
    obskit.flush(30)
    counts = {
        level: sum(1 for r in memory.logs if r.level == level and r.logger == "some.library")
        for level in ("debug", "info", "warning", "error")
    }
    assert counts == {"debug": 1, "info": 2, "warning": 3, "error": 4}
    after = obskit.pipeline_stats()["logs"]["sampled_out"]
    assert after["debug"] - before.get("debug", 0) == 3
    assert after["info"] - before.get("info", 0) == 2
    assert "error" not in after and "warning" not in after


def test_sampled_out_records_are_a_metric_too(sink: RecordingSink) -> None:
    setup(log_sample_rate={"info": 0.0})
    obskit.get_logger().info("gone")
    assert ("increment", "obskit.log.sampled_out", 1, {"level": "info"}) in sink.points


def test_sampling_is_statistically_the_rate() -> None:
    random.seed(7)
    memory = setup(log_sample_rate={"info": 0.25}, max_queue_size=100_000)
    log = obskit.get_logger()
    for _ in range(4000):
        log.info("tick")
    obskit.flush(10)
    assert 800 < len(memory.logs) < 1200


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"error": 0.5}, "never sampled"),
        ({"critical": 0.1}, "never sampled"),
        ({"verbose": 0.5}, "unknown level"),
        ({"info": 1.5}, "between 0 and 1"),
    ],
)
def test_bad_sample_rates_are_config_errors(rates: dict[str, float], message: str) -> None:
    with pytest.raises(obskit.ConfigError, match=message):
        obskit.init(log_sample_rate=rates)
