"""Channels declared in a rule file, next to the rules that use them, as Alertmanager declares
its receivers::

    channels:
      pager:
        type: opsgenie
        api_key_env: OPSGENIE_API_KEY     # secrets come from the environment
        region: eu
        responders: ["team:payments"]
      teams:
        type: teams
        webhook_url_env: TEAMS_WORKFLOW_URL
    rules:
      - {name: high_error_rate, ..., channels: [pager, teams]}

``type`` picks the channel class; every other key is an argument of that class, and a key
ending in ``_env`` names the environment variable holding the argument (``api_key_env`` ->
``api_key``), so the file holds no secret. Every mistake (an unknown type or argument, a
variable that is not set, a value the channel refuses) is listed with the channel's name.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from obskit.alerts.alertmanager import AlertmanagerChannel
from obskit.alerts.channels import (
    EmailChannel,
    LogChannel,
    PagerDutyChannel,
    SlackChannel,
    WebhookChannel,
)
from obskit.alerts.notify import Channel
from obskit.alerts.opsgenie import OpsgenieChannel
from obskit.alerts.teams import TeamsChannel
from obskit.alerts.twilio import TwilioSMSChannel
from obskit.diagnostics import ConfigError

__all__ = ["CHANNEL_TYPES", "declared_channels"]

#: The ``type`` of a declared channel -> its class.
CHANNEL_TYPES: dict[str, Callable[..., Channel]] = {
    "log": LogChannel,
    "webhook": WebhookChannel,
    "slack": SlackChannel,
    "pagerduty": PagerDutyChannel,
    "email": EmailChannel,
    "alertmanager": AlertmanagerChannel,
    "teams": TeamsChannel,
    "twilio": TwilioSMSChannel,
    "opsgenie": OpsgenieChannel,
}
#: File keys that are Python keywords.
_RENAMED = {"from": "from_"}


def declared_channels(
    section: Any,
    problems: list[str],
    *,
    taken: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Channel]:
    """The channels of a ``channels:`` section; each problem is appended to ``problems``."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        problems.append(f"channels must map names to channels, not {type(section).__name__}")
        return {}
    environ = os.environ if environ is None else environ
    out: dict[str, Channel] = {}
    for name, spec in section.items():
        where = f"channel {name!r}"
        if taken is not None and name in taken:
            problems.append(f"{where}: a channel called {name!r} already exists")
            continue
        if not isinstance(spec, Mapping):
            problems.append(f"{where}: expected a mapping with a type, not {type(spec).__name__}")
            continue
        channel = _build(where, spec, environ, problems)
        if channel is not None:
            out[str(name)] = channel
    return out


def _build(
    where: str, spec: Mapping[str, Any], environ: Mapping[str, str], problems: list[str]
) -> Channel | None:
    kind = spec.get("type")
    factory = CHANNEL_TYPES.get(kind) if isinstance(kind, str) else None
    if factory is None:
        problems.append(
            f"{where}: field 'type': {kind!r} is not a channel type{_suggest(kind, CHANNEL_TYPES)}"
            f" (one of {', '.join(CHANNEL_TYPES)})"
        )
        return None
    accepted = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    arguments: dict[str, Any] = {}
    count = len(problems)
    for key, value in spec.items():
        if key == "type":
            continue
        name = _RENAMED.get(str(key), str(key))
        if name.endswith("_env"):
            name = name.removesuffix("_env")
            if not isinstance(value, str) or value not in environ:
                problems.append(
                    f"{where}: field {key!r}: environment variable {value!r} is not set"
                )
                continue
            value = environ[value]
        if name not in accepted:
            problems.append(
                f"{where}: field {key!r}: not an argument of {kind}{_suggest(name, accepted)}"
            )
            continue
        arguments[name] = value
    if len(problems) > count:
        return None
    try:
        return factory(**arguments)
    except (ConfigError, TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None


def _suggest(name: object, options: Any) -> str:
    close = difflib.get_close_matches(str(name), list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
