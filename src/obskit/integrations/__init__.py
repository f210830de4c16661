"""Integrations: web middleware and HTTP-client instrumentation, each installed explicitly.

Nothing here patches anything at import, and no framework is imported until you use its
integration:

===================================================  ======================================
``asgi.ObskitASGIMiddleware``                        Starlette, FastAPI, any ASGI 3 app
``wsgi.ObskitWSGIMiddleware``                        Flask, any WSGI app
``httpx.ObskitTransport``, ``ObskitAsyncTransport``  outgoing calls with httpx
``requests.instrument_session``                      outgoing calls with a requests session
``django.ObskitDjangoMiddleware``                    Django (first in ``MIDDLEWARE``)
``dbapi.wrap``                                       any DB-API 2 connection (sqlite3, ...)
``sqlalchemy.instrument``                            a SQLAlchemy engine (sync or async)
===================================================  ======================================

Context into threads and executors: :mod:`obskit.contextstack` (``ContextExecutor``,
``wrap``, ``run_in_executor``, ``to_thread``). The guide is docs/integrations.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ObskitASGIMiddleware", "ObskitWSGIMiddleware"]


def __getattr__(name: str) -> Any:
    if name == "ObskitASGIMiddleware":
        from obskit.integrations.asgi import ObskitASGIMiddleware

        return ObskitASGIMiddleware
    if name == "ObskitWSGIMiddleware":
        from obskit.integrations.wsgi import ObskitWSGIMiddleware

        return ObskitWSGIMiddleware
    raise AttributeError(f"module 'obskit.integrations' has no attribute {name!r}")
