"""The page shell every dashboard page shares: header, navigation, range picker, notices."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from obskit.dashboard._html import Html, join, url
from obskit.dashboard._queries import RANGES, Window

__all__ = [
    "REFRESH_CHOICES",
    "Page",
    "View",
    "facts",
    "notice",
    "section",
    "static_file",
    "static_url",
]

#: Auto-refresh choices in seconds (0 = off).
REFRESH_CHOICES = (0, 10, 30, 60)
_STATIC = ("dashboard.css", "dashboard.js")


@dataclass
class View:
    """What one request asks to see: the window, the mount prefix, the query parameters."""

    prefix: str
    path: str
    params: dict[str, str]
    window: Window
    now: float
    store_name: str = ""

    def link(self, path: str, **params: Any) -> str:
        """A URL to ``path`` under the mount, keeping the window (range, end, refresh)."""
        kept = {k: self.params.get(k) for k in ("range", "end", "refresh")}
        kept.update(params)
        return url(self.prefix + path, kept)

    def here(self, **params: Any) -> str:
        """This page's URL with some parameters changed (``None`` removes one)."""
        merged: dict[str, Any] = dict(self.params)
        merged.update(params)
        return url(self.prefix + self.path, merged)


@dataclass
class Page:
    """A rendered page: title, main content, and the HTTP status to answer with."""

    title: str
    body: Html
    status: int = 200
    nav: str = ""
    notices: list[Html] = field(default_factory=list)
    ranged: bool = True

    def render(self, view: View) -> str:
        nav = join(
            Html('<a href="{}"{}>{}</a>').format(
                view.link(path),
                Html(' aria-current="page"') if key == self.nav else Html(""),
                label,
            )
            for key, path, label in (
                ("overview", "/", "Overview"),
                ("logs", "/logs", "Logs"),
                ("explore", "/explore", "Metrics"),
            )
        )
        return Html(_SHELL).format(
            title=self.title,
            css=static_url(view.prefix, "dashboard.css"),
            js=static_url(view.prefix, "dashboard.js"),
            refresh=view.params.get("refresh", "0"),
            home=view.link("/"),
            store=view.store_name,
            nav=nav,
            picker=_picker(view) if self.ranged else Html(""),
            notices=join(self.notices),
            body=self.body,
        )


_SHELL = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{title} · obskit</title>
<link rel="stylesheet" href="{css}">
<script src="{js}" defer></script>
</head><body data-refresh="{refresh}">
<header class="top">
<a class="brand" href="{home}"><span class="logo" aria-hidden="true"></span>obskit</a>
<nav class="tabs">{nav}</nav>
{picker}
<span class="store" title="the SQLite store this dashboard reads">{store}</span>
</header>
<main>{notices}{body}</main>
</body></html>
"""


def _picker(view: View) -> Html:
    ranges = join(
        Html('<a href="{}"{}>{}</a>').format(
            view.here(range=name),
            Html(' aria-current="true"') if name == view.window.name else Html(""),
            name,
        )
        for name in RANGES
    )
    current = view.params.get("refresh", "0")
    options = join(
        Html('<option value="{}"{}>{}</option>').format(
            seconds,
            Html(" selected") if str(seconds) == current else Html(""),
            f"every {seconds}s" if seconds else "off",
        )
        for seconds in REFRESH_CHOICES
    )
    ended = Html("")
    if view.params.get("end"):
        ended = Html('<a class="live" href="{}" title="show up to now">until {} · now</a>').format(
            view.here(end=None), _short_time(view.window.end)
        )
    return Html(
        '<div class="picker"><span class="ranges" role="group" aria-label="time range">{}</span>'
        '{}<label class="refresh">auto-refresh <select id="refresh" name="refresh">{}</select>'
        "</label></div>"
    ).format(ranges, ended, options)


def _short_time(ts: float) -> str:
    import time

    return time.strftime("%b %d %H:%M", time.localtime(ts))


def section(title: str, body: Html, *, note: str | Html = "", anchor: str = "") -> Html:
    """A titled card."""
    return Html('<section class="card"{}><h2>{}{}</h2>{}</section>').format(
        Html(' id="{}"').format(anchor) if anchor else Html(""),
        title,
        Html(" <small>{}</small>").format(note) if note else Html(""),
        body,
    )


def facts(pairs: list[tuple[str, Any]]) -> Html:
    """A row of labelled values (the head of a group or trace page)."""
    return Html('<div class="facts">{}</div>').format(
        join(
            Html('<div><span class="label">{}</span><span class="value">{}</span></div>').format(
                label, value
            )
            for label, value in pairs
        )
    )


def notice(text: str | Html, *, kind: str = "info") -> Html:
    """A banner above the page content (``info``, ``warn`` or ``problem``)."""
    return Html('<p class="notice {}" role="status">{}</p>').format(kind, text)


@cache
def static_file(name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of a shipped asset, or ``None`` for any other name."""
    if name not in _STATIC:
        return None
    data = resources.files("obskit.dashboard").joinpath("static").joinpath(name).read_bytes()
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return data, f"{kind}; charset=utf-8"


def static_url(prefix: str, name: str) -> str:
    """The asset's URL, versioned by its content so browsers may cache it for long."""
    found = static_file(name)
    digest = hashlib.sha256(found[0]).hexdigest()[:10] if found else "0"
    return f"{prefix}/static/{name}?v={digest}"
