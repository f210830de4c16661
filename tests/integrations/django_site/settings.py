"""Settings of the test project (also what ``runserver`` loads in the loopback test)."""

from __future__ import annotations

import os

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_site.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
MIDDLEWARE = [
    "obskit.integrations.django.ObskitDjangoMiddleware",
    "django.middleware.common.CommonMiddleware",
]
LOGGING_CONFIG = None  # Django's own logging setup stays out of the tests' way

if os.environ.get("OBSKIT_TEST_JSONL"):  # under runserver: obskit writes what it saw here
    import obskit

    obskit.init(
        service="django-site",
        exporters=["jsonl"],
        exporter_options={"jsonl": {"path": os.environ["OBSKIT_TEST_JSONL"]}},
        install_hooks=False,
        schedule_delay_s=0.05,
    )
