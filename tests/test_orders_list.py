"""``GET /orders`` costs a fixed number of queries, however many orders a page holds."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auction.images import COVER_SPEC
from auction.models import Order
from auction.services.orders import order_number
from tests.factories import ImageFactory, LotFactory, png_file
from tests.market import bidder

pytestmark = pytest.mark.django_db


def _orders(user, count: int) -> None:
    for _ in range(count):
        cover = ImageFactory(file=png_file(size=(760, 510)))
        cover.get_rendition(COVER_SPEC)  # made at publish time, as in production
        lot = LotFactory(cover=cover, status="sold", deposit=0)
        Order.objects.create(order_no=order_number(), lot=lot, user=user, price=lot.start_price, pay_deadline=timezone.now() + timedelta(days=1))


def _queries_for_my_orders(api) -> tuple[int, dict]:
    cache.clear()  # a cold card cache: nothing remembered from making the rows
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/orders", {"limit": 100})
    assert response.status_code == 200
    return len(queries), response.json()


def test_my_orders_take_the_same_queries_for_one_order_or_twenty(client):
    one, twenty = bidder(client), bidder(client)
    _orders(one.user, 1)
    _orders(twenty.user, 20)
    queries_for_one, body_one = _queries_for_my_orders(one)
    queries_for_twenty, body_twenty = _queries_for_my_orders(twenty)
    assert (body_one["count"], body_twenty["count"]) == (1, 20)
    assert queries_for_twenty == queries_for_one, (queries_for_one, queries_for_twenty)
    item = body_twenty["items"][0]
    assert item["lot"]["title"] and item["lot"]["cover"]["url"].startswith("http://testserver/")
    assert item["lot"]["cover"]["width"] == 750
