"""Errors that never reach Ninja (unknown paths, wrong methods, Django's own
500 page) still leave ``/api/`` in the contract's shape, never as HTML."""

from api.errors import error_response

API_PREFIX = "/api/"


class ContractErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code >= 400
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return error_response(response.status_code)
        return response
