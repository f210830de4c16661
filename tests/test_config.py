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


# -- settings that used to validate, then break later (issue: lose nothing) ----------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OBSKIT_SHUTDOWN_TIMEOUT_S", "inf"),
        ("OBSKIT_SHUTDOWN_TIMEOUT_S", "0"),
        ("OBSKIT_SCHEDULE_DELAY_S", "inf"),
        ("OBSKIT_SCHEDULE_DELAY_S", "nan"),
        ("OBSKIT_RETRY_MAX_ELAPSED_S", "inf"),
        ("OBSKIT_SAMPLE_RATE", "nan"),
        ("OBSKIT_LEVEL", "loud"),
        ("OBSKIT_MAX_QUEUE_SIZE", "1e9999"),
    ],
)
def test_bad_environment_values_raise_config_error_at_init(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable.removeprefix("OBSKIT_").lower()):
        obskit.init()


def test_a_bad_environment_value_without_init_warns_and_logs_still_flow(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OBSKIT_LEVEL", "loud")
    monkeypatch.setenv("OBSKIT_SCHEDULE_DELAY_S", "inf")
    obskit.get_logger("app").info("still here")
    assert obskit.flush(timeout_s=30)
    out, err = capfd.readouterr()
    assert '"event":"still here"' in out
    assert "OBSKIT_LEVEL" in err and "'loud'" in err
    assert obskit.pipeline_stats()["problems"]["config.environment"] == 1


@pytest.mark.parametrize("timeout_s", [float("inf"), float("nan"), -1.0, 1e300])
def test_shutdown_and_flush_take_any_timeout_without_raising(timeout_s: float) -> None:
    obskit.get_logger("app").info("x")
    assert obskit.flush(timeout_s=timeout_s) in (True, False)
    obskit.shutdown(timeout_s=timeout_s)


def test_an_exporter_class_instead_of_an_instance_names_the_fix() -> None:
    from obskit.exporters import JsonLinesExporter

    with pytest.raises(ConfigError, match=r"exporter class: pass an instance.*Exporter\(\.\.\.\)"):
        obskit.init(exporters=[JsonLinesExporter])


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        ("JsonLinesExporter('x.jsonl', max_bytes='1MB')", "max_bytes"),
        ("JsonLinesExporter('x.jsonl', backup_count=1.5)", "backup_count"),
        ("JsonLinesExporter(None)", "path"),
        ("JsonLinesExporter('x.jsonl', kinds='log')", "kinds"),
        ("SQLiteExporter('x.db', max_age_s=float('inf'))", "max_age_s"),
        ("SQLiteExporter('x.db', max_bytes='256MB')", "max_bytes"),
        ("SQLiteExporter(3)", "path"),
        ("WebhookExporter('http://127.0.0.1:9/', timeout_s='10')", "timeout_s"),
        ("ConsoleExporter(format='fancy')", "format"),
        ("BatchProcessor(InMemoryExporter(), schedule_delay_s=float('inf'))", "schedule_delay_s"),
        ("BatchProcessor(InMemoryExporter(), max_queue_size='10')", "max_queue_size"),
    ],
)
def test_constructor_argument_mistakes_raise_config_error(
    build: str, fragment: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from obskit import exporters
    from obskit.processor import BatchProcessor

    monkeypatch.chdir(str(tmp_path))
    namespace = {**{name: getattr(exporters, name) for name in exporters.__all__},
                 "BatchProcessor": BatchProcessor}  # fmt: skip
    with pytest.raises(ConfigError, match=fragment):
        eval(build, namespace)


def test_alert_engine_observe_takes_labels_as_a_mapping_and_never_raises() -> None:
    from obskit.alerts import AlertEngine

    engine = AlertEngine()
    engine.observe("latency_ms", 1.0, {"route name": "/a"})
    engine.observe("latency_ms", 2.0, 17)  # type: ignore[arg-type]
    engine.increment("requests", 1, {"code": "200"}, timestamp=float("nan"))
    assert obskit.pipeline_stats()["problems"]["metrics.bad_value"] == 2
