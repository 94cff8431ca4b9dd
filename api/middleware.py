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
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.errors import error_response

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

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(settings.API_PATH_PREFIX):
            return self.get_response(request)  # the site's chain, under ASGI: Django's own rules
        try:
            request.get_host()
        except DisallowedHost:
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
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            if limit is not None and length > limit:
                return _refusal(request, 413, "payload_too_large", "The request body is too large.", {"max_bytes": limit})
        if not settings.AUCTION_SANDBOX and SANDBOX_PATH.fullmatch(request.path_info):
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
