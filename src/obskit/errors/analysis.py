"""What an exception says for grouping and display: its chain, frames, remote and group parts.

:class:`ChainAnalyser` turns an exception into an :class:`Analysis`: the chain
(``__cause__`` / ``__context__``), each exception's frames looked up in the frame cache, and the
chain's cached :class:`~obskit.errors.chains.ChainShape`. Two runtime shapes get special care:

* **Process pools**: an exception re-raised from a ``multiprocessing`` or
  ``concurrent.futures`` worker carries the worker's traceback as text
  (:mod:`obskit.errors.remote`); its frames are read back and appended after this process's
  frames, and only the worker's frames group, so the bug groups as if it was raised locally,
  whichever pool API ran it.
* **Exception groups** (``asyncio.TaskGroup``, ``except*``): every leaf exception is analysed
  too; the group's fingerprint is the container's own parts plus the *set* of distinct leaf
  fingerprints, as Sentry groups exception groups. The same failing task groups together
  however many siblings it had, or whether they failed the same way.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from obskit.errors.chains import (
    ChainKey,
    ChainShape,
    exception_chain,
    frozen_sequence,
    kept_indexes,
    safe_str,
)
from obskit.errors.fingerprint import fingerprint_for, hash_parts, with_custom
from obskit.errors.frames import FrameCache, FrameInfo
from obskit.errors.remote import (
    is_remote_traceback,
    parse_traceback,
    remote_traceback_text,
)

__all__ = ["MAX_LEAF_ENTRIES", "MAX_LEAVES", "Analysis", "ChainAnalyser", "GroupAnalysis"]

#: Leaves of an exception group that count for its fingerprint.
MAX_LEAVES = 100
#: Leaves of an exception group whose exceptions are put in the event.
MAX_LEAF_ENTRIES = 10
_MAX_SHAPES = 2048

_GROUP_TYPES: tuple[type, ...] = tuple(
    kind for kind in (getattr(builtins, "BaseExceptionGroup", None),) if isinstance(kind, type)
)


@dataclass(frozen=True, slots=True)
class _Item:
    """One exception of a chain: a live one, or one known only from a worker's text."""

    exc: BaseException | None
    kind: type | str
    value: str
    infos: tuple[FrameInfo, ...]
    live: list[FrameType]
    start: int


@dataclass(frozen=True, slots=True)
class Analysis:
    """An exception chain, analysed: items, cached shape and the default fingerprint."""

    items: list[_Item]
    shape: ChainShape
    fingerprint: str

    def fingerprint_with(self, custom: Sequence[str] | str | None) -> str:
        """The fingerprint, or a custom one (``"{{ default }}"`` standing for the default)."""
        return with_custom(self.fingerprint, custom)


@dataclass(frozen=True, slots=True)
class GroupAnalysis:
    """An exception group: the container's analysis and its leaves', with the fingerprint."""

    container: Analysis
    leaves: list[Analysis]
    fingerprint: str

    @property
    def main(self) -> Analysis:
        """The leaf that names the group (the lowest leaf fingerprint: stable across events)."""
        return min(self.leaves, key=lambda leaf: leaf.fingerprint, default=self.container)


