"""Settings: sources, priorities, and errors that say what to change."""

from __future__ import annotations

import pytest

import obskit
from obskit.config import ConfigError, load_settings, parse_resource_attributes


def test_unknown_level_names_setting_and_allowed_values() -> None:
    with pytest.raises(ConfigError) as caught:
        obskit.init(level="verbose")
    message = str(caught.value)
    assert "level" in message and "'verbose'" in message
    for allowed in ("debug", "info", "warning", "error", "critical"):
        assert allowed in message


def test_negative_queue_size_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_queue_size"):
        obskit.init(max_queue_size=-1)


def test_unknown_exporter_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        obskit.init(exporters=["consle"])
    assert "consle" in str(caught.value)
    assert "console" in str(caught.value) and "jsonl" in str(caught.value)


def test_non_exporter_object_is_refused() -> None:
    with pytest.raises(ConfigError, match="not an exporter"):
        obskit.init(exporters=[object()])


def test_misspelt_setting_gets_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'service'"):
        obskit.init(servce="shop")


def test_env_is_read_and_kwargs_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSKIT_LEVEL", "WARNING")
    monkeypatch.setenv("OBSKIT_EXPORTERS", "console, jsonl")
    settings = load_settings()
    assert settings.level == "warning"
    assert settings.exporters == ["console", "jsonl"]
    assert load_settings(level="debug").level == "debug"


def test_bad_env_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSKIT_SAMPLE_RATE", "2")
    with pytest.raises(ConfigError, match="OBSKIT_SAMPLE_RATE"):
        load_settings()


def test_otel_variables_are_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "otel-shop")
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,service.version=1.2%2E3"
    )
    settings = load_settings()
    assert (settings.service, settings.environment, settings.release) == (
        "otel-shop",
        "staging",
        "1.2.3",
    )
    monkeypatch.setenv("OBSKIT_SERVICE", "obskit-shop")
    assert load_settings().service == "obskit-shop"
    assert load_settings(service="kw-shop").service == "kw-shop"


def test_resource_attributes_parser_ignores_garbage() -> None:
    assert parse_resource_attributes("a=1,,=x,b,c= 2 ") == {"a": "1", "c": "2"}


def test_init_can_be_called_again_and_flushes_the_old_setup() -> None:
    from obskit.exporters import InMemoryExporter

    first, second = InMemoryExporter(), InMemoryExporter()
    obskit.init(exporters=[first], schedule_delay_s=30)
    obskit.get_logger("t").info("to first")
    obskit.init(exporters=[second])
    obskit.get_logger("t").info("to second")
    obskit.flush()
    assert [r.event for r in first.logs] == ["to first"]
    assert [r.event for r in second.logs] == ["to second"]
    assert first.shut_down


def test_an_exporter_reused_by_the_next_init_is_not_shut_down() -> None:
    from obskit.exporters import InMemoryExporter

    shared = InMemoryExporter()
    obskit.init(exporters=[shared])
    obskit.init(exporters=[shared], service="again")
    obskit.get_logger("t").info("still delivered")
    obskit.flush()
    assert not shared.shut_down
    assert [r.service for r in shared.logs] == ["again"]
