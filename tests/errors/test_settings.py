"""The errors settings: from keywords and OBSKIT_* variables, and clear errors when wrong."""

from __future__ import annotations

import json

import pytest

import obskit
from obskit.config import ConfigError, load_settings
from obskit.errors.capture import ErrorCapture


def test_defaults() -> None:
    settings = load_settings()
    assert settings.install_hooks is True and settings.include_locals is False
    assert settings.max_breadcrumbs == 100 and settings.max_events_per_group_per_minute == 100
    assert settings.before_send is None and settings.ignore_errors == []


def test_errors_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSKIT_IGNORE_ERRORS", "KeyError, myapp.errors.Benign")
    monkeypatch.setenv("OBSKIT_IN_APP_INCLUDE", "vendored_lib")
    monkeypatch.setenv("OBSKIT_IN_APP_EXCLUDE", "myapp.generated,myapp.vendor")
    monkeypatch.setenv("OBSKIT_MAX_BREADCRUMBS", "10")
    monkeypatch.setenv("OBSKIT_INSTALL_HOOKS", "false")
    monkeypatch.setenv("OBSKIT_BEFORE_SEND", "json:dumps")
    settings = load_settings()
    assert settings.ignore_errors == ["KeyError", "myapp.errors.Benign"]
    assert settings.in_app_include == ["vendored_lib"]
    assert settings.in_app_exclude == ["myapp.generated", "myapp.vendor"]
    assert settings.max_breadcrumbs == 10 and settings.install_hooks is False
    assert settings.before_send is json.dumps


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("ignore_errors", [42], "not an exception class"),
        ("ignore_errors", [dict], "not an exception class"),
        ("in_app_include", ["not a module!"], "not a module or package name"),
        ("before_send", 5, "callable"),
        ("before_breadcrumb", "no.such.module:hook", "cannot import"),
        ("max_breadcrumbs", -1, "greater than or equal to 0"),
        ("max_events_per_group_per_minute", 0, "greater than 0"),
    ],
)
def test_misconfiguration_raises_a_config_error_that_names_the_setting(
    setting: str, value: object, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        obskit.init(**{setting: value})
    assert setting in str(caught.value) and message in str(caught.value)


def test_in_app_rules_from_settings_reach_the_frame_cache() -> None:
    obskit.init(exporters=[], in_app_include=["pkg"], in_app_exclude=["app.vendor"])
    state: ErrorCapture = obskit.errors.current()
    assert state.frames.in_app_include == ("pkg",)
    assert state.frames.in_app_exclude == ("app.vendor",)
