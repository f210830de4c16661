"""Server-rendered SVG charts: time series with bands and markers, sparklines, state strips.

Colours come from the stylesheet (classes ``tone-0`` ... ``tone-7`` and state names), so the
charts follow the light or dark theme. Every chart has a text alternative (``aria-label``) and
native tooltips (``<title>``) per time slot.

>>> chart = line_chart([Series("p95", [(0.0, 1.0), (60.0, 3.0)])], start=0.0, end=60.0)
>>> chart.startswith("<svg") and "polyline" in chart
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from obskit.dashboard._html import Html, clock_time, join, number

__all__ = ["Marker", "Segment", "Series", "line_chart", "sparkline", "state_class", "timeline"]

_WIDTH = 720.0
_LEFT = 52.0
_RIGHT = 8.0
_TOP = 8.0
_BOTTOM = 20.0


@dataclass(frozen=True)
class Series:
    """One line (or bars) of a chart: ``(timestamp, value or None)`` points, oldest first."""

    label: str
    points: Sequence[tuple[float, float | None]]
    tone: int = 0
    bars: bool = False


@dataclass(frozen=True)
class Marker:
    """A flagged point (an anomaly): its value and, when known, the expected band."""

    timestamp: float
    value: float
    title: str
    lower: float | None = None
    upper: float | None = None
    expected: float | None = None


@dataclass(frozen=True)
class Segment:
    """A stretch of time in one state (health status, alert state)."""

    start: float
    end: float
    state: str
    title: str = ""


@dataclass
class _Scale:
    start: float
    end: float
    low: float
    high: float
    height: float
    width: float = _WIDTH
    plot_w: float = field(init=False)
    plot_h: float = field(init=False)

    def __post_init__(self) -> None:
        self.plot_w = self.width - _LEFT - _RIGHT
        self.plot_h = self.height - _TOP - _BOTTOM

    def x(self, ts: float) -> float:
        span = (self.end - self.start) or 1.0
        return _LEFT + (ts - self.start) / span * self.plot_w

    def y(self, value: float) -> float:
        span = (self.high - self.low) or 1.0
        return _TOP + (1.0 - (value - self.low) / span) * self.plot_h


def line_chart(
    series: Sequence[Series],
    *,
    start: float,
    end: float,
    height: float = 170.0,
    markers: Sequence[Marker] = (),
    fmt: Callable[[float], str] = number,
    label: str = "chart",
    step_s: float | None = None,
    width: float = _WIDTH,
) -> Html:
    """A time-series chart over ``[start, end]``; ``markers`` are drawn as red dots with bands."""
    values = [v for s in series for _, v in s.points if v is not None and math.isfinite(v)]
    for marker in markers:
        values += [v for v in (marker.value, marker.upper) if v is not None]
    low = min([0.0, *values])  # a band reaching below the data is cut at the axis
    high = _nice_ceiling(max(values)) if values else 1.0
    if high <= low:
        high = low + 1.0
    scale = _Scale(start, end, low, high, height, width)
    parts: list[Html] = [_grid(scale, fmt)]
    for item in series:
        parts.append(_bars(item, scale, step_s) if item.bars else _line(item, scale))
    parts += [_marker(marker, scale, fmt) for marker in markers]
    parts.append(_hover_slots(series, scale, fmt, step_s))
    if not values:
        parts.append(
            Html('<text class="empty" x="{}" y="{}" text-anchor="middle">no data</text>').format(
                _r(_LEFT + scale.plot_w / 2), _r(_TOP + scale.plot_h / 2)
            )
        )
    return Html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>'
    ).format(_r(width), _r(height), label, join(parts))


def sparkline(
    values: Sequence[float], *, label: str, width: float = 110, height: float = 24
) -> Html:
    """A small bar sparkline of counts per time slot."""
    top = max(values, default=0.0) or 1.0
    slot = width / max(1, len(values))
    bars = [
        Html('<rect x="{}" y="{}" width="{}" height="{}"/>').format(
            _r(i * slot), _r(height - h), _r(max(0.6, slot - 0.6)), _r(h)
        )
        for i, value in enumerate(values)
        if value > 0 and (h := max(1.0, value / top * (height - 1))) > 0
    ]
    return Html(
        '<svg class="spark" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}"><line x1="0" y1="{}" x2="{}" y2="{}" class="base"/>{}</svg>'
    ).format(
        _r(width),
        _r(height),
        _r(width),
        _r(height),
        label,
        _r(height - 0.5),
        _r(width),
        _r(height - 0.5),
        join(bars),
    )


def timeline(segments: Sequence[Segment], *, start: float, end: float, label: str) -> Html:
    """A horizontal strip: each segment coloured by its state (class ``state-<name>``)."""
    width, height = 600.0, 14.0
    span = (end - start) or 1.0
    rects = []
    for seg in segments:
        x0 = max(0.0, (seg.start - start) / span * width)
        x1 = min(width, (seg.end - start) / span * width)
        if x1 <= x0:
            x1 = min(width, x0 + 1.5)  # an instant still shows
        rects.append(
            Html(
                '<rect class="state-{}" x="{}" y="0" width="{}" height="{}">'
                "<title>{}</title></rect>"
            ).format(
                state_class(seg.state), _r(x0), _r(x1 - x0), _r(height), seg.title or seg.state
            )
        )
    return Html(
        '<svg class="strip" viewBox="0 0 {} {}" preserveAspectRatio="none" role="img" '
        'aria-label="{}"><rect class="strip-bg" x="0" y="0" width="{}" height="{}"/>{}</svg>'
    ).format(_r(width), _r(height), label, _r(width), _r(height), join(rects))


# -- pieces ------------------------------------------------------------------------------------


def _grid(scale: _Scale, fmt: Callable[[float], str]) -> Html:
    parts: list[Html] = []
    for value in _ticks(scale.low, scale.high):
        y = scale.y(value)
        parts.append(
            Html(
                '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>'
            ).format(
                _r(_LEFT),
                _r(y),
                _r(scale.width - _RIGHT),
                _r(y),
                _r(_LEFT - 6),
                _r(y + 4),
                fmt(value),
            )
        )
    span = scale.end - scale.start
    for ts in _time_ticks(scale.start, scale.end):
        x = scale.x(ts)
        parts.append(
            Html(
                '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/>'
                '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>'
            ).format(
                _r(x),
                _r(_TOP),
                _r(x),
                _r(_TOP + scale.plot_h),
                _r(x),
                _r(scale.height - 5),
                _tick_label(ts, span),
            )
        )
    return join(parts)


def _line(series: Series, scale: _Scale) -> Html:
    parts: list[Html] = []
    run: list[str] = []

    def close_run() -> None:
        if len(run) == 1:
            x, y = run[0].split(",")
            parts.append(
                Html('<circle class="dot tone-{}" cx="{}" cy="{}" r="2.5"/>').format(
                    series.tone, x, y
                )
            )
        elif run:
            parts.append(
                Html('<polyline class="line tone-{}" points="{}"/>').format(
                    series.tone, " ".join(run)
                )
            )
        run.clear()

    for ts, value in series.points:
        if value is None or not math.isfinite(value):
            close_run()
            continue
        run.append(f"{_r(scale.x(ts))},{_r(scale.y(value))}")
    close_run()
    return join(parts)


def _bars(series: Series, scale: _Scale, step_s: float | None) -> Html:
    points = [(ts, v) for ts, v in series.points if v]
    if not points:
        return Html("")
    step = step_s or (scale.end - scale.start) / 60
    width = max(1.0, scale.x(scale.start + step) - scale.x(scale.start) - 1.0)
    base = scale.y(max(0.0, scale.low))
    return join(
        Html('<rect class="bar tone-{}" x="{}" y="{}" width="{}" height="{}"/>').format(
            series.tone, _r(scale.x(ts)), _r(scale.y(v)), _r(width), _r(max(0.5, base - scale.y(v)))
        )
        for ts, v in points
        if v is not None
    )


def _marker(marker: Marker, scale: _Scale, fmt: Callable[[float], str]) -> Html:
    x = scale.x(marker.timestamp)
    parts = []
    if marker.lower is not None and marker.upper is not None:
        top, bottom = scale.y(marker.upper), scale.y(max(marker.lower, scale.low))
        parts.append(
            Html('<rect class="band" x="{}" y="{}" width="9" height="{}"/>').format(
                _r(x - 4.5), _r(top), _r(max(1.0, bottom - top))
            )
        )
    if marker.expected is not None:
        y = scale.y(marker.expected)
        parts.append(
            Html('<line class="expected" x1="{}" y1="{}" x2="{}" y2="{}"/>').format(
                _r(x - 6), _r(y), _r(x + 6), _r(y)
            )
        )
    parts.append(
        Html('<circle class="anomaly" cx="{}" cy="{}" r="4"><title>{}</title></circle>').format(
            _r(x), _r(scale.y(marker.value)), marker.title
        )
    )
    return Html('<g class="marker">{}</g>').format(join(parts))


def _hover_slots(
    series: Sequence[Series], scale: _Scale, fmt: Callable[[float], str], step_s: float | None
) -> Html:
    """One transparent column per time slot with a tooltip listing every series' value there."""
    if not series or not series[0].points:
        return Html("")
    times = sorted({ts for s in series for ts, _ in s.points})
    if len(times) > 400:
        return Html("")
    step = step_s or (times[1] - times[0] if len(times) > 1 else scale.end - scale.start)
    by_time = {ts: [] for ts in times}  # type: dict[float, list[str]]
    for s in series:
        for ts, value in s.points:
            if value is not None:
                by_time[ts].append(f"{s.label} {fmt(value)}")
    width = max(1.0, scale.x(scale.start + step) - scale.x(scale.start))
    span = scale.end - scale.start
    return join(
        Html(
            '<rect class="slot" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>'
        ).format(
            _r(scale.x(ts)),
            _r(_TOP),
            _r(width),
            _r(scale.plot_h),
            clock_time(ts, span_s=span) + "\n" + "\n".join(by_time[ts]),
        )
        for ts in times
        if by_time[ts]
    )


# -- scales ------------------------------------------------------------------------------------


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        nice = factor * 10.0**exponent
        if nice >= value:
            return nice
    return 10.0 ** (exponent + 1)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    step = _nice_ceiling((high - low) / count)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


_TIME_STEPS = (
    1,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)


def _time_ticks(start: float, end: float, most: int = 7) -> list[float]:
    span = end - start
    step = next(
        (s for s in _TIME_STEPS if span / s <= most), 86400 * math.ceil(span / 86400 / most)
    )
    offset = time.localtime(start).tm_gmtoff if step >= 3600 else 0
    first = math.ceil((start + offset) / step) * step - offset
    return [first + i * step for i in range(int((end - first) // step) + 1)]


def _tick_label(ts: float, span: float) -> str:
    local = time.localtime(ts)
    if span > 2 * 86400 and local.tm_hour == 0 and local.tm_min == 0:
        return time.strftime("%b %d", local)
    if span < 600:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%H:%M", local)


def _r(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def state_class(state: str) -> str:
    """The CSS class suffix of a status or alert state (unknown ones share one look)."""
    return state if state in _STATES else "unknown"


_STATES = {"pass", "warn", "fail", "pending", "firing", "resolved", "acknowledged", "inactive"}
