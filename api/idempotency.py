"""``Idempotency-Key`` on the endpoints a lost answer would make a client repeat
(CONTRACT.md, Retries; the rules are auction/services/idempotency.py).

A middleware, ahead of the bid's direct route (api/bid_route.py), so both
routes of a bid, and every keyed endpoint, answer a retry the same way: from
the stored status, body and headers (plus ``Idempotent-Replayed: true``). A
request without the header costs one dictionary lookup (0.24 µs).

Keying another endpoint is one line in KEYED_ROUTES: its path, and whether
its work commits in one transaction with its claim and answer (``atomic``).
Atomic is what makes a retry after a killed process safe for work that is not
the same when done twice (a bid, a coupon claim), and lets that retry run at
once; it holds the rows the work locked until the answer is stored, a
millisecond or so. Deposits and paying are not atomic: they call WeChat Pay,
which must not be waited for under their locks, and asked twice they come
back with the same pending deposit or open payment anyway.
"""

import logging
import re
from dataclasses import dataclass

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse

from api.errors import error_response
from auction.errors import DomainError, Unauthenticated
from auction.services.idempotency import (
    Answer,
    IdempotencyKeyInUse,
    IdempotencyKeyTaken,
    idempotency_begin,
    idempotency_claim,
    idempotency_existing,
    idempotency_finish,
    idempotency_keep,
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
    (re.compile(r"/api/v1/lots/[0-9]+/buy-now"), True),
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
        keyed = Keyed(user_id=user_id, key=key, fingerprint=request_fingerprint(
            method=request.method, path=request.get_full_path_info(), body=body
        ))
        try:
            return self.run_atomic(request, keyed) if atomic else self.run(request, keyed)
        except DomainError as exc:
            return _refusal(exc)
        except DatabaseError:
            logger.warning("idempotency: the database failed on %s", request.path, exc_info=True)
            return _unavailable()

    def run_atomic(self, request: HttpRequest, keyed: "Keyed") -> HttpResponse:
        """The claim, the work and its answer commit together: a request killed
        before the commit leaves nothing, and its retry runs at once."""
        # Bounded: a turn ends with an answer, or finds the key's row gone (its
        # request failed, or it expired) and claims again.
        for _ in range(5):
            try:
                with transaction.atomic():
                    claim = idempotency_claim(user_id=keyed.user_id, key=keyed.key, fingerprint=keyed.fingerprint)
                    response = self.get_response(request)
                    if 200 <= response.status_code < 300:
                        if not idempotency_finish(claim=claim, answer=_answer_of(response)):
                            raise DatabaseError("idempotency claim lost while its request ran")
                    else:
                        # Refusals write nothing; a failure's half-done work must not stay.
                        transaction.set_rollback(True)
            except IdempotencyKeyTaken:
                answer = idempotency_existing(user_id=keyed.user_id, key=keyed.key, fingerprint=keyed.fingerprint)
                if answer is None:
                    continue
                return _replay(answer)
            if response.status_code in KEPT_FAILURES:
                idempotency_keep(user_id=keyed.user_id, key=keyed.key, fingerprint=keyed.fingerprint, answer=_answer_of(response))
            return response
        raise IdempotencyKeyInUse(retry_after=1)

    def run(self, request: HttpRequest, keyed: "Keyed") -> HttpResponse:
        outcome = idempotency_begin(user_id=keyed.user_id, key=keyed.key, fingerprint=keyed.fingerprint)
        if isinstance(outcome, Answer):
            return _replay(outcome)
        response = self.get_response(request)
        try:
            if _is_kept(response):
                idempotency_finish(claim=outcome, answer=_answer_of(response))
            else:
                idempotency_release(claim=outcome)
        except DatabaseError:
            # The answer stands; the claim stays until its lease runs out, and
            # a retry then does the work again, which these endpoints answer
            # with the same rows.
            logger.warning("idempotency: could not settle a claim on %s", request.path, exc_info=True)
        return response


@dataclass(frozen=True)
class Keyed:
    user_id: int
    key: str
    fingerprint: str
