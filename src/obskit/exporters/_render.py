"""Turning signals into text: one JSON line, or one human line for the console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from obskit._codec import dumps_sanitised
from obskit.scrubbing import safe_repr
from obskit.signals import Signal

__all__ = ["brief_error", "console_json_line", "json_line", "pretty_line"]

#: The encoder every exporter uses (signals are sanitised by then): orjson when installed.
_encode: Callable[[Any], str] = dumps_sanitised


def json_line(signal: Signal) -> str:
    """The signal's JSON form on one line (``to_dict`` is already JSON-safe after scrubbing)."""
    try:
        return _encode(signal.to_dict())
    except Exception:  # a non-str key or a cycle slipped in: fall back to a lossy but valid line
        return _encode({"signal": signal.kind, "unrenderable": safe_repr(signal, 4096)})


def console_json_line(signal: Signal) -> str:
    """:func:`json_line`, except an error event is brief (see :func:`brief_error`)."""
    if signal.kind != "error":
        return json_line(signal)
    try:
        return _encode(brief_error(signal.to_dict()))
    except Exception:
        return json_line(signal)


def brief_error(data: dict[str, Any]) -> dict[str, Any]:
    """An error event as a console shows it: what, where in the app, and the crash statement.

    Type and message of the exception that escaped, its in-app frames (``file:line in
    function``; all frames when none is in-app, the last five), the statement at the crash
    site, the causes' ``type: message``, and the ids that find the full event (fingerprint,
    trace, request) in the JSON lines, SQLite or OTLP exporters, which keep every detail.

    >>> brief_error({"signal": "error", "timestamp": "t", "level": "error", "title": "E: x",
    ...     "culprit": "app in f", "fingerprint": "ab", "context": {}, "exceptions": [
    ...     {"type": "E", "value": "x", "frames": [
    ...         {"filename": "lib.py", "lineno": 3, "function": "g", "in_app": False},
    ...         {"filename": "app.py", "lineno": 9, "function": "f", "in_app": True,
    ...          "context_line": "  raise E('x')"}]}]})["exception"]
    {'type': 'E', 'value': 'x', 'frames': ['app.py:9 in f'], 'crash': "raise E('x')"}
    """
    out = {key: data.get(key) for key in ("signal", "timestamp", "level", "title", "culprit")}
    out["fingerprint"] = data.get("fingerprint")
    chain = data.get("exceptions") or []
    if chain:
        escaped = chain[0]
        frames = list(escaped.get("frames") or [])
        in_app = [f for f in frames if f.get("in_app")] or frames[-5:]
        exception: dict[str, Any] = {
            "type": escaped.get("type"),
            "value": escaped.get("value"),
            "frames": [
                f"{f.get('filename', '?')}:{f.get('lineno', '?')} in {f.get('function', '?')}"
                for f in in_app
            ],
        }
        crash = (in_app[-1].get("context_line") or "").strip() if in_app else ""
        if crash:
            exception["crash"] = crash
        out["exception"] = exception
        causes = [f"{c.get('type')}: {c.get('value')}" for c in chain[1:]]
        if causes:
            out["causes"] = causes
    elif data.get("message") and data.get("message") != data.get("title"):
        out["message"] = data.get("message")
    context = data.get("context") or {}
    for key in ("request_id", "http.route"):
        if context.get(key) is not None:
            out[key] = context[key]
    if data.get("trace_id"):
        out["trace_id"] = data["trace_id"]
    return out


_LEVEL_COLOURS = {
    "trace": "\x1b[2m",
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
        body = _safe(str(data["event"]))
        extra = {k: v for k, v in data.items() if k not in _HIDDEN}
        text = f"{stamp} {head} {body}{_pairs(extra, colors)}"
        if data.get("exception"):
            text += "\n" + _safe(data["exception"].rstrip("\n"), _KEEP_NEWLINES)
        return text
    if kind == "error":
        head = _tag(data["level"], "error", colors)
        brief = brief_error(data)
        fields = {"fingerprint": data["fingerprint"][:12], "culprit": data["culprit"]}
        for key in ("request_id", "http.route", "trace_id"):
            if key in brief:
                fields[key] = brief[key]
        text = f"{stamp} {head} captured {_safe(data['title'])}{_pairs(fields, colors)}"
        exception = brief.get("exception")
        if exception:
            text += "".join(f"\n    at {_safe(frame)}" for frame in exception["frames"])
            if exception.get("crash"):
                text += f"\n    > {_safe(exception['crash'])}"
        for cause in brief.get("causes", ()):
            text += f"\n    from {_safe(cause)}"
        return text
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
        rule = _safe(data["rule"])
        return f"{stamp} {_tag('alert', colour, colors)} {state.upper()} {rule}{pairs}"
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
        f"{key_colour}{_safe(str(k))}{reset}={_safe(v) if isinstance(v, str) else _encode(v)}"
        for k, v in fields.items()
    )


# Control characters in logged text would forge lines or drive the terminal (ANSI escapes):
# shown escaped, as repr() would. Only obskit's own colours and line breaks reach the console.
_ESCAPES = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})
_KEEP_NEWLINES = {code: text for code, text in _ESCAPES.items() if code != 0x0A}


def _safe(text: str, table: dict[int, str] = _ESCAPES) -> str:
    """``text`` with control characters escaped (``table`` says which, and how).

    >>> _safe("paid\\n12:00:00.000 [info    ] forged \\x1b[2J")
    'paid\\\\n12:00:00.000 [info    ] forged \\\\x1b[2J'
    """
    return text if text.isprintable() else text.translate(table)
