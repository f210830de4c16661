"""Safe HTML building: every value formatted into markup is escaped unless it already is HTML.

The markupsafe model in a few lines (the dashboard has no template engine dependency):

>>> Html("<td>{}</td>").format("<script>")
'<td>&lt;script&gt;</td>'
>>> Html("<b>{}</b>").format(Html("<i>ok</i>"))
'<b><i>ok</i></b>'
>>> join(["<", Html("<br>")])
'&lt;<br>'
"""

from __future__ import annotations

import html
import string
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "Html",
    "ago",
    "clock_time",
    "duration",
    "escape",
    "full_time",
    "in_unit",
    "join",
    "number",
    "size",
    "url",
]


class Html(str):
    """Text that is already HTML, so it is not escaped again."""

    __slots__ = ()

    def format(self, *args: Any, **kwargs: Any) -> Html:  # type: ignore[override]
        """Format with every argument escaped (an :class:`Html` argument is kept as is)."""
        return Html(_FORMATTER.vformat(self, args, kwargs))


class _Escaping(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        text = format(value, format_spec)
        return text if isinstance(value, Html) else html.escape(text, quote=True)


_FORMATTER = _Escaping()


def escape(value: Any) -> Html:
    """``value`` as HTML text (unchanged when it is :class:`Html` already)."""
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def join(parts: Iterable[Any], separator: str = "") -> Html:
    """Concatenate parts, escaping those that are not HTML yet."""
    return Html(separator.join(escape(part) for part in parts))


def url(path: str, params: Mapping[str, Any] | None = None) -> str:
    """``path`` with the query ``params`` whose values are neither ``None`` nor empty."""
    kept = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
    return f"{path}?{urlencode(kept)}" if kept else path


def clock_time(ts: float | None, *, span_s: float = 0.0) -> str:
    """A local time for ``ts``; with the date when the view spans a day or more."""
    if ts is None:
        return "-"
    fmt = "%b %d %H:%M" if span_s >= 86400 else "%H:%M:%S"
    return time.strftime(fmt, time.localtime(ts))


def full_time(ts: float | None) -> str:
    """Date and time to the millisecond (tooltips, event pages)."""
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) + f".{int(ts % 1 * 1000):03d}"


def ago(ts: float | None, now: float) -> str:
    """How long before ``now``: ``12s ago``, ``5m ago``, ``3h ago``, ``2d ago``."""
    if ts is None:
        return "-"
    delta = max(0.0, now - ts)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "m")):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return f"{int(delta)}s ago"


def duration(ms: float | None) -> str:
    """A duration given in milliseconds, in the unit that reads best."""
    if ms is None:
        return "-"
    if ms == 0:
        return "0"
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    if ms >= 10:
        return f"{ms:.0f} ms"
    if ms >= 1:
        return f"{ms:.1f} ms"
    return f"{ms * 1000:.0f} µs"


def in_unit(unit: str) -> Callable[[float], str]:
    """How to show a value of ``unit`` (UCUM, as OpenTelemetry writes it: ``s``, ``ms``, ``By``)."""
    if unit == "s":
        return lambda value: duration(value * 1000.0)
    if unit == "ms":
        return duration
    if unit == "By":
        return size
    return number


def size(value: float | None) -> str:
    """A number of bytes in KiB, MiB, GiB."""
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def number(value: float | None, digits: int = 3) -> str:
    """A number with about ``digits`` significant digits and k/M suffixes."""
    if value is None:
        return "-"
    magnitude = abs(value)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if magnitude >= size * 10:
            return f"{value / size:.{max(0, digits - 2)}f}{suffix}".replace(".0" + suffix, suffix)
    if magnitude >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.{digits}g}"
