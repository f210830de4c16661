"""Per-exporter batching: each exporter's processor takes its own batch size and delay.

Precedence, per setting: ``exporter_options[name]``, then a global setting the user set, then
the exporter class's ``processor_defaults``, then the global default. ``flush()`` and
``shutdown()`` deliver everything at once, however long the delay.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import obskit
from obskit import _runtime, store
from obskit.config import Settings, load_settings
from obskit.exporters import InMemoryExporter, SQLiteExporter

from .conftest import plugin_exporter

PLUGIN = """
from obskit.exporting import ExportResult

BATCHES = []

class BatchRecorder:
    processor_defaults = {"max_batch_size": 7, "schedule_delay_s": 3600.0}

    def __init__(self, label="x"):
        self.label = label

    def export(self, batch):
        BATCHES.append([signal.kind for signal in batch])
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s=5.0):
        return True

    def shutdown(self, timeout_s=5.0):
        pass
"""


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[list[str]]]:
    """A third-party exporter named ``batches`` (a real entry point) preferring batches of 7
    every hour; yields the batches it received (the kind of each signal)."""
    with plugin_exporter(monkeypatch, tmp_path, "batches", "batch_recorder", PLUGIN) as module:
        yield module.BATCHES
        obskit.shutdown(timeout_s=2)


def log_lines(count: int) -> None:
    log = obskit.get_logger("batching")
    for n in range(count):
        log.info("line", n=n)


def logs_in(batches: list[list[str]]) -> int:
    return sum(batch.count("log") for batch in batches)


def largest(batches: list[list[str]]) -> int:
    return max(len(batch) for batch in batches)


def batching() -> dict[str, tuple[int, float, int]]:
    """(max_batch_size, schedule_delay_s, max_queue_size) of each processor, by name."""
    return {
        p.name: (p.max_batch_size, p.schedule_delay_s, p.max_queue_size)
        for p in _runtime.current().pipeline.processors
    }


def test_the_exporter_class_preference_reaches_its_processor(batches: list[list[str]]) -> None:
    obskit.init(exporters=["batches", "memory"], install_hooks=False)
    assert batching() == {
        "BatchRecorder": (7, 3600.0, 10_000),
        "InMemoryExporter": (512, 0.2, 10_000),  # no preference: the global defaults
    }
    log_lines(30)
    assert obskit.flush(timeout_s=30)  # the hour's delay does not hold flush() back
    assert logs_in(batches) == 30
    assert largest(batches) <= 7


def test_exporter_options_set_one_exporters_processor(batches: list[list[str]]) -> None:
    obskit.init(
        exporters=["batches", "memory"],
        exporter_options={"batches": {"label": "y", "max_batch_size": 4, "max_queue_size": 50}},
        install_hooks=False,
    )
    assert batching() == {
        "BatchRecorder": (4, 3600.0, 50),
        "InMemoryExporter": (512, 0.2, 10_000),
    }
    log_lines(30)
    assert obskit.flush(timeout_s=30)
    assert logs_in(batches) == 30
    assert largest(batches) <= 4


def test_a_global_setting_you_set_replaces_the_class_preference(batches: list[list[str]]) -> None:
    obskit.init(exporters=["batches"], max_batch_size=5, install_hooks=False)
    assert batching() == {"BatchRecorder": (5, 3600.0, 10_000)}
    obskit.init(
        exporters=["batches"],
        max_batch_size=5,
        exporter_options={"batches": {"max_batch_size": 9}},  # ... and exporter_options both
        install_hooks=False,
    )
    assert batching() == {"BatchRecorder": (9, 3600.0, 10_000)}


def test_environment_variables_count_as_set(
    batches: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OBSKIT_EXPORTERS", "batches,memory")
    monkeypatch.setenv("OBSKIT_SCHEDULE_DELAY_S", "0.5")
    monkeypatch.setenv("OBSKIT_EXPORTER_OPTIONS", json.dumps({"batches": {"max_batch_size": 3}}))
    obskit.init(install_hooks=False)
    assert batching() == {
        "BatchRecorder": (3, 0.5, 10_000),
        "InMemoryExporter": (512, 0.5, 10_000),
    }


def test_shutdown_delivers_at_once_whatever_the_delay(batches: list[list[str]]) -> None:
    obskit.init(exporters=["batches"], install_hooks=False)
    log_lines(20)
    obskit.shutdown(timeout_s=30)  # (waiting out the hour would time out and drop them)
    assert logs_in(batches) == 20


def test_local_file_exporters_batch_bigger_and_rarer(tmp_path: Path) -> None:
    db, lines = tmp_path / "o.db", tmp_path / "o.jsonl"
    obskit.init(
        exporters=["sqlite", "jsonl", "memory"],
        exporter_options={"sqlite": {"path": str(db)}, "jsonl": {"path": str(lines)}},
        install_hooks=False,
    )
    assert batching() == {
        "SQLiteExporter": (2048, 1.0, 10_000),
        "JsonLinesExporter": (2048, 1.0, 10_000),
        "InMemoryExporter": (512, 0.2, 10_000),
    }
    log_lines(5000)  # more than two batches
    assert obskit.flush(timeout_s=60)
    with store.open(db) as stored:
        assert stored.level_counts() == {"info": 5000}
    assert len(lines.read_text().splitlines()) == 5000


def test_an_exporter_object_gets_its_class_preference(tmp_path: Path) -> None:
    obskit.init(exporters=[SQLiteExporter(tmp_path / "o.db"), InMemoryExporter()])
    assert batching() == {
        "SQLiteExporter": (2048, 1.0, 10_000),
        "InMemoryExporter": (512, 0.2, 10_000),
    }


def test_a_preference_above_the_queue_size_is_cut_to_it(tmp_path: Path) -> None:
    obskit.init(exporters=[SQLiteExporter(tmp_path / "o.db")], max_queue_size=1000)
    assert batching() == {"SQLiteExporter": (1000, 1.0, 1000)}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"exporter_options": {"sqlite": {"max_batch_size": 0}}},
            r"exporter_options\['sqlite'\]: max_batch_size must be an integer > 0, not 0",
        ),
        (
            {"exporter_options": {"sqlite": {"schedule_delay_s": "1s"}}},
            r"exporter_options\['sqlite'\]: schedule_delay_s must be a finite number > 0",
        ),
        (
            {"exporter_options": {"sqlite": {"max_queue_size": 2.5}}},
            r"exporter_options\['sqlite'\]: max_queue_size must be an integer > 0",
        ),
        (
            {"exporter_options": {"sqlite": {"max_batch_size": 20_000}}},
            r"exporter_options\['sqlite'\]: max_batch_size 20000 is more than max_queue_size "
            r"10000 .* lower max_batch_size or raise max_queue_size",
        ),
        (
            {"max_queue_size": 100, "max_batch_size": 200},
            r"max_batch_size 200 is more than max_queue_size 100",
        ),
    ],
)
def test_a_bad_batching_setting_is_a_config_error_naming_it(
    tmp_path: Path, settings: dict[str, Any], message: str
) -> None:
    options = settings.pop("exporter_options", {"sqlite": {}})
    options["sqlite"]["path"] = str(tmp_path / "o.db")
    with pytest.raises(obskit.ConfigError, match=message):
        obskit.init(exporters=["sqlite"], exporter_options=options, **settings)


def test_a_bad_setting_from_the_environment_is_refused_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"jsonl": {"path": str(tmp_path / "o.jsonl"), "schedule_delay_s": -1}}
    monkeypatch.setenv("OBSKIT_EXPORTER_OPTIONS", json.dumps(options))
    with pytest.raises(obskit.ConfigError, match=r"exporter_options\['jsonl'\]: schedule_delay_s"):
        obskit.init(exporters=["jsonl"])


def test_a_bad_class_preference_is_a_config_error_naming_the_class() -> None:
    class Careless(InMemoryExporter):
        processor_defaults = {"max_batch_size": -1}

    with pytest.raises(obskit.ConfigError, match=r"Careless.processor_defaults: max_batch_size"):
        obskit.init(exporters=[Careless()])


def test_batching_at_odds_in_the_environment_never_raises_without_init(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBSKIT_MAX_BATCH_SIZE", "20000")  # above the default queue size
    obskit.get_logger("early").info("logged before any init")
    assert obskit.flush(timeout_s=10)
    assert "logged before any init" in capsys.readouterr().out
    assert obskit.pipeline_stats()["problems"] == {"config.environment": 1}


SETTING_VALUES = {
    "max_queue_size": st.integers(5000, 20_000),
    "max_batch_size": st.integers(1, 4096),
    "schedule_delay_s": st.floats(0.01, 60.0),
}


def some_of_the_settings() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=SETTING_VALUES)


@given(
    globals_set=some_of_the_settings(),
    preferred=some_of_the_settings(),
    own=some_of_the_settings(),
)
@example(globals_set={"max_batch_size": 5}, preferred={"max_batch_size": 7}, own={})
@example(
    globals_set={"schedule_delay_s": 0.5},
    preferred={"schedule_delay_s": 3.0, "max_queue_size": 6000},
    own={"schedule_delay_s": 9.0},
)
def test_each_setting_comes_from_the_first_place_that_sets_it(
    globals_set: dict[str, Any], preferred: dict[str, Any], own: dict[str, Any]
) -> None:
    exporter_class = type("Prefers", (InMemoryExporter,), {"processor_defaults": preferred})
    settings = load_settings(
        exporters=["memory"], exporter_options={"memory": dict(own)}, **globals_set
    )
    chosen = _runtime.processor_settings(settings, "memory", exporter_class())
    for name in SETTING_VALUES:
        default = Settings.model_fields[name].default
        expected = own.get(name, globals_set.get(name, preferred.get(name, default)))
        if name == "max_batch_size" and name not in own and name not in globals_set:
            expected = min(expected, chosen["max_queue_size"])  # a preference is cut to fit
        assert chosen[name] == expected
