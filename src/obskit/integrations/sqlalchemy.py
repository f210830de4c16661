"""``instrument(engine)``: every statement a SQLAlchemy engine runs as a database client call.

Install it explicitly, once per engine (an ``AsyncEngine`` works too)::

    from sqlalchemy import create_engine
    from obskit.integrations import sqlalchemy as obskit_sqlalchemy

    engine = create_engine("sqlite:///shop.db")
    obskit_sqlalchemy.instrument(engine)

It listens to the engine's ``before_cursor_execute``, ``after_cursor_execute`` and
``handle_error`` events (nothing is patched) and records what :mod:`obskit.integrations.dbapi`
records: a client span named ``SELECT items`` inside a trace, ``db.client.operation.duration``,
a ``query`` breadcrumb and a slow-statement warning; ``db.system`` is the dialect's name.
Parameters are never read; literals in the text are replaced by ``?``.
"""

from __future__ import annotations

from typing import Any

from obskit import diagnostics
from obskit.diagnostics import ConfigError
from obskit.integrations._sql import Statement, summarise

__all__ = ["instrument", "uninstrument"]

_KEY = "_obskit_statement"
_SYSTEMS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb", "mssql": "mssql"}


def instrument(engine: Any, *, slow_ms: float | None = None) -> Any:
    """Record every statement ``engine`` runs; returns the engine. Idempotent."""
    from sqlalchemy import event

    target = getattr(engine, "sync_engine", engine)  # an AsyncEngine's synchronous core
    dialect = getattr(target, "dialect", None)
    if dialect is None:
        raise ConfigError(f"instrument() needs a SQLAlchemy Engine, got {type(engine).__name__}")
    if getattr(target, "_obskit_listeners", None) is not None:
        return engine
    system = _SYSTEMS.get(dialect.name, dialect.name)

    def before(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any
    ) -> None:
        try:
            batch = len(params) if many and isinstance(params, (list, tuple)) else None
            started = Statement(summarise(statement, system), system, slow_ms, batch)
            if context is not None:
                setattr(context, _KEY, started)
        except Exception as exc:
            diagnostics.report("sqlalchemy", f"could not start a statement: {exc!r}")

    def after(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any) -> None:
        started = getattr(context, _KEY, None)
        if started is not None:
            setattr(context, _KEY, None)
            started.end(None)

    def failed(exception_context: Any) -> None:
        context = getattr(exception_context, "execution_context", None)
        started = getattr(context, _KEY, None)
        if started is not None:
            setattr(context, _KEY, None)
            started.end(exception_context.original_exception)

    listeners: list[tuple[str, Any]] = [
        ("before_cursor_execute", before),
        ("after_cursor_execute", after),
        ("handle_error", failed),
    ]
    for name, function in listeners:
        event.listen(target, name, function)
    target._obskit_listeners = listeners
    return engine


def uninstrument(engine: Any) -> None:
    """Stop recording ``engine``'s statements."""
    from sqlalchemy import event

    target = getattr(engine, "sync_engine", engine)
    for name, function in getattr(target, "_obskit_listeners", None) or ():
        event.remove(target, name, function)
    target._obskit_listeners = None
