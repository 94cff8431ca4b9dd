"""佣金: the buyer's premium, a special's rate in basis points, charged on the order."""

import pytest

from auction.models import Order
from auction.money import percent_to_basis_points, premium_for
from auction.services.catalog import SpecialTerms, special_terms_errors
from tests.factories import SpecialFactory
from tests.market import bidder, pay, won_order

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("price", "rate", "premium"),
    [
        (100_000, 1500, 15_000),
        (1, 5000, 1),  # half a fen rounds up
        (1, 4999, 0),  # just under half a fen rounds down
        (3, 1667, 1),  # 0.5001 fen
        (10**12, 10_000, 10**12),  # the largest amount at 100 %: integers, no float
        (123_457, 0, 0),
    ],
)
def test_the_premium_is_rate_times_price_rounded_half_up_to_the_fen(price, rate, premium):
    assert premium_for(price, rate) == premium


def test_percent_typed_by_people_becomes_basis_points():
    assert [percent_to_basis_points(text) for text in ("15", "12.5", "0.01", "100", "0")] == [1500, 1250, 1, 10_000, 0]
    for bad in ("12.345", "-1", "100.01", "abc", "NaN"):
        with pytest.raises(ValueError):
            percent_to_basis_points(bad)


def test_a_special_rate_is_between_0_and_100_percent():
    special = SpecialFactory.build()
    terms = SpecialTerms(special.preview_at, special.starts_at, special.ends_at, buyer_premium_rate=10_001)
    assert "buyer_premium_rate" in special_terms_errors(terms)


def test_the_order_charges_the_premium_and_the_quote_and_api_show_it(client):
    me = bidder(client)
    order = won_order(me, price=100_050, special=SpecialFactory(buyer_premium_rate=1250))

    assert order.premium == 12_506  # 12,506.25 fen
    assert me.get(f"/orders/{order.order_no}").json()["premium"] == 12_506
    assert me.post(f"/orders/{order.order_no}/quote", {}).json() == {
        "price": 100_050, "premium": 12_506, "deposit_credit": 0, "coupon_discount": 0, "amount_due": 112_556,
    }
    assert me.get(f"/lots/{order.lot_id}").json()["buyer_premium_rate"] == 1250


def test_a_deposit_larger_than_the_price_and_premium_leaves_nothing_to_pay(client):
    me = bidder(client)
    order = won_order(me, price=100_000, deposit=120_000, special=SpecialFactory(buyer_premium_rate=1000))
    assert (order.premium, order.deposit_credit, order.amount_due) == (10_000, 110_000, 0)
    response = pay(me, order)
    assert response.status_code == 200 and response.json()["payment"] is None
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_the_deposit_is_credited_against_price_plus_premium(client):
    me = bidder(client)
    order = won_order(me, price=100_000, deposit=50_000, special=SpecialFactory(buyer_premium_rate=1500))
    assert (order.price, order.premium, order.deposit_credit, order.amount_due) == (100_000, 15_000, 50_000, 65_000)
    payment = pay(me, order).json()["payment"]
    assert payment["amount"] == 65_000


def test_a_coupon_minimum_applies_to_price_plus_premium(client):
    from tests.test_coupon_orders import claim, quote

    me = bidder(client)
    order = won_order(me, price=100_000, special=SpecialFactory(buyer_premium_rate=1000))  # owes 110,000
    reachable = claim(me, amount=5_000, min_amount=110_000)
    beyond = claim(me, amount=5_000, min_amount=110_001)

    assert quote(me, order, reachable).json()["amount_due"] == 105_000
    assert quote(me, order, beyond).json()["code"] == "coupon_not_applicable"


def test_orders_made_before_the_premium_keep_none(client):
    me = bidder(client)
    order = won_order(me, price=100_000)
    assert order.premium == 0 and order.amount_due == 100_000

