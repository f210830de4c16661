"""Registering checks: decorator and function, sync and async, and mistakes caught at once."""

from __future__ import annotations

from typing import Any

import pytest

import obskit
from obskit import ConfigError
from obskit.health import CheckResult, HealthRegistry, Status


def test_decorator_registers_sync_and_async_functions_and_returns_them_unchanged() -> None:
    registry = HealthRegistry()

    @registry.check("db", timeout_s=2)
    def db_ok() -> bool:
        return True

    @registry.check("queue", critical=False)
    async def queue_ok() -> CheckResult:
        return CheckResult.warn("deep", observed_value=900, observed_unit="messages")

    assert db_ok() is True
    assert registry.names() == ["db", "queue"]
    report = registry.run()
    assert report.status == "warn"
    assert report.checks["queue"].observed_value == 900


def test_bare_decorator_names_the_check_after_the_function() -> None:
    registry = HealthRegistry()

    @registry.check
    def disk_has_room() -> bool:
        return True

    @registry.check()
    def cache_ok() -> bool:
        return True

    assert registry.names() == ["disk_has_room", "cache_ok"]


def test_register_takes_any_callable_including_objects_with_async_call() -> None:
    class AsyncPing:
        async def __call__(self) -> bool:
            return True

    registry = HealthRegistry()
    registry.register("ping", AsyncPing())
    registry.register("lambda", lambda: True)
    assert registry.run().status is Status.PASS


def test_a_duplicate_name_raises_at_registration_saying_how_to_replace_it() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: True)
    with pytest.raises(ConfigError, match=r"'db' is already registered.*unregister\('db'\)"):
        registry.register("db", lambda: False)
    assert registry.run().status is Status.PASS  # the first one stays


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout_s": 0}, r"timeout_s must be a number of seconds > 0, got 0"),
        ({"timeout_s": -1.5}, r"timeout_s must be .* > 0"),
        ({"timeout_s": "2"}, r"timeout_s must be .* > 0, got '2'"),
        ({"interval_s": 0}, r"interval_s must be .* > 0"),
        ({"failure_threshold": 0}, r"failure_threshold must be a whole number >= 1"),
        ({"success_threshold": 1.5}, r"success_threshold must be a whole number >= 1"),
        ({"cache_ttl_s": -1}, r"cache_ttl_s must be .* >= 0"),
        ({"tags": [1]}, r"tags must be non-empty strings, e.g. tags=\('ready',\)"),
        ({"measurement": "a:b"}, r"measurement must be a non-empty string without ':'"),
    ],
)
def test_a_bad_option_raises_config_error_naming_the_check_and_the_fix(
    options: dict[str, Any], message: str
) -> None:
    registry = HealthRegistry()
    with pytest.raises(ConfigError, match=message) as caught:
        registry.register("db", lambda: True, **options)
    assert "'db'" in str(caught.value)
    assert registry.names() == []
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("name", ["", "  ", "db:primary", None, 3])
def test_a_name_must_be_a_non_empty_string_without_colon(name: Any) -> None:
    with pytest.raises(ConfigError, match="without ':'"):
        HealthRegistry().register(name, lambda: True)


def test_something_not_callable_is_refused() -> None:
    with pytest.raises(ConfigError, match="is not callable"):
        HealthRegistry().register("db", True)  # type: ignore[arg-type]


def test_a_single_string_tag_is_one_tag() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: True, tags="ready")
    registry.register("cron", lambda: False)
    assert list(registry.run(tags="ready").checks) == ["db"]


def test_run_with_tags_selects_checks_having_any_of_them() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: True, tags=("ready", "db"))
    registry.register("cache", lambda: True, tags=["ready"])
    registry.register("deadlock", lambda: True, tags=["live"])
    assert list(registry.run(tags=["db", "live"]).checks) == ["db", "deadlock"]
    assert list(registry.run().checks) == ["db", "cache", "deadlock"]
    assert registry.run(tags=["nothing"]).checks == {}


def test_disabled_checks_are_left_out_until_enabled_again() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: False)
    registry.disable("db")
    assert registry.run().status is Status.PASS
    assert registry.run().checks == {}
    registry.enable("db")
    assert registry.run().status is Status.FAIL


def test_unregister_forgets_the_check_and_frees_its_name() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: False)
    registry.run()
    registry.unregister("db")
    assert registry.names() == []
    registry.register("db", lambda: True)
    assert registry.run().status is Status.PASS
    assert len(registry.history("db")) == 1


def test_an_unknown_name_raises_config_error_listing_the_registered_ones() -> None:
    registry = HealthRegistry()
    registry.register("db", lambda: True)
    for call in (registry.unregister, registry.enable, registry.disable, registry.history):
        with pytest.raises(ConfigError, match=r"no health check named 'dbb'; registered: 'db'"):
            call("dbb")


def test_module_functions_work_on_the_default_registry_and_new_registries_are_independent() -> None:
    @obskit.health.check("db")
    def db_ok() -> bool:
        return True

    other = HealthRegistry()
    other.register("db", lambda: False)  # no clash: a separate registry
    assert obskit.health.names() == ["db"]
    assert obskit.health.run().status is Status.PASS
    assert other.run().status is Status.FAIL
    assert obskit.health.default_registry.names() == ["db"]


def test_obskit_exposes_health_at_top_level() -> None:
    assert obskit.health.HealthRegistry is HealthRegistry
    assert "health" in obskit.__all__
