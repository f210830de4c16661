"""URLs of the test project: plain paths, an include() with a prefix, a class-based view."""

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
]
