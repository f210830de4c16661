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

Generated code (a frame whose file is a ``<...>`` pseudo-file: ``<string>``, a template's
``<template:orders>``, the ``decorator`` package's ``<decorator-gen-12>``) is never in-app unless
``in_app_include`` names it (``"<template>"`` matches ``<template...>`` files). Its grouping key
is the code object's identity (a hash of its bytecode, names and constants, and the line
relative to the function's first line), with counters in the file name normalised: the same
generated function groups alike whether or not its source was registered in :mod:`linecache`,
and two different generated functions group apart. A frame of a real file whose source cannot
be read gets the same code identity instead of a statement.

Comprehensions: Python 3.12 inlines list, dict and set comprehensions (PEP 709), so their
``<listcomp>`` frames disappear and names nested in them lose the ``<listcomp>.`` part. Grouping
leaves those frames out and drops those name parts on every version, so an upgrade from 3.11
keeps every fingerprint. Generator expressions and lambdas keep their frames on all versions.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import sysconfig
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

from obskit.errors.fingerprint import normalise_source
from obskit.errors.source import qualname_at, source_at
from obskit.scrubbing import FILTERED, ScrubbedMapping, Scrubber, safe_repr

__all__ = [
    "FrameCache",
    "FrameInfo",
    "code_identity",
    "is_generated",
    "is_in_app",
    "module_in",
    "normalise_function",
    "normalise_pseudo_file",
]

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


def is_generated(filename: str) -> bool:
    """Whether ``filename`` is a pseudo-file of generated code (``<string>``, ``<template:x>``)."""
    return filename.startswith("<") and not filename.startswith("<frozen")


_COUNTER = re.compile(r"\d+")


def normalise_pseudo_file(filename: str) -> str:
    """A pseudo-file name with its counters replaced (``<decorator-gen-12>``: ``-gen-N``).

    >>> normalise_pseudo_file("<decorator-gen-12>")
    '<decorator-gen-N>'
    """
    return _COUNTER.sub("N", filename)


_INLINED = frozenset({"<listcomp>", "<dictcomp>", "<setcomp>"})
_INLINED_PART = re.compile(r"<(?:list|dict|set)comp>\.(?:<locals>\.)?")
_INLINED_TAIL = re.compile(r"(?:\.<locals>)?\.<(?:list|dict|set)comp>$")


def normalise_function(qualname: str) -> str:
    """``qualname`` as Python 3.12+ spells it: comprehension scopes (PEP 709) taken out.

    >>> normalise_function("f.<locals>.<listcomp>.<listcomp>.<lambda>")
    'f.<locals>.<lambda>'
    >>> normalise_function("Cart.total.<locals>.<dictcomp>")
    'Cart.total'
    """
    if "comp>" not in qualname:
        return qualname
    return _INLINED_TAIL.sub("", _INLINED_PART.sub("", qualname))


def code_identity(code: CodeType) -> str:
    """A hash of what a code object does: bytecode, names, constants (nested code included)."""
    digest = hashlib.blake2b(digest_size=8)
    _feed_code(digest, code)
    return digest.hexdigest()


def _feed_code(digest: Any, code: CodeType) -> None:
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_argcount)).encode())
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            _feed_code(digest, constant)
        else:
            digest.update(_stable_repr(constant).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")


def _stable_repr(value: Any) -> str:
    """``repr``, but frozensets sorted (their order changes with the hash seed)."""
    if isinstance(value, frozenset):
        return "frozenset(" + repr(sorted(_stable_repr(item) for item in value)) + ")"
    if isinstance(value, tuple):
        return "(" + ",".join(_stable_repr(item) for item in value) + ")"
    return repr(value)


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
    >>> is_in_app(None, "<template:orders>"), is_in_app(None, "<template:orders>", ("<template>",))
    (False, True)
    """
    if filename.startswith("<"):  # generated code, or <frozen ...> of the standard library
        return is_generated(filename) and any(
            name.startswith("<") and filename.startswith(name.rstrip(">")) for name in include
        )
    if module:
        if module_in(module, include):
            return True
        if module_in(module, exclude) or module_in(module, ("obskit",)):
            return False
    if _EXTERNAL.search(filename):
        return False
    return not os.path.normcase(filename).startswith(_STDLIB)


@dataclass(frozen=True, slots=True, eq=False)
class FrameInfo:
    """What is known about one code location (compared and hashed by identity)."""

    frame: ScrubbedMapping
    #: ``module|function|normalised statement`` (or ``|code:<identity>``): the fingerprint part.
    group_key: str
    in_app: bool
    #: ``module in function``, Sentry's culprit form.
    culprit: str
    #: Generated code (a ``<...>`` pseudo-file): groups by its code when at the crash site.
    generated: bool = False
    #: A comprehension frame that Python 3.12+ inlines: left out of grouping.
    inlined: bool = False


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
        self._remote: dict[tuple[str, int, str], FrameInfo] = {}
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
        line, statement = source_at(filename, lineno, module_globals)
        identity = None
        if statement is None or is_generated(filename):
            identity = f"code:{code_identity(code)}:{lineno - code.co_firstlineno}"
        return self._info(module, filename, function, lineno, line, statement, identity)

    def remote_info(self, filename: str, lineno: int, name: str, line: str | None) -> FrameInfo:
        """Facts for a frame read from a traceback's text (a worker process's, say)."""
        key = (filename, lineno, name)
        info = self._remote.get(key)
        if info is None:
            module = module_of_file(filename)
            function = qualname_at(filename, lineno, name) or name
            here, statement = source_at(filename, lineno, None)
            if here is None or (line and here != line):
                statement = line  # the worker ran other code than this file holds now
            info = self._info(module, filename, function, lineno, line, statement, None)
            with self._lock:
                if len(self._remote) >= _MAX_CACHED:
                    self._remote.clear()
                self._remote[key] = info
        return info

    def _info(
        self,
        module: str | None,
        filename: str,
        function: str,
        lineno: int,
        line: str | None,
        statement: str | None,
        identity: str | None,
    ) -> FrameInfo:
        generated = is_generated(filename)
        in_app = is_in_app(module, filename, self.in_app_include, self.in_app_exclude)
        where = module or (
            normalise_pseudo_file(filename) if generated else os.path.basename(filename).lower()
        )
        grouped = normalise_function(function)
        if identity is None:
            identity = normalise_source(statement) if statement else ""
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
        inlined = function.rsplit(".", 1)[-1] in _INLINED
        return FrameInfo(
            frame=frame,
            group_key=f"{where}|{grouped}|{identity}",
            in_app=in_app,
            culprit=f"{where} in {grouped}",
            generated=generated,
            inlined=inlined,
        )

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


_modules_by_file: dict[str, str] = {}
_modules_seen = 0


def module_of_file(filename: str) -> str | None:
    """The name of the imported module loaded from ``filename``, if any."""
    global _modules_by_file, _modules_seen
    if len(sys.modules) != _modules_seen:
        found: dict[str, str] = {}
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str):
                found[os.path.normcase(os.path.realpath(path))] = name
        _modules_by_file = found  # swapped whole: a reader never sees it half built
        _modules_seen = len(sys.modules)
    return _modules_by_file.get(os.path.normcase(os.path.realpath(filename)))


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
