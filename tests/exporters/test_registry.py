"""Exporters by name: built-ins, and third-party ones found through entry points."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

import obskit
from obskit.exporting import available_exporters

from ..conftest import plugin_exporter


def test_builtin_names_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "env.jsonl"
    monkeypatch.setenv("OBSKIT_EXPORTERS", "jsonl,memory")
    monkeypatch.setenv("OBSKIT_EXPORTER_OPTIONS", json.dumps({"jsonl": {"path": str(path)}}))
    obskit.init()
    obskit.get_logger("env").info("by name")
    obskit.flush()
    assert set(obskit.pipeline_stats()["exporters"]) == {"JsonLinesExporter", "InMemoryExporter"}
    assert "by name" in path.read_text()


def test_third_party_exporter_found_by_entry_point(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = """
            from obskit.exporting import ExportResult
            SEEN = []

            class AcmeExporter:
                def __init__(self, region="eu"):
                    self.region = region

                def export(self, batch):
                    SEEN.extend(batch)
                    return ExportResult.SUCCESS

                def force_flush(self, timeout_s=5.0):
                    return True

                def shutdown(self, timeout_s=5.0):
                    pass
    """
    with plugin_exporter(monkeypatch, tmp_path, "acme", "acme_exporter", source) as module:
        assert "acme" in available_exporters()
        obskit.init(
            service="plugged", exporters=["acme"], exporter_options={"acme": {"region": "us"}}
        )
        obskit.get_logger("p").info("to acme")
        obskit.flush()
        assert [r.event for r in module.SEEN] == ["to acme"]
        assert obskit.pipeline_stats()["exporters"] == {"AcmeExporter": mock.ANY}
        with pytest.raises(
            obskit.ConfigError,
            match=r"does not take 'zone' \(it takes: region; its processor: max_queue_size,",
        ):
            obskit.init(exporters=["acme"], exporter_options={"acme": {"zone": "us"}})
