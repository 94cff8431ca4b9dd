"""``POST /lots/{id}/bids`` routed straight to its view, last in the API's middleware.

A hot lot sends this one request hundreds of times a second, and the
machinery around the view (URL patterns, Ninja's parameter and response
models) took close to a third of the app's CPU per accepted bid: 1,025-1,131
µs before this route, 732-770 after (bench/bid_cpu.py, 2026-11-29). This
middleware keeps everything that gives the request its meaning and skips only
what re-derives what it already knows:

- the same view (``api.bids.bid_create``), bearer parsing (``TokenKeyAuth``),
  per-user limit (``api.throttling.bids``, keyed by the token's hash: one
  cache round trip), exception handlers and renderer (``api.main.api``), on Django's own request
  and response, inside the same middleware chain (security headers, contract
  errors, Content-Length);
- no URL resolution: the path is matched here (a test resolves it to the same view);
- no parameter model: it takes only a body that ``BidIn`` would accept as it is,
  a JSON object whose ``price`` is an int in range, with an Authorization
  header. Anything else (a number as a string, a float, true, a missing field,
  bad JSON, no header) goes on to the full route, which refuses it exactly as
  before (422, or 401 without a token); a bad Host or an oversized body never
  gets here (api.middleware.RequestEdgesMiddleware, first in the chain);
- no response model: the view's answer already is what ``BidPlacedOut`` renders
  (a test compares both routes byte for byte).
"""

import json
import re

from django.http import HttpRequest, HttpResponse
from ninja.errors import AuthenticationError, Throttled

from api import throttling
from api.bids import BidIn, bid_create
from api.main import api
from api.security import TokenKeyAuth
from auction.money import MAX_FEN
from project.metrics import BID_ROUTE

# The path Django's URLconf gives bid_create (project/urls.py + api/main.py +
# api/bids.py), relative to the script prefix as request.path_info is.
BID_PATH = re.compile(r"/api/v1/lots/([0-9]+)/bids")
# A bid's body is a few bytes; anything long is the full route's to judge.
_LARGEST_PLAIN_BODY = 256


def plain_price(body: bytes) -> int | None:
    """The price of a body ``BidIn`` takes unchanged, else None."""
    if len(body) > _LARGEST_PLAIN_BODY:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    price = data.get("price") if isinstance(data, dict) else None
    # type() and not isinstance(): a JSON true is a bool, which pydantic refuses.
    if type(price) is not int or not 1 <= price <= MAX_FEN:
        return None
    return price


class BidRouteMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.auth = TokenKeyAuth()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        match = BID_PATH.fullmatch(request.path_info) if request.method == "POST" else None
        if match is None:
            return self.get_response(request)
        try:
            price = plain_price(request.body)
        except Exception:  # noqa: BLE001  (too large, unreadable: Ninja reads it again and answers)
            price = None
        if price is None or not request.headers.get("Authorization"):
            return self.get_response(request)
        return self.bid(request, lot_id=int(match[1]), price=price)

    def bid(self, request: HttpRequest, *, lot_id: int, price: int) -> HttpResponse:
        # No URL resolution names the pattern here: counted under the full route's (project/metrics.py).
        request.metrics_route = BID_ROUTE
        # In Ninja's order: authentication (its errors through the API's
        # handlers), the throttle, then the view; every exception through the
        # same handlers.
        try:
            request.auth = self.auth(request)
            if not request.auth:
                raise AuthenticationError()
            wait = throttling.bids.check(request)
            if wait is not None:
                raise Throttled(wait)
            result = bid_create(request, lot_id=lot_id, payload=BidIn.model_construct(price=price))
        except Exception as exc:  # noqa: BLE001  (the API's handlers map every exception, as Ninja would)
            return api.on_exception(request, exc)
        return api.create_response(request, result.value, status=result.status_code)
