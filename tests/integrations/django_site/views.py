"""Views of the test project."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
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


class Article(View):
    def get(self, request: HttpRequest, year: int, slug: str) -> HttpResponse:
        return HttpResponse(f"{year}/{slug}")
