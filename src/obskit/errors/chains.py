"""Exception chains: walking ``__cause__`` / ``__context__``, and what a chain's shape decides.

The *shape* of a chain is its exception types and the code locations of their frames. Everything
that depends only on the shape is computed once and cached by :class:`ChainShape`: the
fingerprint parts (in-app frames, recursion collapsed), the culprit and the exported frames.
Two events from the same crash site share one shape, however their messages differ.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from obskit.errors.fingerprint import collapse_recursion, fingerprint_for, parameterise_message
from obskit.errors.frames import FrameInfo
from obskit.scrubbing import ScrubbedSequence, Scrubber, safe_repr

__all__ = [
    "MAX_CHAIN",
    "MAX_FRAMES",
    "ChainKey",
    "ChainShape",
    "exception_chain",
    "frozen_sequence",
    "grouping_keys",
    "kept_indexes",
    "safe_str",
    "type_name",
]

#: Exceptions kept from one chain (``__cause__`` / ``__context__``).
MAX_CHAIN = 10
#: Frames kept per exception in the event (the first and last halves); grouping sees them all.
MAX_FRAMES = 100

#: A chain's shape: per exception, its type (a name for one known only from a worker's text),
#: the facts of its frames (outermost first), and the index of the first frame that groups
#: (past this process's frames for an exception re-raised from a process pool).
ChainKey = tuple[tuple[type | str, tuple[FrameInfo, ...], int], ...]


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first; cycles and over-long chains are cut."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        chain.append(current)
        seen.add(id(current))
        following = current.__cause__
        if following is None and not current.__suppress_context__:
            following = current.__context__
        current = following if isinstance(following, BaseException) else None
    return chain


@dataclass(frozen=True, slots=True, eq=False)
class ChainShape:
    """What the exception types and frame locations of a chain determine, computed once."""

    #: Per exception: its type part and collapsed frame parts (empty: group by its message).
    parts: tuple[tuple[str, tuple[str, ...]], ...]
    culprit: str
    frames: tuple[ScrubbedSequence, ...]
    omitted: tuple[ScrubbedSequence | None, ...]
    #: The default fingerprint, when no exception of the chain is grouped by its message.
    fingerprint: str | None

    @classmethod
    def of(cls, key: ChainKey, scrubber: Scrubber) -> ChainShape:
        """The shape of a chain (Sentry's rule: in-app frames, or all when none is in-app)."""
        any_in_app = any(info.in_app for _, infos, start in key for info in infos[start:])
        parts = []
        frames = []
        omitted: list[ScrubbedSequence | None] = []
        for kind, infos, start in key:
            keys = grouping_keys(infos[start:], any_in_app)
            name = kind if isinstance(kind, str) else type_name(kind)
            parts.append(("type:" + name, tuple(collapse_recursion(keys))))
            kept = kept_indexes(len(infos))
            frames.append(frozen_sequence([infos[i].frame for i in kept], scrubber))
            half = len(kept) // 2  # frames [half, len - half) are left out of the event
            skipped = len(kept) < len(infos)
            omitted.append(
                frozen_sequence([half, len(infos) - half], scrubber) if skipped else None
            )
        fingerprint = None
        if all(frame_parts for _, frame_parts in parts):
            fingerprint = fingerprint_for(_flatten(parts, []))
        outer = key[0][1][key[0][2] :] if key else ()
        return cls(tuple(parts), culprit_of(outer), tuple(frames), tuple(omitted), fingerprint)

    def parts_with(self, values: Sequence[str]) -> list[str]:
        """The fingerprint parts, using ``values`` for exceptions grouped by message."""
        return _flatten(self.parts, values)


def grouping_keys(infos: Sequence[FrameInfo], any_in_app: bool = True) -> list[str]:
    """The frames' grouping keys: the in-app frames, plus generated code at the crash site.

    Frames of comprehensions that Python 3.12+ inlines are left out; with no in-app frame in
    the whole chain (``any_in_app`` false), every frame counts.
    """
    last_in_app = max((i for i, info in enumerate(infos) if info.in_app), default=-1)
    return [
        info.group_key
        for i, info in enumerate(infos)
        if not info.inlined
        and (info.in_app or not any_in_app or (info.generated and i > last_in_app))
    ]


def _flatten(parts: Sequence[tuple[str, tuple[str, ...]]], values: Sequence[str]) -> list[str]:
    out: list[str] = []
    for index, (type_part, frame_parts) in enumerate(parts):
        out.append(type_part)
        if frame_parts:
            out.extend(frame_parts)
        else:
            out.append("value:" + parameterise_message(values[index]))
    return out


def culprit_of(infos: Sequence[FrameInfo]) -> str:
    """Sentry's culprit: ``module in function`` of the innermost in-app frame (or last frame)."""
    for info in reversed(infos):
        if info.in_app:
            return info.culprit
    return infos[-1].culprit if infos else ""


def kept_indexes(count: int) -> list[int]:
    """Which of ``count`` frames an event keeps: all, or the first and last halves."""
    if count <= MAX_FRAMES:
        return list(range(count))
    half = MAX_FRAMES // 2
    return [*range(half), *range(count - half, count)]


def frozen_sequence(items: list[Any], scrubber: Scrubber) -> ScrubbedSequence:
    """``items`` (already scrubbed by ``scrubber``) as a read-only sequence it will not re-clean."""
    frozen = ScrubbedSequence(items)
    frozen.scrubber = scrubber
    return frozen


def type_name(kind: type) -> str:
    """``module.Qualname`` of an exception type (just ``Qualname`` for builtins)."""
    module = getattr(kind, "__module__", "")
    name = getattr(kind, "__qualname__", "?")
    return name if module in ("builtins", "__builtin__", "exceptions") else f"{module}.{name}"


def safe_str(value: object) -> str:
    """``str(value)``, or a placeholder when ``__str__`` raises or returns a non-string."""
    try:
        text = str(value)
        if isinstance(text, str):
            return text
    except Exception:
        pass
    return f"<unprintable {safe_repr(type(value).__name__)}>"
