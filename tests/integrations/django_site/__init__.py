"""A small Django project for the middleware tests: settings, URLs and views in one place."""
