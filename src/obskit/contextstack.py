"""The context stack behind ``obskit.context``: fields every record inside a scope carries.

(The module is not called ``context`` because ``obskit.context`` is the scope itself.)

It lives in one :class:`contextvars.ContextVar` holding an immutable mapping, so

* nested ``with obskit.context(...)`` scopes merge (inner wins) and leaving a scope restores
  exactly the outer mapping, even when an exception passes through;
* concurrent asyncio tasks never see each other's fields (each task runs in a copy of the
  context taken when it was created);
* a new thread starts empty; :func:`wrap`, :func:`submit` and :class:`ContextExecutor` carry the
  current fields into threads and executors explicitly.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "ContextExecutor",
    "bind",
    "context",
    "current_context",
    "enter",
    "get_tags",
    "late_fields",
    "leave",
    "run_in_executor",
    "set_late_fields",
    "set_tags",
    "to_thread",
    "unbind",
    "wrap",
]

P = ParamSpec("P")
R = TypeVar("R")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "obskit_context", default=_EMPTY
)


#: Tags (short, indexed key/values: tenant, region) of the current scope; inner values win.
_tags: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "obskit_tags", default=_EMPTY
)
#: Fields only known part-way through a scope (a route template once the framework has
#: routed), computed when a record asks: a function returning them, set by the request scope.
_late: contextvars.ContextVar[Callable[[], Mapping[str, Any]] | None] = contextvars.ContextVar(
    "obskit_late_fields", default=None
)


def current_context() -> dict[str, Any]:
    """A copy of the fields in scope here (innermost values win)."""
    fields = dict(_fields.get())
    fields.update(late_fields())
    return fields


def get_tags() -> Mapping[str, Any]:
    """The tags in scope here, read-only (``obskit.set_tags``, ``context(tags=...)``)."""
    return _tags.get()


def set_tags(**tags: Any) -> None:
    """Add tags to the current scope until it ends (inner values win), like :func:`bind`.

    They go on every error event and span made in this scope (and so on OTLP attributes).

    >>> with context(tags={"tenant": "acme"}):
    ...     set_tags(region="eu")
    ...     dict(get_tags())
    {'tenant': 'acme', 'region': 'eu'}
    >>> dict(get_tags())
    {}
    """
    _tags.set(MappingProxyType({**_tags.get(), **tags}))


def set_late_fields(
    source: Callable[[], Mapping[str, Any]] | None,
) -> contextvars.Token[Callable[[], Mapping[str, Any]] | None]:
    """Make ``source()`` add fields to records of the current scope (``None``: stop)."""
    return _late.set(source)


def reset_late_fields(token: contextvars.Token[Callable[[], Mapping[str, Any]] | None]) -> None:
    """Undo :func:`set_late_fields`."""
    _late.reset(token)


def late_fields() -> Mapping[str, Any]:
    """The late fields of the current scope (empty when none, or when the source fails)."""
    source = _late.get()
    if source is None:
        return _EMPTY
    try:
        return source()
    except Exception:
        return _EMPTY


def get_fields() -> Mapping[str, Any]:
    """The fields in scope, read-only and uncopied (for the logger's hot path)."""
    return _fields.get()


#: What :func:`enter` returns and :func:`leave` takes.
ScopeToken = tuple[Any, Any, Any]


def enter(
    fields: Mapping[str, Any],
    tags: Mapping[str, Any] | None = None,
    late: Callable[[], Mapping[str, Any]] | None = None,
) -> ScopeToken:
    """Open a scope adding ``fields`` (and ``tags``, and a :func:`set_late_fields` source) in
    one step, without a :class:`context` object; :func:`leave` closes it. For ``obskit.request``,
    which opens one per request.

    >>> token = enter({"request_id": "r-1"})
    >>> current_context()
    {'request_id': 'r-1'}
    >>> leave(token); current_context()
    {}
    """
    token = _fields.set(MappingProxyType({**_fields.get(), **fields}))
    tags_token = _tags.set(MappingProxyType({**_tags.get(), **tags})) if tags else None
    late_token = _late.set(late) if late is not None else None
    return token, tags_token, late_token


def leave(token: ScopeToken) -> None:
    """Close a scope :func:`enter` opened (in the context it was opened in)."""
    fields_token, tags_token, late_token = token
    if late_token is not None:
        _late.reset(late_token)
    if tags_token is not None:
        _tags.reset(tags_token)
    _fields.reset(fields_token)


class context:
    """A scope that adds fields to everything logged or captured inside it.

    Works as a sync or async context manager, and as a decorator.

    >>> with context(request_id="r-1"):
    ...     with context(user_id="u-9", request_id="r-2"):
    ...         current_context()
    {'request_id': 'r-2', 'user_id': 'u-9'}
    >>> current_context()
    {}
    """

    __slots__ = ("_new", "_tags", "_tokens")

    def __init__(self, *, tags: Mapping[str, Any] | None = None, **fields: Any) -> None:
        self._new = fields
        self._tags = tags
        self._tokens: list[tuple[Any, Any]] = []

    def __enter__(self) -> dict[str, Any]:
        merged = {**_fields.get(), **self._new}
        token = _fields.set(MappingProxyType(merged))
        tags_token = None
        if self._tags:  # ``tags=`` scopes tags (error events, spans), not context fields
            tags_token = _tags.set(MappingProxyType({**_tags.get(), **self._tags}))
        self._tokens.append((token, tags_token))
        return merged

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, tags_token = self._tokens.pop()
        if tags_token is not None:
            _tags.reset(tags_token)
        _fields.reset(token)

    async def __aenter__(self) -> dict[str, Any]:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        fields, tags = self._new, self._tags
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_scoped(*args: P.args, **kwargs: P.kwargs) -> Any:
                with context(tags=tags, **fields):
                    return await fn(*args, **kwargs)  # type: ignore[misc]

            return async_scoped  # type: ignore[return-value]

        @functools.wraps(fn)
        def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
            with context(tags=tags, **fields):
                return fn(*args, **kwargs)

        return scoped


def bind(**fields: Any) -> None:
    """Add fields to the current scope until it ends (like structlog's ``bind_contextvars``).

    In an asyncio task the fields stay in that task; at top level they stay until ``unbind``.
    """
    _fields.set(MappingProxyType({**_fields.get(), **fields}))


def unbind(*names: str) -> None:
    """Remove fields from the current scope."""
    current = _fields.get()
    _fields.set(MappingProxyType({k: v for k, v in current.items() if k not in names}))


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind ``fn`` to a copy of the current context, to run it later in another thread."""
    snapshot = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_snapshot(*args: P.args, **kwargs: P.kwargs) -> R:
        # A Context can be entered by one thread at a time: run in a fresh copy each call.
        return snapshot.copy().run(fn, *args, **kwargs)

    return run_in_snapshot


class ContextExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` whose tasks run in the submitter's context."""

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        snapshot = contextvars.copy_context()
        return super().submit(snapshot.run, fn, *args, **kwargs)


async def to_thread(fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> R:
    """``asyncio.to_thread``, which already copies the context: here so one import has all."""
    import asyncio

    return await asyncio.to_thread(fn, *args, **kwargs)


def run_in_executor(executor: Any, fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
    """``loop.run_in_executor`` that runs ``fn`` in the caller's context (the stdlib does not)."""
    import asyncio

    loop = asyncio.get_running_loop()
    snapshot = contextvars.copy_context()
    return loop.run_in_executor(executor, snapshot.run, fn, *args)  # type: ignore[arg-type]