class ChainAnalyser:
    """Analyses exceptions with one frame cache; caches chain shapes."""

    def __init__(self, frames: FrameCache) -> None:
        self.frames = frames
        self.scrubber = frames.scrubber
        self._shapes: dict[ChainKey, ChainShape] = {}
        self._lock = threading.Lock()

    def analyse(self, exc: BaseException) -> Analysis:
        """The chain of ``exc``, its shape and default fingerprint."""
        items = self._items(exc)
        key: ChainKey = tuple((item.kind, item.infos, item.start) for item in items)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shape(key)
        fingerprint = shape.fingerprint
        if fingerprint is None:
            fingerprint = fingerprint_for(shape.parts_with([item.value for item in items]))
        return Analysis(items, shape, fingerprint)

    def analyse_group(self, group: BaseException) -> GroupAnalysis | None:
        """An exception group's analysis; ``None`` if ``group`` is not an exception group."""
        if not (_GROUP_TYPES and isinstance(group, _GROUP_TYPES)):
            return None
        container = self.analyse(group)
        leaves = [self.analyse(leaf) for leaf in leaf_exceptions(group, MAX_LEAVES)]
        distinct = sorted({leaf.fingerprint for leaf in leaves})
        container_parts = container.shape.parts_with([item.value for item in container.items])
        fingerprint = hash_parts(["exception-group", *container_parts, "leaves:", *distinct])
        return GroupAnalysis(container, leaves, fingerprint)

    def _items(self, exc: BaseException) -> list[_Item]:
        clean = self.scrubber.clean_text
        items: list[_Item] = []
        for current in exception_chain(exc):
            if is_remote_traceback(current):
                continue  # read into the exception it caused (below)
            infos, live = self._locate(current.__traceback__)
            text = remote_traceback_text(current)
            remote = parse_traceback(text) if text else []
            start = 0
            if remote:
                start = len(infos)
                infos = infos + self._remote_infos(remote[0].frames)
            items.append(
                _Item(current, type(current), clean(safe_str(current)), infos, live, start)
            )
            for cause in remote[1:]:  # the worker's own chain, as if raised here
                frames = self._remote_infos(cause.frames)
                items.append(_Item(None, cause.type_name, clean(cause.value), frames, [], 0))
        return items

    def _remote_infos(
        self, frames: list[tuple[str, int, str, str | None]]
    ) -> tuple[FrameInfo, ...]:
        remote_info = self.frames.remote_info
        return tuple(remote_info(*frame) for frame in frames)

    def _locate(self, tb: TracebackType | None) -> tuple[tuple[FrameInfo, ...], list[FrameType]]:
        """The cached frame facts of a traceback, and its live frames (for locals)."""
        info = self.frames.info
        infos: list[FrameInfo] = []
        frames: list[FrameType] = []
        while tb is not None:
            frame = tb.tb_frame
            infos.append(info(frame.f_code, tb.tb_lineno or 0, frame))
            frames.append(frame)
            tb = tb.tb_next
        return tuple(infos), frames

    def _shape(self, key: ChainKey) -> ChainShape:
        shape = ChainShape.of(key, self.scrubber)
        with self._lock:
            if len(self._shapes) >= _MAX_SHAPES:
                self._shapes.clear()
            self._shapes[key] = shape
        return shape

    # -- event entries ---------------------------------------------------------------------

    def entries(
        self, analysis: Analysis, include_locals: bool, mechanism: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The event's exception entries for a chain, outermost first."""
        shape = analysis.shape
        out: list[dict[str, Any]] = []
        for index, item in enumerate(analysis.items):
            frames = shape.frames[index]
            if include_locals and item.live:
                frames = self._with_locals(item)
            entry: dict[str, Any] = {
                "type": _type_label(item.kind),
                "module": _type_module(item.kind),
                "value": item.value,
                "frames": frames,
            }
            omitted = shape.omitted[index]
            if omitted is not None:
                entry["frames_omitted"] = omitted
            if mechanism is not None and index == 0:
                entry["mechanism"] = self.scrubber.freeze(mechanism)
            out.append(entry)
        return out

    def group_entries(
        self, group: GroupAnalysis, include_locals: bool, mechanism: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """Entries for an exception group: the container's chain, then each leaf's chain.

        Each chain's first entry carries Sentry's exception-group mechanism fields
        (``exception_id``, ``parent_id``, ``is_exception_group``, ``source``).
        """
        container = self.entries(group.container, include_locals, None)
        container[0]["mechanism"] = {
            **(mechanism or {"type": "generic", "handled": True}),
            "is_exception_group": True,
            "exception_id": 0,
        }
        out = container
        for position, leaf in enumerate(group.leaves[:MAX_LEAF_ENTRIES]):
            chain = self.entries(leaf, include_locals, None)
            chain[0]["mechanism"] = {
                "type": "chained",
                "source": f"exceptions[{position}]",
                "exception_id": len(out),
                "parent_id": 0,
            }
            out.extend(chain)
        return out

    def _with_locals(self, item: _Item) -> Any:
        kept = kept_indexes(len(item.infos))
        with_locals = self.frames.with_locals
        infos, live = item.infos, item.live
        return frozen_sequence(
            [
                with_locals(infos[i], live[i])
                if i < len(live) and infos[i].in_app
                else infos[i].frame
                for i in kept
            ],
            self.scrubber,
        )


def leaf_exceptions(group: BaseException, limit: int) -> list[BaseException]:
    """The leaf exceptions of a (possibly nested) exception group, depth first, up to ``limit``."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending and len(leaves) < limit:
        current = pending.pop()
        children = (
            getattr(current, "exceptions", None) if isinstance(current, _GROUP_TYPES) else None
        )
        if isinstance(children, tuple):
            pending.extend(reversed(children))
        elif current is not group:
            leaves.append(current)
    return leaves


def _type_label(kind: type | str) -> str:
    return kind.rpartition(".")[2] if isinstance(kind, str) else kind.__qualname__


def _type_module(kind: type | str) -> str:
    if isinstance(kind, str):
        module, _, _ = kind.rpartition(".")
        return module or "builtins"
    return kind.__module__
