"""Error events on the console are brief (type, message, in-app frames, crash statement, ids);
the JSON lines exporter keeps every detail."""

from __future__ import annotations

import io
import json
from pathlib import Path

import obskit
from obskit.exporters import ConsoleExporter, JsonLinesExporter


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def deep(depth: int) -> None:
    if depth:
        deep(depth - 1)
    else:
        json.loads("{not json")  # the crash happens inside the standard library


def handler(order_id: str) -> None:
    try:
        deep(15)
    except ValueError as exc:
        raise RuntimeError(f"order {order_id} unreadable") from exc


def capture(tmp_path: Path, console: ConsoleExporter) -> str:
    full = tmp_path / "full.jsonl"
    obskit.init(exporters=[console, JsonLinesExporter(str(full))], install_hooks=False)
    with obskit.request("GET /orders/{id}"):
        try:
            handler("o-17")
        except RuntimeError as exc:
            obskit.capture_exception(exc)
    obskit.shutdown()
    return full.read_text()


def test_piped_console_error_is_one_brief_json_line(tmp_path: Path) -> None:
    stream = io.StringIO()
    full_text = capture(tmp_path, ConsoleExporter(stream))
    [line] = [x for x in stream.getvalue().splitlines() if '"signal":"error"' in x]
    brief = json.loads(line)
    [full] = [json.loads(x) for x in full_text.splitlines() if '"signal":"error"' in x]
    assert len(line) < 1500 < len(json.dumps(full))
    assert brief["title"] == "RuntimeError: order o-17 unreadable"
    assert brief["fingerprint"] == full["fingerprint"] and brief["trace_id"] == full["trace_id"]
    exception = brief["exception"]
    assert exception["type"] == "RuntimeError"
    assert exception["crash"] == 'raise RuntimeError(f"order {order_id} unreadable") from exc'
    assert [f.split(" in ")[1] for f in exception["frames"]] == ["capture", "handler"]
    assert brief["causes"] == [
        "JSONDecodeError: Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)"
    ]
    assert "breadcrumbs" not in brief and "exceptions" not in brief
    # the full event keeps every frame of the cause, library ones included
    assert len(full["exceptions"][1]["frames"]) > 16


def test_terminal_error_shows_frames_and_the_crash_statement(tmp_path: Path) -> None:
    stream = FakeTerminal()
    capture(tmp_path, ConsoleExporter(stream))
    text = stream.getvalue()
    block = text[text.index("captured RuntimeError") :].splitlines()
    assert block[1].endswith("in capture") and block[2].endswith("in handler")
    assert "    at tests/exporters/test_console_errors.py:" in block[2]
    assert block[3] == '    > raise RuntimeError(f"order {order_id} unreadable") from exc'
    assert block[4].startswith("    from JSONDecodeError: Expecting property name")
    assert len(block) == 5
