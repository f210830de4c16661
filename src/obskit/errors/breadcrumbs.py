"""Breadcrumbs: the trail of what happened before an error, one trail per context.

The trail lives in a :class:`contextvars.ContextVar` as an immutable chain (each link holds a
breadcrumb and the link before it), so

* adding is O(1) and lock-free: a new link, one ``ContextVar.set``;
* an asyncio task inherits the trail of the code that created it and then adds to its own copy;
  sibling tasks and threads never see each other's breadcrumbs;
* ``obskit.request`` starts a scope: breadcrumbs added inside it are gone when it ends, so
  requests handled one after another by the same thread do not mix trails either.

The chain is cut back to the newest ``max_breadcrumbs`` whenever it grows to twice that, so
memory stays bounded and the amortised cost stays O(1). Breadcrumbs are scrubbed lazily, once,
the first time an event carries them (:meth:`Breadcrumb.frozen`).
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

from obskit import diagnostics
from obskit.levels import LEVEL_NUMBERS, level_number
from obskit.scrubbing import ScrubbedMapping, ScrubbedSequence, Scrubber
from obskit.signals import LogRecord

__all__ = [
    "Breadcrumb",
    "BreadcrumbSettings",
    "add_breadcrumb",
    "current_trail",
    "on_instrumented_call",
    "on_log_record",
    "on_request",
]


class Breadcrumb:
    """One step of the trail. Immutable once added; scrubbed once, when first attached."""

    __slots__ = ("_frozen", "category", "data", "level", "message", "timestamp")

    def __init__(
        self, timestamp: float, category: str, message: Any, level: str, data: Any
    ) -> None:
        self.timestamp = timestamp
        self.category = category
        self.message = message
        self.level = level
        self.data = data  # (_frozen is left unset until first frozen: one store less per crumb)

    def to_dict(self) -> dict[str, Any]:
        """The raw (unscrubbed) breadcrumb as a dict, as ``before_breadcrumb`` sees it."""
        out = {
            "timestamp": self.timestamp,
            "category": self.category,
            "message": self.message,
            "level": self.level,
        }
        if self.data:
            out["data"] = self.data
        return out

    def frozen(self, scrubber: Scrubber) -> ScrubbedMapping:
        """The scrubbed, read-only dict form (computed once per scrubber)."""
        frozen: ScrubbedMapping | None = getattr(self, "_frozen", None)
        if frozen is None or frozen.scrubber is not scrubber:
            frozen = self._frozen = scrubber.freeze(self.to_dict())
        return frozen

    def __repr__(self) -> str:
        return f"Breadcrumb({self.category!r}, {self.message!r}, level={self.level!r})"


class BreadcrumbSettings:
    """What ``init`` configured: the trail length, the hook and the clock."""

    __slots__ = ("before_breadcrumb", "clock", "max_breadcrumbs")

    def __init__(
        self,
        max_breadcrumbs: int = 100,
        before_breadcrumb: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.max_breadcrumbs = max_breadcrumbs
        self.before_breadcrumb = before_breadcrumb
        self.clock = clock


#: The live settings; replaced by ``obskit.init`` (through ``obskit.errors.configure``).
settings = BreadcrumbSettings()

# A link is (breadcrumb, previous link, length of the chain ending here).
_Link = tuple[Breadcrumb, Any, int]
_trail: contextvars.ContextVar[_Link | None] = contextvars.ContextVar(
    "obskit_breadcrumbs", default=None
)


def add_breadcrumb(
    category: str,
    message: Any = "",
    level: str = "info",
    data: dict[str, Any] | None = None,
    *,
    hint: dict[str, Any] | None = None,
) -> None:
    """Add a breadcrumb to the current context's trail. Never raises."""
    config = settings
    limit = config.max_breadcrumbs
    if limit <= 0:
        return
    try:
        crumb = Breadcrumb(config.clock(), category, message, level, data)
        if config.before_breadcrumb is not None:
            crumb = _apply_hook(config.before_breadcrumb, crumb, hint or {})
            if crumb is None:
                return
        _append(crumb, limit)
    except Exception as exc:
        diagnostics.report("breadcrumb", f"could not add a breadcrumb: {exc!r}")


def _append(crumb: Breadcrumb, limit: int) -> None:
    """Put ``crumb`` at the end of the current context's trail (cut back at twice ``limit``)."""
    link = _trail.get()
    if link is None:
        _trail.set((crumb, None, 1))
    elif link[2] < 2 * limit:
        _trail.set((crumb, link, link[2] + 1))
    else:
        _trail.set(_rebuild([*_newest(link, limit - 1)[::-1], crumb]))


_in_hook = threading.local()


def _apply_hook(hook: Callable[..., Any], crumb: Breadcrumb, hint: dict[str, Any]) -> Any:
    if getattr(_in_hook, "active", False):
        return None  # a breadcrumb made by the hook itself (it logged): dropped, no recursion
    _in_hook.active = True
    try:
        result = hook(crumb.to_dict(), hint)
    except Exception as exc:
        diagnostics.report("before_breadcrumb", f"before_breadcrumb raised {exc!r}; kept it")
        return crumb
    finally:
        _in_hook.active = False
    if result is None:
        return None
    if not isinstance(result, dict):
        diagnostics.report(
            "before_breadcrumb", f"before_breadcrumb returned {type(result).__name__}, not a dict"
        )
        return crumb
    return Breadcrumb(
        result.get("timestamp", crumb.timestamp),
        str(result.get("category", crumb.category)),
        result.get("message", crumb.message),
        str(result.get("level", crumb.level)),
        result.get("data"),
    )


