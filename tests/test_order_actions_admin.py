"""Ops' actions on an order in the Wagtail admin: ship, extend the deadline, cancel; lists searched and filtered."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from auction.models import Deposit, Event, Lot, Order, UserCoupon
from tests.factories import CouponFactory
from tests.market import bidder, pay, won_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345"))
    return client


@pytest.fixture
def buyer():
    return bidder(Client(), "阿甲")


def paid(api, order):
    out_trade_no = pay(api, order).json()["payment"]["out_trade_no"]
    assert api.post(f"/payments/sandbox/{out_trade_no}/succeed").status_code == 200
    order.refresh_from_db()
    return order


def test_ops_ship_an_order_after_a_confirmation_page(ops, buyer):
    # given: a paid order
    order = paid(buyer, won_order(buyer))
    inspect = ops.get(reverse("market_orders:inspect", args=(order.pk,))).content.decode()
    ship_url = reverse("market_orders:ship", args=(order.pk,))
    assert ship_url in inspect and "收货人 13800000000 北京市 长安街 1 号" in inspect
    # when: ops open the action (nothing changes yet), then submit it
    page = ops.get(ship_url)
    assert page.status_code == 200 and "data-order-action-submit" in page.content.decode()
    assert Order.objects.get(pk=order.pk).fulfilment_status == "awaiting_shipment"
    response = ops.post(ship_url, {"carrier": "顺丰速运", "tracking_no": "SF1234567890"})
    # then
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.fulfilment_status, order.carrier, order.tracking_no) == ("shipped", "顺丰速运", "SF1234567890")
    assert Event.objects.get(kind="order.shipped").data["staff"] == "ops"
    assert buyer.get(f"/orders/{order.order_no}").json()["fulfilment"]["tracking_no"] == "SF1234567890"


def test_an_unpaid_order_offers_no_ship_action_and_refuses_it(ops, buyer):
    order = won_order(buyer)
    inspect = ops.get(reverse("market_orders:inspect", args=(order.pk,))).content.decode()
    assert reverse("market_orders:ship", args=(order.pk,)) not in inspect
    assert reverse("market_orders:extend", args=(order.pk,)) in inspect
    ops.post(reverse("market_orders:ship", args=(order.pk,)), {"carrier": "顺丰", "tracking_no": "SF1"})
    assert Order.objects.get(pk=order.pk).fulfilment_status == ""


def test_ops_extend_a_pending_orders_deadline(ops, buyer):
    order = won_order(buyer)
    new_deadline = timezone.localtime(order.pay_deadline + timedelta(days=2)).replace(second=0, microsecond=0)
    response = ops.post(reverse("market_orders:extend", args=(order.pk,)), {"pay_deadline": new_deadline.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.pay_deadline == new_deadline
    assert Event.objects.filter(kind="order.deadline_extended", order=order).count() == 1
    from django_q.models import Schedule

    assert Schedule.objects.get(func="jobs.tasks.orders_expire", next_run=new_deadline)


def test_a_deadline_cannot_be_moved_earlier(ops, buyer):
    order = won_order(buyer)
    earlier = timezone.localtime(order.pay_deadline - timedelta(hours=1))
    response = ops.post(reverse("market_orders:extend", args=(order.pk,)), {"pay_deadline": earlier.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 200  # the form again, with the refusal
    assert Order.objects.get(pk=order.pk).pay_deadline == order.pay_deadline
    assert not Event.objects.filter(kind="order.deadline_extended").exists()


def test_ops_cancel_a_pending_order_its_deposit_refunded_and_coupon_released(ops, buyer):
    # given: an order with a lot deposit, being paid with a coupon
    order = won_order(buyer, price=100_000, deposit=10_000)
    claimed = buyer.post(f"/coupons/{CouponFactory().pk}/claim").json()
    assert pay(buyer, order, user_coupon_id=claimed["id"]).status_code == 200
    assert UserCoupon.objects.get(pk=claimed["id"]).status == "locked"
    url = reverse("market_orders:cancel", args=(order.pk,))
    # when: ops submit without ticking the confirmation, nothing happens
    assert ops.post(url, {"reason": "拍品损坏"}).status_code == 200
    assert Order.objects.get(pk=order.pk).status == "pending_payment"
    # when: confirmed
    assert ops.post(url, {"reason": "拍品损坏", "confirm": "on"}).status_code == 302
    # then
    order.refresh_from_db()
    assert order.status == "cancelled"
    assert Deposit.objects.get(lot_id=order.lot_id, user=buyer.user).status == "refunding"
    assert UserCoupon.objects.get(pk=claimed["id"]).status == "unused"
    assert Lot.objects.get(pk=order.lot_id).status == "unsold"
    assert not order.payments.filter(status="created").exists()
    assert Event.objects.get(kind="order.cancelled").data["reason"] == "拍品损坏"


def test_lists_are_searched_by_nickname_openid_and_phone(ops, buyer):
    order = paid(buyer, won_order(buyer))
    other = won_order(bidder(Client(), "贝乙"))
    url = reverse("market_orders:index")
    for text in ("阿甲", buyer.user.openid, "13800000000"):
        html = ops.get(url, {"q": text}).content.decode()
        assert order.order_no in html and other.order_no not in html, text


# Each Market list with rows of a user, and how a row names its user.
USER_LISTS = {
    "market_orders": lambda row: row.user_id, "market_deposits": lambda row: row.user_id,
    "market_payments": lambda row: row.user_id, "market_refunds": lambda row: row.payment.user_id,
    "market_events": lambda row: row.user_id, "market_bids": lambda row: row.user_id,
    "market_user_coupons": lambda row: row.user_id, "market_notifications": lambda row: row.user_id,
}


def test_every_market_list_finds_a_users_rows_by_nickname_openid_and_phone(ops, buyer):
    from auction.models import Notification
    from auction.services.settlement import lot_settle
    from tests.factories import LotFactory
    from tests.market import bid, hammer, pay_deposit, sweep

    # given: 阿甲 won one lot (deposit credited, paid with his phone in the address), was outbid on another
    # (deposit refunded), claimed a coupon and has a message; 贝乙 has rows of every kind too
    other = bidder(Client(), "贝乙")
    paid(buyer, won_order(buyer, deposit=50_000))
    lost = LotFactory(deposit=50_000)
    for api, price in ((buyer, 100_000), (other, 110_000)):
        pay_deposit(api, lot_id=lost.pk)
        assert bid(api, lost.pk, price).status_code == 201
    hammer(lost)
    lot_settle(lot_id=lost.pk)
    sweep()
    coupon = CouponFactory()
    for api in (buyer, other):
        assert api.post(f"/coupons/{coupon.pk}/claim").status_code == 201
        Notification.objects.create(user=api.user, kind="won", object_id=1, not_before=timezone.now(), status="failed")
    # when / then: each list, searched by his nickname, openid or phone, shows his rows and only his
    for screen, user_of in USER_LISTS.items():
        for text in ("阿甲", buyer.user.openid, "13800000000"):
            response = ops.get(reverse(f"{screen}:index"), {"q": text})
            rows = list(response.context["object_list"])
            assert rows and {user_of(row) for row in rows} == {buyer.user.pk}, (screen, text)


def test_the_order_list_filters_by_fulfilment_status(ops, buyer):
    shipped = paid(buyer, won_order(buyer))
    waiting = paid(buyer, won_order(buyer))
    ops.post(reverse("market_orders:ship", args=(shipped.pk,)), {"carrier": "顺丰", "tracking_no": "SF1"})
    html = ops.get(reverse("market_orders:index"), {"fulfilment_status": "shipped"}).content.decode()
    assert shipped.order_no in html and waiting.order_no not in html
