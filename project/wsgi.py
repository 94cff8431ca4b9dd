"""WSGI entry point: the API and the site (Wagtail, admin) on two handlers.

Both are Django's own ``WSGIHandler``; they differ only in their middleware
(settings.MIDDLEWARE for the site, settings.API_MIDDLEWARE for /api/).
"""

import os

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


class ApiMiddlewareChain:
    """A handler built with settings.API_MIDDLEWARE instead of settings.MIDDLEWARE
    (mixed into Django's WSGIHandler here, and into its test ClientHandler by the tests)."""

    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE; it is swapped only
        # while this handler is built, once, at import, before any request.
        site_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = site_middleware


class ApiWSGIHandler(ApiMiddlewareChain, WSGIHandler):
    pass


class Application:
    def __init__(self):
        django.setup(set_prefix=False)
        self.site = WSGIHandler()
        self.api = ApiWSGIHandler()

    def __call__(self, environ, start_response):
        handler = self.api if environ.get("PATH_INFO", "").startswith(settings.API_PATH_PREFIX) else self.site
        return handler(environ, start_response)


application = Application()
