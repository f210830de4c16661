"""Views of the test project."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views import View

import obskit

log = obskit.get_logger("site")


def user(request: HttpRequest, user_id: int) -> JsonResponse:
    log.info("user loaded", user_id=user_id)
    return JsonResponse({"user": user_id})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("kaboom")


def unavailable(request: HttpRequest) -> HttpResponse:
    return HttpResponse("down", status=503)


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def parts() -> Iterator[bytes]:
        for n in range(3):
            log.info("part sent", n=n)
            yield f"part {n}\n".encode()

    return StreamingHttpResponse(parts())


class Article(View):
    def get(self, request: HttpRequest, year: int, slug: str) -> HttpResponse:
        return HttpResponse(f"{year}/{slug}")


#: The thread each async view ran on (the event loop's, when nothing hopped to a thread).
async_view_threads: list[int] = []


async def async_user(request: HttpRequest, user_id: int) -> JsonResponse:
    async_view_threads.append(threading.get_ident())
    log.info("async user loaded", user_id=user_id)
    return JsonResponse({"user": user_id})


async def async_boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("async kaboom")


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def parts() -> AsyncIterator[bytes]:
        for n in range(3):
            log.info("part sent", n=n)
            yield f"part {n}\n".encode()

    return StreamingHttpResponse(parts())
