"""``Idempotency-Key`` on the endpoints a lost answer would make a client repeat
(CONTRACT.md, Retries; the rules are auction/services/idempotency.py).

A middleware, ahead of the bid's direct route (api/bid_route.py), so both
routes of a bid, and every keyed endpoint, answer a retry the same way: from
the stored status, body and headers. A request without the header costs one
dictionary lookup.

Keying another endpoint is one line in KEYED_ROUTES: its path, and whether
its work commits in one transaction with its answer (``atomic``). Atomic is
what makes a retry after a killed process safe for work that is not the same
when done twice (a bid, a coupon claim); it holds the rows the work locked
until the answer is stored, a millisecond or so. Deposits and paying are not
atomic: they call WeChat Pay, which must not run under their locks, and asked
twice they come back with the same pending deposit or open payment anyway.
"""

import logging
import re

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse

from api.errors import error_response
from auction.errors import DomainError, Unauthenticated
from auction.services.idempotency import (
    Answer,
    Claim,
    idempotency_begin,
    idempotency_finish,
    idempotency_release,
    request_fingerprint,
)
from auction.services.tokens import token_user

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
KEY = re.compile(r"[0-9A-Za-z_-]{1,64}")

# (POST path as request.path_info has it, atomic); tests/test_idempotency.py
# resolves each to its view.
KEYED_ROUTES: tuple[tuple[re.Pattern, bool], ...] = (
    (re.compile(r"/api/v1/lots/[0-9]+/bids"), True),
    (re.compile(r"/api/v1/coupons/[0-9]+/claim"), True),
    (re.compile(r"/api/v1/deposits"), False),
    (re.compile(r"/api/v1/orders/[^/]+/pay"), False),
    # POST /lots/{id}/buy-now, once it exists: (re.compile(r"/api/v1/lots/[0-9]+/buy-now"), True),
)

# The header in the OpenAPI document of each keyed operation (``openapi_extra``).
OPENAPI = {"parameters": [{
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "pattern": "^[0-9A-Za-z_-]{1,64}$", "maxLength": 64},
    "description": "A retry with the same key and body within 24 h gets the first answer again and changes nothing; "
    "the same key with another body is 422.",
}]}

# What of an answer a replay gives back; the rest (Content-Length, security
# headers) the middleware around this one sets again.
KEPT_HEADERS = ("Content-Type", "Retry-After", "Location", "ETag")
# Answers a retry would get again anyway; any other is not kept.
KEPT_FAILURES = (409, 422)


def keyed_route(request: HttpRequest) -> bool | None:
    """Whether the keyed endpoint's work is atomic; None if the request is not for one."""
    if request.method != "POST":
        return None
    for path, atomic in KEYED_ROUTES:
        if path.fullmatch(request.path_info):
            return atomic
    return None


def _caller_id(request: HttpRequest) -> int | None:
    scheme, _, raw_token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        return token_user(raw_token=raw_token.strip()).pk
    except Unauthenticated:
        return None


def _answer_of(response: HttpResponse) -> Answer:
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    return Answer(status_code=response.status_code, headers=headers, body=bytes(response.content))


def _replay(answer: Answer) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status_code)
    for name, value in answer.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def _refusal(exc: DomainError) -> HttpResponse:
    response = error_response(exc.status_code, exc.code, exc.message, exc.detail)
    if "retry_after" in exc.detail:
        response["Retry-After"] = str(exc.detail["retry_after"])
    return response


def _unavailable() -> HttpResponse:
    response = error_response(503, detail={"retry_after": 1})
    response["Retry-After"] = "1"
    return response


def _is_kept(response: HttpResponse) -> bool:
    return 200 <= response.status_code < 300 or response.status_code in KEPT_FAILURES


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get("HTTP_IDEMPOTENCY_KEY")
        if key is None:
            return self.get_response(request)
        return self.keyed(request, key)

    def keyed(self, request: HttpRequest, key: str) -> HttpResponse:
        atomic = keyed_route(request)
        if atomic is None:
            return self.get_response(request)
        try:
            user_id = _caller_id(request)
            body = request.body
        except DatabaseError:
            return _unavailable()
        except Exception:  # noqa: BLE001  (a body too large or unreadable: the view answers it)
            return self.get_response(request)
        if user_id is None:
            return self.get_response(request)  # the view answers 401, and nothing is claimed
        if not KEY.fullmatch(key):
            return error_response(422, detail={"errors": [{
                "loc": ["header", HEADER], "msg": "up to 64 characters of 0-9, A-Z, a-z, _ and -", "type": "string_pattern_mismatch",
            }]})
        fingerprint = request_fingerprint(method=request.method, path=request.get_full_path_info(), body=body)
        try:
            outcome = idempotency_begin(user_id=user_id, key=key, fingerprint=fingerprint)
        except DomainError as exc:
            return _refusal(exc)
        except DatabaseError:
            logger.warning("idempotency: could not claim a key on %s", request.path, exc_info=True)
            return _unavailable()
        if isinstance(outcome, Answer):
            return _replay(outcome)
        return self.run_atomic(request, outcome) if atomic else self.run(request, outcome)

    def run_atomic(self, request: HttpRequest, claim: Claim) -> HttpResponse:
        """The work and its answer commit together: killed before the commit, nothing of it stays."""
        try:
            with transaction.atomic():
                response = self.get_response(request)
                if 200 <= response.status_code < 300:
                    if not idempotency_finish(claim=claim, answer=_answer_of(response)):
                        raise DatabaseError("idempotency claim lost while its request ran")
                else:
                    # Refusals write nothing; a failure's half-done work must not stay.
                    transaction.set_rollback(True)
        except DatabaseError:
            logger.warning("idempotency: the work or its answer failed on %s", request.path, exc_info=True)
            self._release(claim)
            return _unavailable()
        if not 200 <= response.status_code < 300:
            self._settle_failure(claim, response)
        return response

    def run(self, request: HttpRequest, claim: Claim) -> HttpResponse:
        response = self.get_response(request)
        if 200 <= response.status_code < 300:
            try:
                idempotency_finish(claim=claim, answer=_answer_of(response))
            except DatabaseError:
                # The work is done and answered; a retry after the lease does it
                # again, which these endpoints answer with the same rows.
                logger.warning("idempotency: could not store the answer on %s", request.path, exc_info=True)
        else:
            self._settle_failure(claim, response)
        return response

    def _settle_failure(self, claim: Claim, response: HttpResponse) -> None:
        try:
            if _is_kept(response):
                idempotency_finish(claim=claim, answer=_answer_of(response))
            else:
                idempotency_release(claim=claim)
        except DatabaseError:
            logger.warning("idempotency: could not settle a claim", exc_info=True)

    def _release(self, claim: Claim) -> None:
        try:
            idempotency_release(claim=claim)
        except DatabaseError:
            logger.warning("idempotency: could not release a claim", exc_info=True)
