"""Every non-2xx answer is ``{code, message, detail}`` (CONTRACT.md, Errors)."""

import logging
import math

from django.core.exceptions import ObjectDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, UnreadablePostError
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from auction.errors import DomainError
from auction.gateways.payments import GatewayError
from project.cache import Breaker

logger = logging.getLogger(__name__)

# The database restarting or failing over: a moment, not a bug. Django drops
# the broken connection when the request ends (close_old_connections sees the
# error and a failed ping), so the request after the outage connects afresh.
DATABASE_RETRY_AFTER_SECONDS = 2
# One log line per few seconds of outage, not one per request.
_database_outage = Breaker("database", 5, then="answering 503 until it is back (logged again after {seconds:.0f} s)")

STATUS_CODES = {
    400: ("bad_request", "The request could not be read."),
    401: ("unauthenticated", "Log in first: the token is missing, unknown, expired or revoked."),
    403: ("forbidden", "Not allowed."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "This path does not take that method."),
    413: ("payload_too_large", "The request body is too large."),
    422: ("validation_error", "The request has invalid fields."),
    429: ("throttled", "Too many requests; slow down."),
    503: ("unavailable", "The service is not answering; try again shortly."),
    500: ("internal_error", "Something went wrong on our side; it has been logged."),
}


# Answered outside the domain's exception classes (the handlers below).
HANDLER_CODES = ("gateway_unavailable",)


def error_codes() -> list[str]:
    """Every ``code`` an answer can carry: the OpenAPI document's ``ErrorCode``, so a
    typed client can switch on them and the contract check can find each one."""
    codes = {code for code, _ in STATUS_CODES.values()} | set(HANDLER_CODES)
    pending = [DomainError]
    while pending:
        error_class = pending.pop()
        codes.add(error_class.code)
        pending.extend(error_class.__subclasses__())
    return sorted(codes)


def error_body(code: str, message: str, detail: dict | None = None) -> dict:
    return {"code": code, "message": message, "detail": detail or {}}


def error_response(status: int, code: str | None = None, message: str | None = None, detail: dict | None = None) -> JsonResponse:
    default_code, default_message = STATUS_CODES.get(status, ("error", "The request failed."))
    return JsonResponse(
        error_body(code or default_code, message or default_message, detail), status=status, json_dumps_params={"ensure_ascii": False}
    )


def _validation_detail(errors: list) -> dict:
    # Pydantic's own error dicts can hold exceptions and raw input: keep only
    # what a client can show and nothing it could not serialise.
    return {
        "errors": [
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
            for error in errors
        ]
    }


def install(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.detail)

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return error_response(422, detail=_validation_detail(exc.errors))

    @api.exception_handler(AuthenticationError)
    def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return error_response(401)

    @api.exception_handler(Throttled)
    def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        # Whole seconds (RFC 9110), rounded up: a client that waits that long is let in.
        retry_after = max(1, math.ceil(exc.wait)) if exc.wait else None
        response = error_response(429, detail={"retry_after": retry_after})
        if retry_after:
            response["Retry-After"] = str(retry_after)
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:
            # Ninja's "cannot parse the body": bad input like any other (422).
            return error_response(422, detail={"errors": [{"loc": ["body"], "msg": str(exc), "type": "json_invalid"}]})
        return error_response(exc.status_code)

    @api.exception_handler(Http404)
    def http404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return error_response(404)

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
        return error_response(404)

    # api.middleware.RequestEdgesMiddleware refuses a bad Host and an oversized
    # body before any view; these are the last line should Django still raise
    # one while a view reads the request (too many query fields, a client gone mid-body).
    @api.exception_handler(RequestDataTooBig)
    def request_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        return error_response(413)

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
        return error_response(400)

    @api.exception_handler(UnreadablePostError)
    def unreadable(request: HttpRequest, exc: UnreadablePostError) -> HttpResponse:
        return error_response(400)

    @api.exception_handler(GatewayError)
    def gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
        # WeChat Pay down or refusing: the rows exist and a retry reuses their
        # numbers, so the client may simply try again.
        logger.warning("payment gateway error on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "gateway_unavailable", "The payment service is not answering; try again shortly.")

    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        return database_unavailable_response(request, exc)

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Logged in full for us; the client sees the contract's shape only.
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500)


def database_unavailable_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    """503 ``unavailable`` with Retry-After: MariaDB down, restarting or unreachable."""
    _database_outage.failed(f"{request.method} {request.path}", exc)
    response = error_response(503, detail={"retry_after": DATABASE_RETRY_AFTER_SECONDS})
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    # Logged above, once per few seconds; not again by django.request per answer.
    response._has_been_logged = True
    return response
