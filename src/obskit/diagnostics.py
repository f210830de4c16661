"""obskit's own problems: counted, and reported once each on stderr, never raised into the app.

Every runtime failure inside obskit (an exporter that raises, a full queue, a value that cannot
be rendered, a broken hook) calls :func:`report`. The count shows in
``obskit.pipeline_stats()["problems"]``; the first occurrence of each kind prints one line on
stderr, so a misbehaving exporter cannot flood the console.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ConfigError",
    "bounded_timeout",
    "problem_counts",
    "report",
    "require_kinds",
    "require_number",
    "require_path",
    "reset",
]


class ConfigError(ValueError):
    """A configuration mistake, raised at setup with a message that says what to change.

    (It lives here, not in ``config``, so raising it does not import pydantic.)
    """


def require_number(
    owner: str,
    name: str,
    value: object,
    *,
    integer: bool = False,
    zero: bool = False,
    none: bool = False,
) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number > 0 (or >= 0 with ``zero``).

    For constructor arguments: a size given as ``"1MB"`` or a duration of ``inf`` fails here,
    at setup, instead of in a worker thread later.

    >>> require_number("JsonLinesExporter", "max_bytes", "1MB", integer=True)
    Traceback (most recent call last):
    ...
    obskit.diagnostics.ConfigError: JsonLinesExporter: max_bytes must be an integer > 0, not '1MB'
    """
    if value is None and none:
        return
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = math.isfinite(number) and (number >= 0 if zero else number > 0)
    if not ok:
        what = "an integer" if integer else "a finite number"
        bound = ">= 0" if zero else "> 0"
        also = " or None" if none else ""
        raise ConfigError(f"{owner}: {name} must be {what} {bound}{also}, not {value!r}")


def require_path(owner: str, name: str, value: object) -> Path:
    """``value`` as a :class:`~pathlib.Path`; :class:`ConfigError` unless it is a str or path."""
    if isinstance(value, (str, os.PathLike)) and os.fspath(value):
        return Path(value)
    raise ConfigError(f"{owner}: {name} must be a file path (str or pathlib.Path), not {value!r}")


def require_kinds(owner: str, value: object) -> frozenset[str] | None:
    """A ``kinds=`` argument as a frozenset of signal kind names (``None`` stays ``None``)."""
    if value is None:
        return None
    if not isinstance(value, str) and isinstance(value, Iterable):
        kinds = frozenset(value)
        if all(isinstance(kind, str) for kind in kinds):
            return kinds
    raise ConfigError(f"{owner}: kinds must be a collection of signal kinds, e.g. "
                      f"kinds={{'log', 'error'}}, not {value!r}")  # fmt: skip


def bounded_timeout(value: object, default: float = 5.0) -> float:
    """A timeout argument the threading primitives accept: ``inf`` waits as long as they can,
    a negative one is 0, anything not a number is ``default``. Never raises."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return default
    return min(max(float(value), 0.0), threading.TIMEOUT_MAX / 2)


_lock = threading.Lock()
_counts: Counter[str] = Counter()
_warned: set[str] = set()


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent's may have been held by a thread the child lacks


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def report(kind: str, message: str, *, count: int = 1) -> None:
    """Count a problem of ``kind``; print ``message`` on stderr the first time it happens."""
    with _lock:
        _counts[kind] += count
        first = kind not in _warned
        _warned.add(kind)
    if first:
        try:
            stream = sys.__stderr__ or sys.stderr
            if stream is not None:
                stream.write(f"obskit: {message} (reported once; see obskit.pipeline_stats())\n")
                stream.flush()
        except Exception:
            pass


def problem_counts() -> dict[str, int]:
    """How many times each kind of problem happened since start (or the last ``reset``)."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Forget counts and warnings (for tests)."""
    with _lock:
        _counts.clear()
        _warned.clear()
