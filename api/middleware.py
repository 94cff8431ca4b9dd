"""Errors that never reach Ninja (unknown paths, wrong methods, Django's own
500 page) still leave ``/api/`` in the contract's shape, never as HTML."""

from django.conf import settings

from api.errors import error_response


class ContractErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.path.startswith(settings.API_PATH_PREFIX):
            return response
        if response.status_code in (301, 308):
            # CommonMiddleware's slash redirect: the API has no such paths.
            return error_response(404)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            return error_response(response.status_code)
        return response
