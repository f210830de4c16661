"""obskit's own problems: counted, and reported once each on stderr, never raised into the app.

Every runtime failure inside obskit (an exporter that raises, a full queue, a value that cannot
be rendered, a broken hook) calls :func:`report`. The count shows in
``obskit.pipeline_stats()["problems"]``; the first occurrence of each kind prints one line on
stderr, so a misbehaving exporter cannot flood the console.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter

__all__ = ["ConfigError", "problem_counts", "report", "reset"]


class ConfigError(ValueError):
    """A configuration mistake, raised at setup with a message that says what to change.

    (It lives here, not in ``config``, so raising it does not import pydantic.)
    """


_lock = threading.Lock()
_counts: Counter[str] = Counter()
_warned: set[str] = set()


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
