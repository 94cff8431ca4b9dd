"""The API's own middleware (settings.API_MIDDLEWARE, project/wsgi.py).

``RequestEdgesMiddleware`` goes first and refuses what the app cannot read
safely before anything else runs; ``ContractErrorMiddleware`` makes sure
errors that never reach Ninja (unknown paths, wrong methods, Django's own
500 page) still leave ``/api/`` in the contract's shape, never as HTML, and
that every answer carries its length.

On the API's own handler these, SecurityMiddleware and the bid's direct route
are the whole chain: CommonMiddleware's slash redirects have no place in the
API (its paths have no trailing slash), and the one thing of it the API needs,
Content-Length, is set here at a twentieth of its cost per request.
"""

import re

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.errors import database_unavailable_response, error_response

# The sandbox's operations (api/auth.py, api/payments.py), as request.path_info has them.
SANDBOX_PATH = re.compile(r"/api/v1/(auth/sandbox|payments/sandbox/.*)")
# WeChat Pay's notifications get WeChat's answer shape, not the contract's (api/notify.py).
WECHAT_NOTIFY_PREFIX = "/api/v1/payments/wechat/"


def _refusal(request: HttpRequest, status: int, code: str | None = None, message: str | None = None, detail: dict | None = None) -> HttpResponse:
    if request.path_info.startswith(WECHAT_NOTIFY_PREFIX):
        response = JsonResponse({"code": "FAIL", "message": message or "refused"}, status=status)
    else:
        response = error_response(status, code, message, detail)
    # These answers skip the rest of the chain, so they carry its headers themselves.
    response.headers["Content-Length"] = str(len(response.content))
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class RequestEdgesMiddleware:
    """A bad Host, an oversized or unreadable body and, with the sandbox off, its
    paths are answered here, before any view or other middleware: the answer
    never depends on how far a view got (``POST /orders/{no}/pay`` once
    committed its payment, then failed on the Host while rendering an image
    URL), and the bid's direct route, which reads the body itself, never sees
    them either."""

    # Host headers already found allowed. request.get_host() takes about 4 µs (a
    # regex and a walk over ALLOWED_HOSTS), half a percent of an accepted bid's
    # CPU; a lookup here takes a tenth of that. Bounded: with a wildcard in
    # ALLOWED_HOSTS there could be any number of allowed names.
    HOSTS_REMEMBERED = 64

    def __init__(self, get_response):
        self.get_response = get_response
        self.allowed_hosts: set[tuple] = set()
        self._read_settings()
        setting_changed.connect(self._read_settings)

    def _read_settings(self, **kwargs) -> None:
        # Once, not per request (a settings lookup each is a third of this
        # middleware's cost); again whenever a test changes one.
        self.allowed_hosts.clear()
        self.api_prefix = settings.API_PATH_PREFIX
        self.body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.sandbox = settings.AUCTION_SANDBOX

    def _host_is_allowed(self, request: HttpRequest) -> bool:
        # With a Host header, get_host() reads only it (or X-Forwarded-Host) and settings.
        key = (request.META.get("HTTP_HOST"), request.META.get("HTTP_X_FORWARDED_HOST"))
        if key in self.allowed_hosts:
            return True
        try:
            request.get_host()
        except DisallowedHost:
            return False
        if key[0] and len(self.allowed_hosts) < self.HOSTS_REMEMBERED:
            self.allowed_hosts.add(key)
        return True

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(self.api_prefix):
            return self.get_response(request)  # the site's chain, under ASGI: Django's own rules
        if not self._host_is_allowed(request):
            return _refusal(request, 400, "bad_request", "This server does not answer to that Host.", {"reason": "host"})
        length = request.META.get("CONTENT_LENGTH")
        if length:
            # Django's own reading (request.body) would raise on either, deep inside a view.
            try:
                length = int(length)
            except ValueError:
                length = -1
            if length < 0:
                return _refusal(request, 400, "bad_request", "Content-Length is not a length.", {"reason": "content_length"})
            limit = self.body_limit
            if limit is not None and length > limit:
                return _refusal(request, 413, "payload_too_large", "The request body is too large.", {"max_bytes": limit})
        if not self.sandbox and SANDBOX_PATH.fullmatch(request.path_info):
            # Absent, as in the OpenAPI document: whatever the method or body.
            return _refusal(request, 404)
        return self.get_response(request)


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
            allow = response.get("Allow")
            response = error_response(response.status_code)
            if allow:
                # A 405 says what the path does take (RFC 9110 15.5.6).
                response.headers["Allow"] = allow
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response

    def process_exception(self, request, exception):
        # A view's database error that Ninja's handlers did not see (api/errors.py has theirs).
        if request.path.startswith(settings.API_PATH_PREFIX) and isinstance(exception, (OperationalError, InterfaceError)):
            return database_unavailable_response(request, exception)
        return None