def _newest(link: _Link | None, count: int) -> list[Breadcrumb]:
    """Up to ``count`` breadcrumbs, newest first."""
    out: list[Breadcrumb] = []
    while link is not None and len(out) < count:
        out.append(link[0])
        link = link[1]
    return out


def _rebuild(crumbs: list[Breadcrumb]) -> _Link | None:
    link: _Link | None = None
    for length, crumb in enumerate(crumbs, 1):
        link = (crumb, link, length)
    return link


def current_trail(limit: int | None = None) -> list[Breadcrumb]:
    """The breadcrumbs of the current context, oldest first (at most ``max_breadcrumbs``)."""
    count = settings.max_breadcrumbs if limit is None else limit
    return _newest(_trail.get(), count)[::-1]


# The frozen trail last built for a chain end: events captured with no breadcrumb added in
# between (the usual case in an error loop) reuse it. Keyed by the link, which it holds.
_frozen_trails: dict[int, tuple[_Link, Scrubber, int, ScrubbedSequence]] = {}


def frozen_trail(scrubber: Scrubber) -> ScrubbedSequence:
    """The current trail as scrubbed, read-only dicts, oldest first (for an event)."""
    end = _trail.get()
    count = settings.max_breadcrumbs
    if end is None:
        return _EMPTY_TRAIL
    cached = _frozen_trails.get(id(end))
    if cached is not None and cached[0] is end and cached[1] is scrubber and cached[2] == count:
        return cached[3]
    newest: list[ScrubbedMapping] = []
    link: _Link | None = end
    while link is not None and len(newest) < count:
        newest.append(link[0].frozen(scrubber))
        link = link[1]
    newest.reverse()
    trail = ScrubbedSequence(newest)
    trail.scrubber = scrubber
    if len(_frozen_trails) >= 256:
        _frozen_trails.clear()
    _frozen_trails[id(end)] = (end, scrubber, count, trail)
    return trail


_EMPTY_TRAIL = ScrubbedSequence()


def clear() -> None:
    """Forget the current context's trail."""
    _trail.set(None)


# -- automatic breadcrumbs ----------------------------------------------------------------


def on_log_record(record: LogRecord) -> None:
    """A breadcrumb for each emitted log record at INFO and above (on every log call: lean)."""
    number = LEVEL_NUMBERS.get(record.level)  # (level_number's first step, inlined)
    if (number if number is not None else level_number(record.level)) < 20:
        return
    config = settings
    if config.before_breadcrumb is None and config.max_breadcrumbs > 0:
        # add_breadcrumb's work without its hook (and so without the hint it would need)
        crumb = Breadcrumb(
            config.clock(), record.logger or "log", record.event, record.level, record.fields
        )
        link = _trail.get()
        if link is None:  # (_append, inlined)
            _trail.set((crumb, None, 1))
        elif link[2] < 2 * config.max_breadcrumbs:
            _trail.set((crumb, link, link[2] + 1))
        else:
            _append(crumb, config.max_breadcrumbs)
    else:
        add_breadcrumb(
            record.logger or "log",
            record.event,
            record.level,
            record.fields or None,
            hint={"log_record": record},
        )


def on_instrumented_call(name: str, duration_ms: float, exc: BaseException | None) -> None:
    """A breadcrumb for each finished ``@obskit.instrument`` call (on its hot path: lean)."""
    config = settings
    if exc is None and config.before_breadcrumb is None and config.max_breadcrumbs > 0:
        # add_breadcrumb's work without its hook and error handling, neither of which applies
        crumb = Breadcrumb(config.clock(), "function", name, "info", {"duration_ms": duration_ms})
        _append(crumb, config.max_breadcrumbs)
    elif exc is None:
        add_breadcrumb("function", name, "info", {"duration_ms": duration_ms})
    else:
        data = {"duration_ms": duration_ms, "error": type(exc).__name__}
        add_breadcrumb("function", name, "error", data)


def on_request(name: str, fields: dict[str, Any]) -> Callable[[], None]:
    """Start a request's breadcrumb scope; the returned callable ends it."""
    config = settings
    limit = config.max_breadcrumbs
    link = _trail.get()
    token = None
    if config.before_breadcrumb is None and limit > 0 and (link is None or link[2] < 2 * limit):
        try:  # the scope and its first breadcrumb in one step (add_breadcrumb's work, lean)
            crumb = Breadcrumb(config.clock(), "request", name, "info", fields or None)
            token = _trail.set((crumb, link, 1 if link is None else link[2] + 1))
        except Exception:
            pass
    if token is None:
        token = _trail.set(link)
        add_breadcrumb("request", name, "info", fields or None)
    return functools.partial(_end_scope, token)


def _end_scope(token: contextvars.Token[_Link | None]) -> None:
    try:
        _trail.reset(token)
    except ValueError:  # ended in another context than it started: leave the trail be
        pass
