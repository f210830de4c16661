"""ConsoleExporter: pretty and coloured on a terminal, JSON lines when piped."""

from __future__ import annotations

import io
import json
import time

from obskit.exporters import ConsoleExporter
from obskit.signals import Alert, LogRecord, SpanRecord


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def log(event: str = "hello", **fields: object) -> LogRecord:
    return LogRecord(timestamp=time.time(), level="warning", event=event, fields=dict(fields))


def test_pipe_gets_json_lines() -> None:
    stream = io.StringIO()
    ConsoleExporter(stream).export([log(n=1), log("second")])
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["hello", "second"]


def test_terminal_gets_coloured_pretty_lines() -> None:
    stream = FakeTerminal()
    ConsoleExporter(stream).export([log(user="ann")])
    line = stream.getvalue()
    assert "\x1b[33m" in line and "hello" in line and "user" in line and "ann" in line
    assert not line.lstrip().startswith("{")


def test_format_can_be_forced() -> None:
    stream = FakeTerminal()
    ConsoleExporter(stream, format="json").export([log()])
    assert json.loads(stream.getvalue())["event"] == "hello"
    piped = io.StringIO()
    ConsoleExporter(piped, format="pretty").export([log()])
    assert "[warning ]" in piped.getvalue() and "\x1b[" not in piped.getvalue()


def test_spans_are_not_printed_by_default_but_alerts_are() -> None:
    stream = io.StringIO()
    span = SpanRecord(
        timestamp=0,
        name="s",
        trace_id="0" * 32,
        span_id="1" * 16,
        parent_span_id=None,
        duration_ms=1.0,
    )
    alert = Alert(timestamp=0, rule="high_errors", state="firing", severity="critical", value=0.3)
    ConsoleExporter(stream).export([span, alert])
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["rule"] == "high_errors"


def test_both_json_encoders_write_the_same_record() -> None:
    from obskit import _codec
    from obskit.scrubbing import Scrubber

    frozen = Scrubber().freeze({"trail": [{"step": 1}, {"step": 2}]})  # tuple and dict subclasses
    record = log("héllo", n=2**70, ratio=0.5, nested={"a": [1, "b"]}, frozen=frozen)
    stdlib = json.loads(_codec._stdlib_dumps(record.to_dict()))
    fast = json.loads(_codec._orjson_dumps(record.to_dict()))  # falls back if orjson is absent
    assert stdlib == fast
    assert stdlib["n"] == 2**70 and stdlib["event"] == "héllo"
    assert fast["frozen"] == {"trail": [{"step": 1}, {"step": 2}]}


# -- bounds: a closed pipe, forged lines ------------------------------------------------------


def test_a_script_piped_into_head_ends_at_once() -> None:
    import subprocess
    import sys
    import textwrap

    script = """
        import sys
        import obskit
        obskit.init(exporters=["console"], install_hooks=False)
        log = obskit.get_logger("app")
        for n in range(20000):
            log.info("line", n=n)
        obskit.flush(timeout_s=30)
        stats = obskit.pipeline_stats()
        print("retried", stats["exporters"]["ConsoleExporter"]["retried"], file=sys.stderr)
    """
    pipeline = subprocess.run(
        f"{sys.executable} -c '{textwrap.dedent(script)}' | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pipeline.stdout.count("\n") == 1
    assert "retrying" not in pipeline.stderr
    # output stops at the closed pipe: no batch is retried into it (that was about 6 s of
    # BrokenPipe retries)
    assert "closed by its reader" in pipeline.stderr and "retried 0\n" in pipeline.stderr


def test_a_broken_pipe_stops_console_output_and_is_counted() -> None:
    import obskit

    class Closed(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    exporter = ConsoleExporter(Closed(), format="json")
    assert exporter.export([log("x")]).value == "success"
    assert exporter.export([log("y")]).value == "success"
    assert obskit.pipeline_stats()["problems"]["console.broken_pipe"] == 1


def test_pretty_lines_escape_control_characters_so_nothing_is_forged() -> None:
    stream = io.StringIO()
    forged = "paid\n12:00:00.000 [error   ] forged line\x1b[2J\r"
    rec = LogRecord(time.time(), "info", forged, fields={"note": "a\nb", "x\x1b": 1})
    ConsoleExporter(stream, format="pretty").export([rec])
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\x1b" not in text and "\r" not in text
    assert "paid\\n12:00:00.000 [error   ] forged line\\x1b[2J\\r" in text
    assert "note=a\\nb" in text
