"""``wrap(connection)``: every statement of a DB-API 2 connection as a database client call.

Install it explicitly, on the connection you already have::

    import sqlite3
    from obskit.integrations import dbapi

    conn = dbapi.wrap(sqlite3.connect("shop.db"))
    conn.execute("SELECT name FROM items WHERE id = ?", (42,))

The wrapped connection behaves as the original (attributes, context manager, ``commit``);
``cursor()`` returns wrapped cursors and ``execute``/``executemany`` on either one record:
a client span named ``SELECT items`` inside a trace, ``db.client.operation.duration``, a
``query`` breadcrumb and, past ``slow_ms`` (default: the ``slow_ms`` setting), one warning.
The statement text is recorded with its literals replaced by ``?``; parameters are never read.
See :mod:`obskit.integrations._sql` for the attributes.
"""

from __future__ import annotations

from typing import Any

import wrapt

from obskit.integrations._sql import run, summarise, system_of

__all__ = ["wrap"]


def wrap(connection: Any, *, db_system: str | None = None, slow_ms: float | None = None) -> Any:
    """``connection`` (any DB-API 2 connection), instrumented; ``db_system`` overrides the
    ``db.system`` guessed from the driver (``sqlite``, ``postgresql``, ``mysql``, ...)."""
    if isinstance(connection, _Connection):
        return connection
    system = db_system or system_of(connection)
    return _Connection(connection, system, slow_ms)


class _Instrumented(wrapt.ObjectProxy):  # type: ignore[misc,type-arg]
    """What cursors and connections share: ``execute`` and ``executemany`` recorded."""

    def __init__(self, wrapped: Any, system: str, slow_ms: float | None) -> None:
        super().__init__(wrapped)
        self._self_system = system
        self._self_slow_ms = slow_ms

    def execute(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        wrapped = self.__wrapped__
        result = run(
            summarise(operation, self._self_system),
            self._self_system,
            self._self_slow_ms,
            lambda: wrapped.execute(operation, *args, **kwargs),
        )
        return self._result(result)

    def executemany(self, operation: Any, seq_of_parameters: Any, *args: Any, **kw: Any) -> Any:
        wrapped = self.__wrapped__
        try:
            batch: int | None = len(seq_of_parameters)
        except TypeError:  # an iterator: not consumed here to count it
            batch = None
        result = run(
            summarise(operation, self._self_system),
            self._self_system,
            self._self_slow_ms,
            lambda: wrapped.executemany(operation, seq_of_parameters, *args, **kw),
            batch,
        )
        return self._result(result)

    def _result(self, result: Any) -> Any:
        return result


class _Cursor(_Instrumented):
    def _result(self, result: Any) -> Any:
        # sqlite3's Cursor.execute returns the cursor itself: hand back the wrapped one
        return self if result is self.__wrapped__ else result

    def __iter__(self) -> Any:
        return iter(self.__wrapped__)


class _Connection(_Instrumented):
    def cursor(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(
            self.__wrapped__.cursor(*args, **kwargs), self._self_system, self._self_slow_ms
        )

    def _result(self, result: Any) -> Any:
        # sqlite3's Connection.execute returns a new cursor: wrap it, so its later calls count
        if hasattr(result, "execute") and hasattr(result, "fetchone"):
            return _Cursor(result, self._self_system, self._self_slow_ms)
        return result

    def __enter__(self) -> _Connection:
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self.__wrapped__.__exit__(*exc_info)
