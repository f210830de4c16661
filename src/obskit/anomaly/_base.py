"""The detector seam: the ``AnomalyScore`` result, the ``Detector`` protocol, the shared base.

:class:`BaseDetector` does what every detector needs and none should repeat: it turns bad input
(NaN, inf, None, text, 1e300, timestamps going backwards) into a counted, skipped point instead
of an exception, keeps the warm-up during which nothing is flagged, validates the range hint,
and wraps the detector's own state in a versioned, JSON-safe envelope that ``from_state``
checks field by field.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from obskit import diagnostics
from obskit.anomaly import _state
from obskit.anomaly._state import ConfigError, StateError

__all__ = ["MAX_MAGNITUDE", "AnomalyScore", "BaseDetector", "Detector", "ValueRange"]

#: Values beyond this magnitude are skipped: squaring them would overflow a float.
MAX_MAGNITUDE = 1e150

ValueRange = tuple[float, float]
_D = TypeVar("_D", bound="BaseDetector")
_REGISTRY: dict[str, type[BaseDetector]] = {}


@dataclass(slots=True)
class AnomalyScore:
    """What a detector says about one point.

    ``score`` is in [0, 1] (0 = ordinary); ``is_anomaly`` is ``score >= threshold`` once the
    warm-up is over; ``expected``, ``lower`` and ``upper`` give the band the detector expected
    the value in (``None`` when it has no opinion yet, and on a flagged point whose value lies
    inside it: a flag is never inside the band it reports). ``skipped`` marks a point that was
    not used (a bad value): its score is 0. On a flagged point, ``member`` names what fired
    (the detector, or the member or view of a composite one) and ``reason`` says why in words.
    """

    score: float
    is_anomaly: bool
    value: float | None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    timestamp: float | None = None
    skipped: bool = False
    member: str | None = None
    reason: str | None = None


@runtime_checkable
class Detector(Protocol):
    """Anything that scores a stream point by point and can be saved and restored."""

    def update(self, value: Any, timestamp: Any = None) -> AnomalyScore: ...

    def update_many(
        self, values: Iterable[Any], timestamps: Iterable[Any] | None = None
    ) -> list[AnomalyScore]: ...

    def state(self) -> dict[str, Any]: ...


class BaseDetector:
    """Input hygiene, warm-up, threshold and state envelope shared by every detector.

    Subclasses implement ``_step(value, timestamp) -> AnomalyScore`` for a clean finite value,
    ``_config()`` (the constructor keywords) and ``_data()`` / ``_load(data)`` (the learned
    state). ``_step`` returns raw scores; this class zeroes them during the warm-up and while an
    incident is open (one alert per incident, not per point: see ``_gate``).
    """

    name: ClassVar[str] = ""
    __slots__ = (
        "_limits",
        "_opened",
        "_quiet",
        "cooldown",
        "last_timestamp",
        "problems",
        "seen",
        "threshold",
        "value_range",
        "warmup",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    def __init__(
        self,
        *,
        warmup: int,
        threshold: float,
        value_range: Sequence[float | None] | None,
        cooldown: int = 0,
    ) -> None:
        self.warmup = _check_int("warmup", warmup, minimum=0)
        self.threshold = _check_fraction("threshold", threshold)
        self.cooldown = _check_int("cooldown", cooldown, minimum=0)
        self._quiet = 0  # points of calm the open incident still needs (0: none open)
        self._opened = 0  # ``seen`` when the open incident began
        limits = check_value_range(value_range)
        self._limits = limits or (-math.inf, math.inf)
        #: The full hint (both sides known), what bins and resolutions are cut from.
        self.value_range = limits if limits and math.isfinite(limits[0] - limits[1]) else None
        self.seen = 0
        self.last_timestamp: float | None = None
        self.problems: dict[str, int] = {}

    # -- streaming ------------------------------------------------------------------------
    def update(self, value: Any, timestamp: Any = None) -> AnomalyScore:
        """Score one point, then learn from it. Never raises on bad input: it is skipped."""
        if type(value) is not float:
            value = self._coerce(value)
            if value is None:
                return AnomalyScore(0.0, False, None, skipped=True)
        if not -MAX_MAGNITUDE < value < MAX_MAGNITUDE:
            if value - value == 0.0:
                self._problem("value_too_large", "skipped a value beyond 1e150 in magnitude")
            else:
                self._problem("value_not_finite", "skipped a NaN or infinite value")
            return AnomalyScore(0.0, False, None, skipped=True)
        if timestamp is not None:
            timestamp = self._check_time(timestamp)
        return self._accept(value, timestamp)

    def _accept(self, value: float, timestamp: float | None) -> AnomalyScore:
        """Score a clean point (composite detectors feed their members through here)."""
        self.seen += 1
        return self._gate(self._step(value, timestamp))

    def _gate(self, result: AnomalyScore) -> AnomalyScore:
        """Silence the warm-up and an open incident; keep the band readable.

        An incident opens at a flag and stays open, silent (score 0), until it has been quiet
        (no point that would flag) for as long as it has lasted, and at least ``cooldown``
        points: one flag per incident however long it lasts, and a long incident needs a long
        calm before the next flag. The band is clipped to the known range, and a flagged point
        never carries a band that contains it (the band then says nothing about why it was
        flagged; ``reason`` does).
        """
        if self.seen <= self.warmup:
            result.score = 0.0
            result.is_anomaly = False
        elif self._quiet:
            if result.is_anomaly:
                lasted = self.seen - self._opened
                self._quiet = lasted if lasted > self.cooldown else self.cooldown
            else:
                self._quiet -= 1
            result.score = 0.0
            result.is_anomaly = False
        elif result.is_anomaly:
            self._quiet = self.cooldown
            self._opened = self.seen
            if result.member is None:
                result.member = self.name
            if result.reason is None:
                result.reason = self._explain(result)
        lower = result.lower
        if lower is not None:
            low, high = self._limits
            if lower < low:
                result.lower = lower = low
            upper = result.upper
            if upper is not None and upper > high:
                result.upper = upper = high
            value = result.value
            inside = upper is not None and value is not None and lower <= value <= upper
            if inside and result.is_anomaly:
                result.lower = result.upper = None
        return result

    def update_many(
        self, values: Iterable[Any], timestamps: Iterable[Any] | None = None
    ) -> list[AnomalyScore]:
        """Score a backfill in order; the same as calling :meth:`update` on each point."""
        update = self.update
        if timestamps is None:
            return [update(value) for value in values]
        return [update(value, moment) for value, moment in zip(values, timestamps, strict=True)]

    def _result(
        self,
        score: float,
        value: float,
        expected: float | None,
        half_width: float | None,
        timestamp: float | None,
    ) -> AnomalyScore:
        """Build the result for a raw score and a symmetric band around ``expected``."""
        if not score >= 0.0:  # NaN from a degenerate state scores as ordinary
            score = 0.0
        elif score > 1.0:
            score = 1.0
        if expected is None or half_width is None:
            return AnomalyScore(score, score >= self.threshold, value, timestamp=timestamp)
        return AnomalyScore(
            score,
            score >= self.threshold,
            value,
            expected,
            expected - half_width,
            expected + half_width,
            timestamp,
        )

    def _step(self, value: float, timestamp: float | None) -> AnomalyScore:
        raise NotImplementedError

    def _explain(self, result: AnomalyScore) -> str:
        """Why ``result`` scored high, in words (called only for flags; detectors may say more)."""
        value, expected = result.value, result.expected
        if value is None or expected is None:
            return f"scored {result.score:.2f}, at or above its threshold {self.threshold:g}"
        side = "above" if value >= expected else "below"
        lower, upper = result.lower, result.upper
        if lower is not None and upper is not None and not lower <= value <= upper:
            return (
                f"{number(value)} is {side} the expected {number(expected)}, outside the usual "
                f"{number(lower)} to {number(upper)}"
            )
        return f"{number(value)} is unusually far {side} the expected {number(expected)}"

    # -- bad input ----------------------------------------------------------------------
    def _coerce(self, value: Any) -> float | None:
        """A float for ints, bools, Decimals and numpy scalars; ``None`` (counted) otherwise."""
        if not isinstance(value, (str, bytes)) and value is not None:
            try:
                return float(value)
            except OverflowError:  # an int beyond any float
                self._problem("value_too_large", "skipped a value beyond 1e150 in magnitude")
                return None
            except (TypeError, ValueError):
                pass
        # The type only: a value may carry data that must not reach stderr.
        self._problem("value_not_numeric", f"skipped a {type(value).__name__}, not a number")
        return None

    def _check_time(self, timestamp: Any) -> float | None:
        """UNIX seconds; a timestamp going backwards is clamped to the last one and counted."""
        moment: float
        if type(timestamp) is float:
            moment = timestamp
        elif isinstance(timestamp, _dt.datetime):
            moment = timestamp.timestamp()
        else:
            try:
                moment = float(timestamp)
            except (TypeError, ValueError, OverflowError):
                moment = math.nan
        if not math.isfinite(moment):
            self._problem("timestamp_invalid", "ignored a timestamp that is not a finite number")
            return self.last_timestamp
        last = self.last_timestamp
        if last is not None and moment <= last:
            if moment < last:
                self._problem("timestamp_backwards", "a timestamp went backwards; used the last")
            else:
                self._problem("timestamp_repeated", "a timestamp repeated")
            return last
        self.last_timestamp = moment
        return moment

    def _problem(self, kind: str, message: str) -> None:
        self.problems[kind] = self.problems.get(kind, 0) + 1
        diagnostics.report(f"anomaly.{kind}", f"anomaly detector {self.name}: {message}")

    # -- state --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to continue after a restart, as plain JSON-safe data."""
        return {
            "detector": self.name,
            "version": _state.VERSION,
            "config": self._config(),
            "seen": self.seen,
            "quiet": self._quiet,
            "opened": self._opened,
            "last_timestamp": self.last_timestamp,
            "problems": dict(self.problems),
            "data": self._data(),
        }

    @classmethod
    def from_state(cls: type[_D], state: Any) -> _D:
        """Rebuild a detector from :meth:`state`; a damaged blob raises :class:`StateError`."""
        blob = _state.envelope(state, cls.name)
        try:
            detector = cls._from_config(blob["config"])
        except StateError:
            raise
        except (ConfigError, TypeError) as exc:
            raise StateError(f"{cls.name} state has a bad config: {exc}") from None
        detector.seen = _state.read_int(blob, "seen")
        detector._quiet = _state.read_int(blob, "quiet")
        detector._opened = _state.read_int(blob, "opened") if "opened" in blob else 0
        detector.last_timestamp = _state.read_optional_float(blob, "last_timestamp")
        detector.problems = _state.read_counts(blob, "problems")
        data = blob["data"]
        if not isinstance(data, dict):
            raise StateError(f"{cls.name} state: 'data' must be an object")
        try:
            detector._load(data)
        except StateError:
            raise
        except Exception as exc:
            raise StateError(f"{cls.name} state: 'data' is damaged ({exc!r})") from None
        return detector

    @classmethod
    def _from_config(cls: type[_D], config: dict[str, Any]) -> _D:
        """A fresh detector from ``_config()`` (composites rebuild their members here)."""
        return cls(**config)

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def _data(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def _base_config(self) -> dict[str, Any]:
        low, high = self._limits
        hint = None
        if math.isfinite(low) or math.isfinite(high):
            hint = [low if math.isfinite(low) else None, high if math.isfinite(high) else None]
        return {
            "warmup": self.warmup,
            "threshold": self.threshold,
            "cooldown": self.cooldown,
            "value_range": hint,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={_short(value)}" for key, value in self._config().items())
        return f"{type(self).__name__}({settings})"


def number(value: float) -> str:
    """A number as a person writes it in a sentence: four significant digits."""
    return f"{value:.4g}"


def _short(value: Any) -> str:
    """A config value for ``repr``: nested detector states shown by name, not in full."""
    if isinstance(value, dict) and isinstance(value.get("detector"), str):
        return f"<{value['detector']}>"
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "[" + ", ".join(_short(item) for item in value) + "]"
    return repr(value)


def detector_from_state(state: Any) -> BaseDetector:
    """Rebuild any obskit detector from its :meth:`~BaseDetector.state`."""
    if not isinstance(state, dict) or not isinstance(state.get("detector"), str):
        raise StateError("not a detector state: expected an object with a 'detector' name")
    cls = _REGISTRY.get(state["detector"])
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise StateError(f"unknown detector {state['detector']!r} in state (known: {known})")
    return cls.from_state(state)


def check_value_range(value_range: Sequence[float | None] | None) -> ValueRange | None:
    """Validate the ``value_range=(low, high)`` hint; ``None`` for an unknown side (-inf, inf).

    ``(0, None)`` declares a series that is never negative (a latency, a count) without
    knowing its top; the result is ``None`` when nothing is known.
    """
    if value_range is None:
        return None
    try:
        first, second = value_range
        low = -math.inf if first is None else float(first)
        high = math.inf if second is None else float(second)
    except (TypeError, ValueError):
        raise ConfigError(
            f"value_range={value_range!r}: give two numbers (low, high), None for an unknown "
            "side, e.g. (0, 100) or (0, None)"
        ) from None
    if math.isnan(low) or math.isnan(high) or low > high or low == math.inf or high == -math.inf:
        raise ConfigError(
            f"value_range={value_range!r}: need low <= high, e.g. value_range=(0, 100)"
        )
    if low == -math.inf and high == math.inf:
        return None
    return (low, high)


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name}={value!r}: use an integer >= {minimum}")
    return value


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(f"{name}={value!r}: use a number between 0 and 1")
    return float(value)


check_int = _check_int
check_fraction = _check_fraction
