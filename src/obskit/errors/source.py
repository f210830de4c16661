"""Source text at a crash site: the line for display, the whole statement for grouping.

A traceback names one line, but a formatter may spread one statement over several (or join
several into one), so the grouping key uses the whole statement that holds the line: for a
simple statement all of its lines, for a compound one (``if``, ``for``, ``def``, ``except``,
...) only its header. Statement boundaries come from parsing the file once with :mod:`ast`;
the parse is cached while :mod:`linecache` holds the same text, so a module rewritten and
reloaded is parsed again. Files that cannot be read or parsed fall back to the single line.
"""

from __future__ import annotations

import ast
import linecache
import threading
from typing import Any

__all__ = ["qualname_at", "reset_after_fork", "source_at"]

#: Files bigger than this are not parsed (one huge parse would stall the capture).
MAX_PARSED_CHARS = 2_000_000
_MAX_CACHED_FILES = 512

_lock = threading.Lock()
# filename -> (the linecache lines it was built from, {line: (first, last)} of multi-line spans)
_spans_by_file: dict[str, tuple[list[str], dict[int, tuple[int, int]]]] = {}
# filename -> (the linecache lines, [(first, last, qualname)] of its functions and classes)
_scopes_by_file: dict[str, tuple[list[str], list[tuple[int, int, str, bool]]]] = {}


def source_at(
    filename: str, lineno: int, module_globals: dict[str, Any] | None
) -> tuple[str | None, str | None]:
    """``(line, statement)`` at ``lineno`` of ``filename``, or ``(None, None)`` if unreadable."""
    if lineno < 1:
        return None, None
    linecache.checkcache(filename)
    lines = linecache.getlines(filename, module_globals)
    if not lines or lineno > len(lines):
        return None, None
    line = lines[lineno - 1].strip()
    first, last = _statement_spans(filename, lines).get(lineno, (lineno, lineno))
    statement = "".join(lines[first - 1 : last]) if last > first else line
    return line, statement


def _statement_spans(filename: str, lines: list[str]) -> dict[int, tuple[int, int]]:
    cached = _spans_by_file.get(filename)
    if cached is not None and cached[0] is lines:
        return cached[1]
    spans = _parse_spans(lines)
    with _lock:
        if len(_spans_by_file) >= _MAX_CACHED_FILES:
            _spans_by_file.clear()
        _spans_by_file[filename] = (lines, spans)
    return spans


def _parse_spans(lines: list[str]) -> dict[int, tuple[int, int]]:
    """For every line inside a multi-line statement (or header): that statement's line span."""
    text = "".join(lines)
    if len(text) > MAX_PARSED_CHARS:
        return {}
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return {}
    spans: dict[int, tuple[int, int]] = {}
    # ast.walk goes outside-in, so an inner statement's span overwrites its parent's.
    for node in ast.walk(tree):
        if not isinstance(node, (ast.stmt, ast.ExceptHandler)):
            continue
        first = node.lineno
        last = node.end_lineno or first
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.AST):
            # A compound statement: only its header, up to the line before its body.
            last = max(first, getattr(body[0], "lineno", first) - 1)
        if last > first:
            for number in range(first, last + 1):
                spans[number] = (first, last)
        elif first in spans and spans[first][0] != first:
            del spans[first]  # a one-line statement inside a wider parent's span
    return spans


def qualname_at(filename: str, lineno: int, name: str) -> str | None:
    """The ``__qualname__`` of the function ``name`` running at ``lineno`` of ``filename``.

    For frames known only from a traceback's text, which names a function but not its class
    or enclosing function. ``None`` when the file cannot be read or parsed.
    """
    lines = linecache.getlines(filename)
    if not lines:
        return None
    cached = _scopes_by_file.get(filename)
    if cached is None or cached[0] is not lines:
        cached = (lines, _parse_scopes(lines))
        with _lock:
            if len(_scopes_by_file) >= _MAX_CACHED_FILES:
                _scopes_by_file.clear()
            _scopes_by_file[filename] = cached
    if name == "<module>":
        return name
    enclosing = ""
    is_function = False
    for first, last, qualname, function in cached[1]:  # outer scopes come first
        if first <= lineno <= last:
            enclosing, is_function = qualname, function
    if not enclosing:
        return name
    if enclosing.rsplit(".", 1)[-1] == name:
        return enclosing
    if name.startswith("<"):  # a lambda, comprehension or generator expression inside it
        return f"{enclosing}.<locals>.{name}" if is_function else f"{enclosing}.{name}"
    return None


def _parse_scopes(lines: list[str]) -> list[tuple[int, int, str, bool]]:
    """``(first line, last line, qualname, is a function)`` of every def and class."""
    text = "".join(lines)
    if len(text) > MAX_PARSED_CHARS:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    scopes: list[tuple[int, int, str, bool]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                qualname = prefix + child.name
                function = not isinstance(child, ast.ClassDef)
                scopes.append((child.lineno, child.end_lineno or child.lineno, qualname, function))
                visit(child, qualname + (".<locals>." if function else "."))
            else:
                visit(child, prefix)

    visit(tree, "")
    return scopes


def reset_after_fork() -> None:
    """A fresh lock in a forked child (the parent's may have been held at the fork)."""
    global _lock
    _lock = threading.Lock()
