"""A bid's direct route (api/bid_route.py) answers exactly as the full Ninja route does."""

import re

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import resolve

from api import bids as bid_endpoints
from api import throttling
from api.bid_route import BID_PATH, BidRouteMiddleware, plain_price
from api.bids import BidIn
from api.security import TokenKeyAuth
from auction.models import Bid
from auction.money import MAX_FEN
from tests.conftest import ApiClient, ApiClientHandler
from tests.factories import ImageFactory, LotFactory
from tests.market import bidder, hammer, pay_deposit

pytestmark = pytest.mark.django_db

@pytest.fixture
def full_route():
    """A client whose API chain lacks the direct route: every bid goes through Ninja."""
    test_client = Client()
    test_client.handler = ApiClientHandler(False)
    without_the_route = [path for path in settings.API_MIDDLEWARE if path != "api.bid_route.BidRouteMiddleware"]
    assert len(without_the_route) == len(settings.API_MIDDLEWARE) - 1
    with override_settings(API_MIDDLEWARE=without_the_route):
        test_client.handler.load_middleware()
    return test_client


@pytest.fixture
def served_directly(monkeypatch):
    """How many bids took the direct route."""
    count = []
    original = BidRouteMiddleware.bid

    def counting(self, request, **kwargs):
        count.append(request.path)
        return original(self, request, **kwargs)

    monkeypatch.setattr(BidRouteMiddleware, "bid", counting)
    return count


def _same_answer(direct, full, *, ignore: tuple[str, ...] = ()) -> None:
    assert direct.status_code == full.status_code
    for header in ("Content-Type", "Content-Length", "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy"):
        assert direct.get(header) == full.get(header), header
    direct_text, full_text = direct.content.decode(), full.content.decode()
    for field in ignore:
        # Values that differ between two bids by nature (ids, clock); the keys and their order still count.
        direct_text = re.sub(rf'"{field}": ("[^"]*"|\d+)', f'"{field}": _', direct_text)
        full_text = re.sub(rf'"{field}": ("[^"]*"|\d+)', f'"{field}": _', full_text)
    assert direct_text == full_text


def test_the_route_is_the_path_the_urlconf_gives_the_bid_view():
    match = resolve("/api/v1/lots/12/bids")
    assert match.route == "api/v1/lots/<int:lot_id>/bids" and match.kwargs == {"lot_id": 12}
    assert BID_PATH.fullmatch("/api/v1/lots/12/bids")[1] == "12"
    assert not BID_PATH.fullmatch("/api/v1/lots/12/bids/") and not BID_PATH.fullmatch("/api/v1/lots/x/bids")
    # What the direct route does of Ninja's checks itself: its one auth, and its one throttle.
    (post,) = [op for op in bid_endpoints.router.path_operations["/{int:lot_id}/bids"].operations if "POST" in op.methods]
    assert post.view_func is bid_endpoints.bid_create
    assert [type(callback) for callback in post.auth_callbacks] == [TokenKeyAuth]
    assert post.throttle_objects == [throttling.bids]


@pytest.mark.parametrize("body", [
    b'{"price": 150000}', b'{"price": 1}', b'{"price": %d}' % MAX_FEN, b'{"price": 150000, "note": "x"}',
    b'{"price": "150000"}', b'{"price": 150000.0}', b'{"price": 1.5}', b'{"price": true}', b'{"price": null}',
    b'{"price": 0}', b'{"price": -5}', b'{"price": %d}' % (MAX_FEN + 1), b"{}", b"[]", b"150000", b"not json", b"",
    b'{"price": 150000' + b" " * 300 + b"}",
])
def test_the_direct_route_takes_only_a_body_bid_in_takes_unchanged(body):
    price = plain_price(body)
    if price is not None:
        assert BidIn.model_validate_json(body).price == price


