"""An auction day through the HTTP API: deposits, bids, the hammer, refunds, paying, overdue."""

import pytest

from auction.models import Deposit, Event, Lot, Order, Payment, Refund
from tests.conftest import assert_error
from tests.factories import LotFactory
from tests.market import bid, bidder, deadline_passes, hammer, pay_deposit, sweep_until_quiet

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot():
    return LotFactory(start_price=100_000, deposit=50_000)


def test_a_wins_b_is_refunded_a_pays_and_the_deposit_is_applied(client, lot):
    a, b = bidder(client, "阿甲"), bidder(client, "贝乙")
    # given: both pay deposits
    assert_error(bid(a, lot.pk, 100_000), 409, "deposit_required")
    deposit_a = pay_deposit(a, lot_id=lot.pk)
    deposit_b = pay_deposit(b, lot_id=lot.pk)
    assert a.get(f"/lots/{lot.pk}").json()["my"]["deposit_status"] == "held"
    # when: they bid, A last
    assert bid(a, lot.pk, 100_000).status_code == 201
    assert bid(b, lot.pk, 110_000).status_code == 201
    placed = bid(a, lot.pk, 120_000)
    assert placed.status_code == 201
    assert placed.json()["lot"]["current_price"] == 120_000 and placed.json()["lot"]["next_min_bid"] == 130_000
    hammer(lot)
    sweep_until_quiet()
    # then: A has an order, B's deposit went back through refunding
    lot.refresh_from_db()
    assert lot.status == "sold"
    order = Order.objects.get(lot=lot)
    assert (order.user_id, order.price, order.deposit_credit, order.status) == (a.user.pk, 120_000, 50_000, "pending_payment")
    assert Deposit.objects.get(pk=deposit_b["id"]).status == "refunded"
    assert Deposit.objects.get(pk=deposit_a["id"]).status == "held"
    kinds = list(Event.objects.filter(deposit_id=deposit_b["id"]).order_by("id").values_list("kind", flat=True))
    assert kinds[-3:] == ["deposit.refunding", "refund.created", "deposit.refunded"] or "deposit.refunding" in kinds
    # when: A pays the rest
    orders = a.get("/orders").json()
    assert orders["count"] == 1 and orders["items"][0]["amount_due"] == 70_000
    address = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}
    paying = a.post(f"/orders/{order.order_no}/pay", {"address": address})
    assert paying.status_code == 200, paying.content
    payment = paying.json()["payment"]
    assert payment["amount"] == 70_000 and set(payment["params"]) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed").json()["status"] == "paid"
    # then
    order.refresh_from_db()
    assert order.status == "paid" and order.address["detail"] == "南京东路 1 号"
    assert Deposit.objects.get(pk=deposit_a["id"]).status == "applied"
    assert a.get(f"/orders/{order.order_no}").json()["status"] == "paid"
    assert_error(b.get(f"/orders/{order.order_no}"), 404, "not_found")


def test_a_does_not_pay_and_forfeits_the_deposit(client, lot):
    a, b = bidder(client), bidder(client)
    deposit_a = pay_deposit(a, lot_id=lot.pk)
    pay_deposit(b, lot_id=lot.pk)
    assert bid(b, lot.pk, 100_000).status_code == 201
    assert bid(a, lot.pk, 110_000).status_code == 201
    hammer(lot)
    sweep_until_quiet()
    order = Order.objects.get(lot=lot)
    deadline_passes(order)
    sweep_until_quiet()
    order.refresh_from_db()
    lot.refresh_from_db()
    assert order.status == "overdue" and lot.status == "defaulted"
    assert Deposit.objects.get(pk=deposit_a["id"]).status == "forfeited"
    assert_error(a.post(f"/orders/{order.order_no}/pay", {"address": {"name": "a", "phone": "13800000000", "region": "r", "detail": "d"}}), 409, "order_not_payable")
    assert a.get(f"/lots/{lot.pk}").json()["status"] == "defaulted"


def test_a_payment_that_succeeds_after_the_order_went_overdue_is_refunded(client, lot):
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    bid(a, lot.pk, 200_000)
    hammer(lot)
    sweep_until_quiet()
    order = Order.objects.get(lot=lot)
    address = {"name": "a", "phone": "13800000000", "region": "r", "detail": "d"}
    payment = a.post(f"/orders/{order.order_no}/pay", {"address": address}).json()["payment"]
    deadline_passes(order)
    sweep_until_quiet()
    # The sandbox close is a no-op, so the user can still "pay": WeChat would
    # let a payment through that raced the close.
    Payment.objects.filter(out_trade_no=payment["out_trade_no"]).update(status="created")
    a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    sweep_until_quiet()
    order.refresh_from_db()
    assert order.status == "overdue"
    refund = Refund.objects.get(payment__out_trade_no=payment["out_trade_no"])
    assert refund.status == "succeeded" and refund.reason == "paid after the order went overdue"
    assert Lot.objects.get(pk=lot.pk).status == "defaulted"
