"""Which function renders which path (the first path segment)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from obskit.dashboard._explore import explore_page
from obskit.dashboard._group import group_page
from obskit.dashboard._layout import Page, View
from obskit.dashboard._logs import logs_page
from obskit.dashboard._overview import overview_page
from obskit.dashboard._trace import trace_page
from obskit.store import Store

__all__ = ["ROUTES", "WITH_ID"]

Handler = Callable[[Store, View, str], "Page | dict[str, Any]"]

ROUTES: dict[str, Handler] = {
    "": overview_page,
    "errors": group_page,
    "traces": trace_page,
    "logs": logs_page,
    "explore": explore_page,
}
#: Paths that take one more segment: /errors/<fingerprint>, /traces/<trace id>, /logs/tail.
WITH_ID = frozenset({"errors", "traces", "logs"})