def test_an_accepted_bid_answers_the_same_on_both_routes(client, full_route, served_directly):
    cover = ImageFactory()
    first = LotFactory(title="青花瓷", start_price=100_000, deposit=50_000, cover=cover)
    twin = LotFactory(title="青花瓷", start_price=100_000, deposit=50_000, cover=cover, special=first.special,
                      ends_at=first.ends_at)
    a = bidder(client, "张三")
    for lot in (first, twin):
        pay_deposit(a, lot_id=lot.pk)

    direct = a.post(f"/lots/{first.pk}/bids", {"price": 120_000})
    full = ApiClient(full_route, token=a.token).post(f"/lots/{twin.pk}/bids", {"price": 120_000})

    assert direct.status_code == 201, direct.content
    assert len(served_directly) == 1
    assert direct.json()["lot"]["cover"]["url"].startswith("http://testserver/")
    _same_answer(direct, full, ignore=("id", "created_at"))
    assert Bid.objects.filter(price=120_000).count() == 2


def test_every_refusal_answers_the_same_on_both_routes(client, full_route, served_directly):
    lot = LotFactory(start_price=100_000, deposit=50_000)
    a, b = bidder(client, "甲"), bidder(client, "乙")
    pay_deposit(a, lot_id=lot.pk)
    assert a.post(f"/lots/{lot.pk}/bids", {"price": 100_000}).status_code == 201
    no_deposit = bidder(client)
    ended = LotFactory(special=lot.special)
    pay_deposit(b, lot_id=ended.pk)
    hammer(ended)

    def same_refusal(api: ApiClient, lot_id: int, price: int, code: str) -> None:
        served_before = len(served_directly)
        direct = api.post(f"/lots/{lot_id}/bids", {"price": price})
        full = ApiClient(full_route, token=api.token).post(f"/lots/{lot_id}/bids", {"price": price})
        assert direct.json().get("code") == code, direct.content
        assert len(served_directly) == served_before + 1
        _same_answer(direct, full)

    same_refusal(a, lot.pk, 200_000, "already_leading")
    same_refusal(b, lot.pk, 200_000, "deposit_required")
    same_refusal(no_deposit, lot.pk, 200_000, "deposit_required")
    same_refusal(b, ended.pk, 200_000, "lot_not_open")
    same_refusal(a, 999_999, 200_000, "not_found")
    same_refusal(ApiClient(client, token="no-such-token"), lot.pk, 200_000, "unauthenticated")
    pay_deposit(b, lot_id=lot.pk)
    same_refusal(b, lot.pk, 100_500, "bid_too_low")
    assert Bid.objects.count() == 1


@pytest.mark.parametrize("body, headers, status", [
    ({"price": "150000"}, {}, 422),  # money is a JSON integer (CONTRACT.md), on both routes
    ({"price": 150000.0}, {}, 422),
    ({"price": 1.5}, {}, 422),
    ({"price": True}, {}, 422),
    ({}, {}, 422),
    ({"price": 150_000}, {"Authorization": ""}, 401),
])
def test_what_the_direct_route_does_not_take_goes_to_ninja(client, served_directly, body, headers, status):
    lot = LotFactory(start_price=100_000, deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    response = a.post(f"/lots/{lot.pk}/bids", body, headers=headers)
    assert response.status_code == status, response.content
    assert served_directly == []


def test_a_scheme_other_than_bearer_is_refused_as_ninja_refuses_it(client, full_route, served_directly):
    lot = LotFactory()
    headers = {"Authorization": "Basic abc"}
    direct = client.post(f"/api/v1/lots/{lot.pk}/bids", {"price": 150_000}, content_type="application/json", headers=headers)
    full = full_route.post(f"/api/v1/lots/{lot.pk}/bids", {"price": 150_000}, content_type="application/json", headers=headers)
    assert direct.status_code == 401 and served_directly
    _same_answer(direct, full)


def test_a_body_that_is_not_json_is_a_validation_error(client, served_directly):
    lot = LotFactory()
    a = bidder(client)
    response = client.post(f"/api/v1/lots/{lot.pk}/bids", "not json", content_type="application/json",
                           headers={"Authorization": f"Bearer {a.token}"})
    assert response.status_code == 422 and response.json()["code"] == "validation_error"
    assert served_directly == []
