"""ConsoleExporter: coloured human lines on a terminal, JSON lines when piped."""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from typing import IO, Literal

from obskit import diagnostics
from obskit.diagnostics import ConfigError, require_kinds
from obskit.exporters._render import console_json_line, pretty_line
from obskit.exporting import ExportResult
from obskit.signals import Signal

__all__ = ["ConsoleExporter"]

#: Spans and raw metric points are too chatty for a console by default.
DEFAULT_CONSOLE_KINDS = frozenset({"log", "error", "health", "alert", "anomaly"})


class ConsoleExporter:
    """Writes signals to stdout: pretty and coloured on a TTY, JSON lines otherwise.

    Error events are brief in both forms (type, message, in-app frames, the crash statement,
    ids); the JSON lines, SQLite and OTLP exporters keep every detail.

    ``stream`` defaults to whatever ``sys.stdout`` is at export time, so redirection works.
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        format: Literal["auto", "pretty", "json"] = "auto",
        kinds: Collection[str] = DEFAULT_CONSOLE_KINDS,
    ) -> None:
        if format not in ("auto", "pretty", "json"):
            raise ConfigError(f"ConsoleExporter: format must be 'auto', 'pretty' or 'json', "
                              f"not {format!r}")  # fmt: skip
        if stream is not None and not callable(getattr(stream, "write", None)):
            raise ConfigError(f"ConsoleExporter: stream must have a write() method, not {stream!r}")
        self.stream = stream
        self._broken = False
        self.format = format
        self.kinds = require_kinds("ConsoleExporter", kinds) or frozenset()

    def export(self, batch: Sequence[Signal]) -> ExportResult:
        stream = self.stream or sys.stdout
        if stream is None:
            return ExportResult.SUCCESS
        tty = _is_tty(stream)
        pretty = self.format == "pretty" or (self.format == "auto" and tty)
        lines = [
            pretty_line(s, colors=tty) if pretty else console_json_line(s)
            for s in batch
            if s.kind in self.kinds
        ]
        if lines and not self._broken:
            try:
                stream.write("\n".join(lines) + "\n")
                stream.flush()
            except BrokenPipeError:  # `app | head -1`: the reader is gone, for good
                self._broken = True
                diagnostics.report(
                    "console.broken_pipe",
                    "ConsoleExporter: stdout was closed by its reader; console output stops",
                    count=len(lines),
                )
            except (OSError, ValueError) as exc:  # closed or failing stream: drop, counted
                diagnostics.report(
                    "console.write", f"ConsoleExporter: cannot write: {exc!r}", count=len(lines)
                )
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        return None


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:
        return False
