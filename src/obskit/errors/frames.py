"""Stack frames of a traceback, with the per-code-location work cached.

Everything about a frame that depends only on where it is (module, function, file, the source
line, the normalised statement used for grouping, the in-app decision, the exported and
already-scrubbed frame dict) is computed once per ``(code object, line)`` and cached, so
capturing the same crash site again costs a dictionary lookup per frame. The cache keys on the
code object itself, so a module that is edited and reloaded gets fresh entries.

In-app, as in sentry-python: a frame whose module is listed in ``in_app_include`` (a module or
a package prefix) is in-app, one listed in ``in_app_exclude`` is not; otherwise frames of the
standard library, of ``site-packages`` / ``dist-packages`` and of obskit itself are not in-app,
and everything else is.
"""

from __future__ import annotations

import os
import re
import sysconfig
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from obskit.errors.fingerprint import normalise_source
from obskit.errors.source import source_at
from obskit.scrubbing import FILTERED, ScrubbedMapping, Scrubber, safe_repr

__all__ = ["FrameCache", "FrameInfo", "is_in_app", "module_in"]

_EXTERNAL = re.compile(r"[\\/](?:site|dist)-packages[\\/]")
_MAX_CACHED = 8192
MAX_LOCALS = 50
LOCAL_REPR_LIMIT = 256


def _stdlib_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {os.path.dirname(os.__file__)}
    found.update(paths[name] for name in ("stdlib", "platstdlib") if paths.get(name))
    prefixes = {os.path.normcase(os.path.realpath(path)) for path in found}
    prefixes.update(os.path.normcase(path) for path in found)
    return tuple(prefix.rstrip("\\/") + os.sep for prefix in prefixes)


_STDLIB = _stdlib_prefixes()


def module_in(module: str, names: Iterable[str]) -> bool:
    """Whether ``module`` is one of ``names`` or inside one of those packages."""
    return any(module == name or module.startswith(name + ".") for name in names)


def is_in_app(
    module: str | None,
    filename: str,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> bool:
    """The in-app decision for a frame of ``module`` in ``filename`` (see the module doc).

    >>> is_in_app("shop.checkout", "/srv/shop/checkout.py")
    True
    >>> is_in_app("requests.api", "/venv/lib/python3.12/site-packages/requests/api.py")
    False
    >>> is_in_app("requests.api", "/venv/lib/site-packages/requests/api.py", include=("requests",))
    True
    """
    if module:
        if module_in(module, include):
            return True
        if module_in(module, exclude) or module_in(module, ("obskit",)):
            return False
    if filename.startswith("<"):  # <string>, <stdin> are the app's; <frozen ...> is not
        return not filename.startswith("<frozen")
    if _EXTERNAL.search(filename):
        return False
    return not os.path.normcase(filename).startswith(_STDLIB)


@dataclass(frozen=True, slots=True, eq=False)
class FrameInfo:
    """What is known about one code location (compared and hashed by identity)."""

    frame: ScrubbedMapping
    #: ``module|function|normalised statement``: the frame's part of the fingerprint.
    group_key: str
    in_app: bool
    #: ``module in function``, Sentry's culprit form.
    culprit: str


class FrameCache:
    """Frame facts per ``(code object, line)`` for one set of in-app rules and one scrubber."""

    def __init__(
        self,
        scrubber: Scrubber,
        in_app_include: Iterable[str] = (),
        in_app_exclude: Iterable[str] = (),
    ) -> None:
        self.scrubber = scrubber
        self.in_app_include = tuple(in_app_include)
        self.in_app_exclude = tuple(in_app_exclude)
        self._entries: dict[tuple[int, int], tuple[CodeType, FrameInfo]] = {}
        self._lock = threading.Lock()

    def info(self, code: CodeType, lineno: int, frame: FrameType) -> FrameInfo:
        """The cached facts for this location (computed on first sight)."""
        key = (id(code), lineno)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is code:
            return entry[1]
        info = self._build(code, lineno, frame.f_globals)
        with self._lock:
            if len(self._entries) >= _MAX_CACHED:
                self._entries.clear()
            self._entries[key] = (code, info)  # holding the code keeps its id from reuse
        return info

    def _build(self, code: CodeType, lineno: int, module_globals: dict[str, Any]) -> FrameInfo:
        filename = code.co_filename
        module = module_globals.get("__name__") if isinstance(module_globals, dict) else None
        module = module if isinstance(module, str) else None
        function = getattr(code, "co_qualname", code.co_name)
        in_app = is_in_app(module, filename, self.in_app_include, self.in_app_exclude)
        line, statement = source_at(filename, lineno, module_globals)
        where = module or os.path.basename(filename).lower()
        group_key = f"{where}|{function}|{normalise_source(statement) if statement else ''}"
        raw = {
            "module": module,
            "function": function,
            "filename": _short_filename(filename, module),
            "abs_path": filename,
            "lineno": lineno,
            "context_line": line,
            "in_app": in_app,
        }
        frame = ScrubbedMapping(self.scrubber.clean_mapping(raw), self.scrubber)
        return FrameInfo(frame, group_key, in_app, f"{where} in {function}")

    def with_locals(self, info: FrameInfo, frame: FrameType) -> ScrubbedMapping:
        """The frame dict plus its local variables, repr-truncated and scrubbed."""
        scrubber = self.scrubber
        variables: dict[str, Any] = {}
        try:
            items = list(frame.f_locals.items())[:MAX_LOCALS]
        except Exception:
            items = []
        for name, value in items:
            name = str(name)
            if scrubber.is_denied_key(name):
                variables[name] = FILTERED
                continue
            if isinstance(value, (str, dict, list, tuple, set, frozenset)):
                # Scrub before repr: escapes like \n would hide secrets from the patterns,
                # and denied keys inside containers are found by key.
                value = scrubber.clean_value(value)
            # Scrub the long repr, then cut it: no half of a secret survives the cut.
            variables[name] = _clip(scrubber.clean_text(safe_repr(value, 4 * LOCAL_REPR_LIMIT)))
        frozen = ScrubbedMapping(variables, scrubber)
        return ScrubbedMapping({**info.frame, "vars": frozen}, scrubber)


def _clip(text: str) -> str:
    if len(text) > LOCAL_REPR_LIMIT:
        return f"{text[:LOCAL_REPR_LIMIT]}...[truncated]"
    return text


def _short_filename(filename: str, module: str | None) -> str:
    """The path relative to the import root (``shop/checkout.py``), as Sentry shows it."""
    if not module or filename.startswith("<"):
        return filename
    parts = re.split(r"[\\/]", filename)
    keep = module.count(".") + 1
    if parts[-1].startswith("__init__."):
        keep += 1
    return "/".join(parts[-keep:]) if len(parts) >= keep else filename
