"""The one listener mechanism: how one part of obskit hears about another's events.

A producer owns a :class:`Listeners` for each event it announces (``logging.record_listeners``:
every emitted log record; ``instrumentation.call_listeners``: every instrumented call;
``_runtime.shutdown_listeners``: ``obskit.shutdown``). A consumer that sits above the
producer adds a callback; the producer never imports its consumers. A failing callback is
counted and reported (:mod:`obskit.diagnostics`), never raised, and never stops the others.

Registration is copy-on-write, so calling the listeners takes no lock and a callback may
add or remove listeners while it runs.

>>> seen = []
>>> records = Listeners("example")
>>> _ = records.add(seen.append)        # add returns the callback: usable as a decorator
>>> records.notify("a record")
>>> seen
['a record']
>>> bool(records.remove(seen.append)), bool(records)
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from obskit import diagnostics

__all__ = ["Listeners"]

F = TypeVar("F", bound=Callable[..., Any])


class Listeners(Generic[F]):
    """An ordered set of callbacks for one event, called with the event's arguments."""

    __slots__ = ("callbacks", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        #: The registered callbacks, in order; replaced (never mutated) on every change, so a
        #: hot path may loop over it directly: ``for cb in listeners.callbacks: ...``.
        self.callbacks: tuple[F, ...] = ()

    def add(self, callback: F) -> F:
        """Register ``callback`` (once, however often it is added); returns it."""
        if callback not in self.callbacks:
            self.callbacks = (*self.callbacks, callback)
        return callback

    def remove(self, callback: F) -> bool:
        """Unregister ``callback``; ``False`` if it was not registered."""
        if callback not in self.callbacks:
            return False
        self.callbacks = tuple(c for c in self.callbacks if c != callback)
        return True

    def __bool__(self) -> bool:
        return bool(self.callbacks)

    def __len__(self) -> int:
        return len(self.callbacks)

    def __iter__(self) -> Iterator[F]:
        return iter(self.callbacks)

    def __contains__(self, callback: object) -> bool:
        return callback in self.callbacks

    def notify(self, *args: Any) -> None:
        """Call every callback with ``args``; a failing one is reported, the rest still run."""
        for callback in self.callbacks:
            try:
                callback(*args)
            except Exception as exc:
                self.report(callback, exc)

    def report(self, callback: object, exc: BaseException) -> None:
        """Count and report (once per event) a callback that raised ``exc``."""
        diagnostics.report(
            f"listener.{self.name}", f"a {self.name} listener ({callback!r}) raised {exc!r}"
        )

    def __repr__(self) -> str:
        return f"Listeners({self.name!r}, {len(self.callbacks)} registered)"
