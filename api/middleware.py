"""Errors that never reach Ninja (unknown paths, wrong methods, Django's own
500 page) still leave ``/api/`` in the contract's shape, never as HTML; and
every answer carries its length.

On the API's own handler (project/wsgi.py) this and SecurityMiddleware are
the whole chain: CommonMiddleware's slash redirects have no place in the API
(its paths have no trailing slash), and the one thing of it the API needs,
Content-Length, is set here at a twentieth of its cost per request.
"""

from django.conf import settings
from django.db import InterfaceError, OperationalError

from api.errors import database_unavailable_response, error_response


class ContractErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(settings.API_PATH_PREFIX):
            return response
        if response.status_code in (301, 308):
            # A slash redirect, had a chain with CommonMiddleware made one.
            response = error_response(404)
        elif response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            response = error_response(response.status_code)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response

    def process_exception(self, request, exception):
        # A view's database error that Ninja's handlers did not see (api/errors.py has theirs).
        if request.path.startswith(settings.API_PATH_PREFIX) and isinstance(exception, (OperationalError, InterfaceError)):
            return database_unavailable_response(request, exception)
        return None
