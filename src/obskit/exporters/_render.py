"""Turning signals into text: one JSON line, or one human line for the console."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from obskit.scrubbing import safe_repr
from obskit.signals import Signal

__all__ = ["json_line", "pretty_line"]

_stdlib_encode: Callable[[Any], str] = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=True, default=safe_repr
).encode

try:  # ``pip install obskit[fast]``: orjson encodes a record about 5x faster than json
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is absent
    orjson = None  # type: ignore[assignment]


def _orjson_default(obj: Any) -> Any:
    # orjson writes tuples, but not tuple subclasses (obskit's read-only ScrubbedSequence)
    return list(obj) if isinstance(obj, tuple) else safe_repr(obj)


def _orjson_encode(obj: Any) -> str:
    try:
        return orjson.dumps(obj, default=_orjson_default).decode()  # type: ignore[no-any-return]
    except Exception:  # what orjson refuses (ints over 64 bits, say), json still writes
        return _stdlib_encode(obj)


#: The encoder every exporter uses: orjson when installed, else the standard library's.
_encode: Callable[[Any], str] = _orjson_encode if orjson is not None else _stdlib_encode


def json_line(signal: Signal) -> str:
    """The signal's JSON form on one line (``to_dict`` is already JSON-safe after scrubbing)."""
    try:
        return _encode(signal.to_dict())
    except Exception:  # a non-str key or a cycle slipped in: fall back to a lossy but valid line
        return _encode({"signal": signal.kind, "unrenderable": safe_repr(signal, 4096)})


_LEVEL_COLOURS = {
    "debug": "\x1b[2m",
    "info": "\x1b[32m",
    "warning": "\x1b[33m",
    "error": "\x1b[31m",
    "critical": "\x1b[1;31m",
}
_RESET = "\x1b[0m"
_HIDDEN = {"signal", "timestamp", "level", "event", "service", "environment", "exception"}


def pretty_line(signal: Signal, *, colors: bool) -> str:
    """A short human-readable line, in the spirit of structlog's ``ConsoleRenderer``."""
    data = signal.to_dict()
    stamp = data.get("timestamp", "")[11:23]
    kind = signal.kind
    if kind == "log":
        level = data["level"]
        head = _tag(level, level, colors)
        body = data["event"]
        extra = {k: v for k, v in data.items() if k not in _HIDDEN}
        text = f"{stamp} {head} {body}{_pairs(extra, colors)}"
        if data.get("exception"):
            text += "\n" + data["exception"].rstrip("\n")
        return text
    if kind == "error":
        head = _tag(data["level"], "error", colors)
        fields = {"fingerprint": data["fingerprint"][:12], "culprit": data["culprit"]}
        return f"{stamp} {head} captured {data['title']}{_pairs(fields, colors)}"
    if kind == "health":
        status = data["status"]
        colour = {"pass": "info", "warn": "warning"}.get(status, "error")
        checks = _pairs(_check_statuses(data), colors)
        return f"{stamp} {_tag('health', colour, colors)} status={status}{checks}"
    if kind == "alert":
        state = data["state"]
        colour = {"resolved": "info", "pending": "warning"}.get(state, "error")
        pairs = _pairs(
            {"severity": data["severity"], "value": data["value"], **data["labels"]}, colors
        )
        return f"{stamp} {_tag('alert', colour, colors)} {state.upper()} {data['rule']}{pairs}"
    summary = {k: v for k, v in data.items() if k not in _HIDDEN}
    return f"{stamp} {_tag(kind, 'debug', colors)}{_pairs(summary, colors)}"


def _check_statuses(data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, result in data.get("checks", {}).items():
        if isinstance(result, list) and result:
            result = result[0]
        out[name.split(":")[0]] = result.get("status") if isinstance(result, dict) else result
    return out


def _tag(label: str, level: str, colors: bool) -> str:
    text = f"[{label:<8}]"
    return f"{_LEVEL_COLOURS.get(level, '')}{text}{_RESET}" if colors else text


def _pairs(fields: dict[str, Any], colors: bool) -> str:
    if not fields:
        return ""
    key_colour, reset = ("\x1b[36m", _RESET) if colors else ("", "")
    return "  " + " ".join(
        f"{key_colour}{k}{reset}={v if isinstance(v, str) else _encode(v)}"
        for k, v in fields.items()
    )
