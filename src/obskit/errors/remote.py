"""Tracebacks that crossed a process boundary, read back from their text.

``multiprocessing.Pool`` and ``concurrent.futures.ProcessPoolExecutor`` run a function in a
worker process; when it raises, the parent re-raises the same exception type with only the
pool's own frames, and sets its ``__cause__`` to a ``RemoteTraceback`` (``_RemoteTraceback`` for
``concurrent.futures``) that holds the worker's traceback as text. :func:`remote_traceback_text`
finds that text and :func:`parse_traceback` turns it back into frames, so the error groups by
the worker's in-app frames, as if it had been raised in this process.

>>> text = '''Traceback (most recent call last):
...   File "/srv/app/jobs.py", line 7, in work
...     return 1 / count
...            ~~^~~~~~~
... ZeroDivisionError: division by zero'''
>>> (block,) = parse_traceback(text)
>>> block.type_name, block.value, block.frames[0]
('ZeroDivisionError', 'division by zero', ('/srv/app/jobs.py', 7, 'work', 'return 1 / count'))
"""

from __future__ import annotations

import re
from typing import NamedTuple

__all__ = [
    "RemoteException",
    "RemoteFrame",
    "is_remote_traceback",
    "parse_traceback",
    "remote_traceback_text",
]

_REMOTE_TYPES = frozenset({"RemoteTraceback", "_RemoteTraceback"})
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<name>.+)$')
_CHAIN_SEPARATORS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_MAX_TEXT = 200_000


#: ``(filename, line number, function name, source line or None)``
RemoteFrame = tuple[str, int, str, str | None]


class RemoteException(NamedTuple):
    """One exception of a traceback's text: its frames (outermost first), type and message."""

    frames: list[RemoteFrame]
    type_name: str
    value: str


def is_remote_traceback(exc: BaseException) -> bool:
    """Whether ``exc`` is the text-holding cause that process pools attach."""
    return type(exc).__name__ in _REMOTE_TYPES and isinstance(getattr(exc, "tb", None), str)


def remote_traceback_text(exc: BaseException) -> str | None:
    """The worker's traceback text when ``exc`` came back from a process pool, else ``None``."""
    cause = exc.__cause__
    if cause is not None and is_remote_traceback(cause):
        text = getattr(cause, "tb", None)
        return text if isinstance(text, str) else None
    return None


def parse_traceback(text: str) -> list[RemoteException]:
    """The exceptions of a formatted traceback, the last raised first (as in a local chain)."""
    blocks: list[list[str]] = [[]]
    for line in text[:_MAX_TEXT].strip().strip('"').splitlines():
        if line.strip() in _CHAIN_SEPARATORS:
            blocks.append([])
        else:
            blocks[-1].append(line)
    parsed = [found for block in blocks if (found := _parse_block(block)) is not None]
    return parsed[::-1]


def _parse_block(lines: list[str]) -> RemoteException | None:
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Traceback ("))
    except StopIteration:
        return None
    frames: list[RemoteFrame] = []
    index = start + 1
    while index < len(lines):
        match = _FRAME.match(lines[index])
        if match is None:
            if lines[index].startswith("    ") or not lines[index].strip():
                index += 1  # a source line's carets, or a "[Previous line repeated]" note
                continue
            break
        following = lines[index + 1] if index + 1 < len(lines) else ""
        has_source = following.startswith("    ") and _FRAME.match(following) is None
        source = following.strip() if has_source else None
        frames.append((match["file"], int(match["line"]), match["name"], source))
        index += 2 if has_source else 1
    if index >= len(lines):
        return None
    type_name, _, value = "\n".join(lines[index:]).partition(":")
    return RemoteException(frames, type_name.strip(), value.strip())
