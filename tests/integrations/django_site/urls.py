"""URLs of the test project: plain paths, an include() with a prefix, a class-based view,
async views."""

from __future__ import annotations

from django.urls import include, path

from django_site import views

articles = [path("<int:year>/<slug:slug>/", views.Article.as_view())]

urlpatterns = [
    path("users/<int:user_id>/", views.user),
    path("boom/", views.boom),
    path("unavailable/", views.unavailable),
    path("health/", views.health),
    path("blog/", include(articles)),
    path("stream/", views.stream),
    path("async/users/<int:user_id>/", views.async_user),
    path("async/boom/", views.async_boom),
    path("async/stream/", views.async_stream),
]
