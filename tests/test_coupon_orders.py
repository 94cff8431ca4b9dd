"""Coupons on orders, through the API: which apply, how much they take off, and how
paying locks, uses or releases them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.models import Deposit, Event, Order, Payment, Refund, UserCoupon
from auction.services.payments import payment_close
from tests.conftest import assert_error
from tests.factories import CouponFactory, SpecialFactory
from tests.market import bidder, deadline_passes, pay, sweep, sweep_until_quiet, won_order

pytestmark = pytest.mark.django_db


def claim(api, **coupon_fields) -> int:
    coupon = CouponFactory(**coupon_fields)
    response = api.post(f"/coupons/{coupon.pk}/claim")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def quote(api, order: Order, user_coupon_id: int | None = None):
    return api.post(f"/orders/{order.order_no}/quote", {} if user_coupon_id is None else {"user_coupon_id": user_coupon_id})


def status_of(user_coupon_id: int) -> str:
    return UserCoupon.objects.get(pk=user_coupon_id).status


def succeed(api, payment: dict):
    response = api.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    assert response.status_code == 200, response.content


# --- quote: which coupons apply and how much ---------------------------------------


def test_a_quote_takes_the_coupon_off_and_changes_nothing(client):
    me = bidder(client)
    order = won_order(me, price=100_000)
    mine = claim(me, amount=15_000)

    body = quote(me, order, mine).json()

    assert body == {"price": 100_000, "premium": 0, "deposit_credit": 0, "coupon_discount": 15_000, "amount_due": 85_000}
    assert status_of(mine) == "unused" and Order.objects.get(pk=order.pk).coupon_discount == 0


def test_a_coupon_never_makes_the_amount_due_negative_nor_eats_the_deposit_credit(client):
    me = bidder(client)
    order = won_order(me, price=100_000, deposit=30_000)
    mine = claim(me, amount=90_000)
    body = quote(me, order, mine).json()
    assert body == {"price": 100_000, "premium": 0, "deposit_credit": 30_000, "coupon_discount": 70_000, "amount_due": 0}


def test_an_order_the_deposit_already_covers_takes_no_coupon(client):
    me = bidder(client)
    order = won_order(me, price=50_000, deposit=50_000)
    mine = claim(me)
    assert_error(quote(me, order, mine), 409, "coupon_not_applicable")
    assert_error(pay(me, order, mine), 409, "coupon_not_applicable")
    assert status_of(mine) == "unused"


def test_a_coupon_for_one_special_applies_only_to_its_lots(client):
    me = bidder(client)
    special, elsewhere = SpecialFactory(), SpecialFactory()
    order = won_order(me, special=special)
    other_order = won_order(me, special=elsewhere)
    mine = claim(me, special=special)
    assert quote(me, order, mine).json()["coupon_discount"] == 10_000
    body = assert_error(quote(me, other_order, mine), 409, "coupon_not_applicable")
    assert body["detail"] == {"special_id": special.pk}
    assert_error(pay(me, other_order, mine), 409, "coupon_not_applicable")


def test_the_order_must_reach_the_minimum_amount(client):
    me = bidder(client)
    small = won_order(me, price=99_999)
    large = won_order(me, price=100_000)
    mine = claim(me, min_amount=100_000, per_user_limit=1)
    body = assert_error(quote(me, small, mine), 409, "coupon_not_applicable")
    assert body["detail"] == {"min_amount": 100_000}
    assert quote(me, large, mine).json()["amount_due"] == 90_000


def test_a_coupon_not_valid_now_is_unavailable(client):
    me = bidder(client)
    order = won_order(me)
    now = timezone.now()
    lapsed = claim(me)
    UserCoupon.objects.filter(pk=lapsed).update(valid_until=now - timedelta(seconds=1))
    not_yet = claim(me, valid_days=None, valid_from=now + timedelta(days=1), valid_until=now + timedelta(days=2))
    for user_coupon_id in (lapsed, not_yet):
        assert_error(quote(me, order, user_coupon_id), 409, "coupon_unavailable")
        assert_error(pay(me, order, user_coupon_id), 409, "coupon_unavailable")


def test_another_users_coupon_is_unavailable_as_if_it_did_not_exist(client):
    me, other = bidder(client), bidder(client)
    order = won_order(me)
    theirs = claim(other)
    for user_coupon_id in (theirs, 999_999):
        body = assert_error(quote(me, order, user_coupon_id), 409, "coupon_unavailable")
        assert body["detail"] == {"user_coupon_id": user_coupon_id}
        assert_error(pay(me, order, user_coupon_id), 409, "coupon_unavailable")
    assert status_of(theirs) == "unused"


def test_a_deposit_takes_no_coupon(client):
    from tests.factories import LotFactory

    me = bidder(client)
    lot = LotFactory(deposit=50_000)
    mine = claim(me)
    created = me.post("/deposits", {"lot_id": lot.pk, "user_coupon_id": mine})
    assert created.status_code == 201, created.content
    assert created.json()["payment"]["amount"] == 50_000
    assert status_of(mine) == "unused"


# --- paying: lock, use, release ---------------------------------------------------------


def test_paying_locks_the_coupon_and_the_payment_success_uses_it(client):
    me = bidder(client)
    order = won_order(me, price=100_000)
    mine = claim(me, amount=20_000)
    # when paying with it
    paid = pay(me, order, mine).json()
    # then it is locked by this order, for the discounted amount
    assert paid["order"]["coupon_discount"] == 20_000 and paid["order"]["amount_due"] == 80_000
    assert paid["payment"]["amount"] == 80_000
    [locked] = me.get("/me/coupons", {"status": "locked"}).json()["items"]
    assert locked["id"] == mine and locked["order_no"] == order.order_no
    # when the payment succeeds
    succeed(me, paid["payment"])
    # then the order is paid and the coupon used on it
    assert me.get(f"/orders/{order.order_no}").json()["status"] == "paid"
    [used] = me.get("/me/coupons", {"status": "used"}).json()["items"]
    assert used["id"] == mine and used["order_no"] == order.order_no
    assert list(Event.objects.filter(user_coupon_id=mine).order_by("id").values_list("kind", flat=True)) == [
        "coupon.claimed", "coupon.locked", "coupon.used",
    ]
    assert UserCoupon.objects.get(pk=mine).payment.out_trade_no == paid["payment"]["out_trade_no"]


def test_a_coupon_covering_the_rest_pays_the_order_at_once_and_is_used(client):
    me = bidder(client)
    order = won_order(me, price=100_000, deposit=40_000)
    mine = claim(me, amount=80_000)
    paid = pay(me, order, mine).json()
    assert paid["payment"] is None and paid["order"]["status"] == "paid"
    assert paid["order"]["coupon_discount"] == 60_000 and paid["order"]["amount_due"] == 0
    assert status_of(mine) == "used" and Deposit.objects.get(user=me.user).status == "applied"


def test_one_coupon_per_order_paying_again_swaps_or_drops_it(client):
    me = bidder(client)
    order = won_order(me, price=100_000)
    first, second = claim(me, amount=10_000), claim(me, amount=30_000)

    pay(me, order, first)
    swapped = pay(me, order, second).json()
    assert (status_of(first), status_of(second)) == ("unused", "locked")
    assert swapped["order"]["coupon_discount"] == 30_000 and swapped["payment"]["amount"] == 70_000

    again = pay(me, order, second).json()  # the same coupon again: the same payment, still locked
    assert again["payment"]["out_trade_no"] == swapped["payment"]["out_trade_no"] and status_of(second) == "locked"

    dropped = pay(me, order).json()
    assert (status_of(first), status_of(second)) == ("unused", "unused")
    assert dropped["order"]["coupon_discount"] == 0 and dropped["payment"]["amount"] == 100_000
    assert UserCoupon.objects.filter(order=order).count() == 0


def test_a_coupon_locked_by_one_order_cannot_be_used_on_another(client):
    me = bidder(client)
    first_order, second_order = won_order(me), won_order(me)
    mine = claim(me)
    pay(me, first_order, mine)
    assert_error(quote(me, second_order, mine), 409, "coupon_unavailable")
    assert_error(pay(me, second_order, mine), 409, "coupon_unavailable")
    assert UserCoupon.objects.get(pk=mine).order_id == first_order.pk


def test_a_used_coupon_cannot_be_used_again(client):
    me = bidder(client)
    first_order, second_order = won_order(me), won_order(me)
    mine = claim(me)
    succeed(me, pay(me, first_order, mine).json()["payment"])
    assert_error(pay(me, second_order, mine), 409, "coupon_unavailable")
    assert Order.objects.get(pk=second_order.pk).coupon_discount == 0


def test_a_closed_payment_releases_its_coupon_and_a_late_success_is_refunded(client):
    # given: paying with a coupon, then the payment is closed (failed or given up at the gateway)
    me = bidder(client)
    order = won_order(me, price=100_000)
    mine = claim(me, amount=20_000)
    payment = pay(me, order, mine).json()["payment"]
    assert payment_close(payment_id=Payment.objects.get(out_trade_no=payment["out_trade_no"]).pk, reason="user gave up")
    # then the coupon is back and the order owes the full price again
    assert status_of(mine) == "unused" and UserCoupon.objects.get(pk=mine).order_id is None
    assert me.get(f"/orders/{order.order_no}").json()["amount_due"] == 100_000
    assert Event.objects.filter(kind="coupon.released", user_coupon_id=mine).count() == 1
    # when the closed payment succeeds after all (the discounted amount)
    succeed(me, payment)
    # then it is refunded: the order is not paid with a discount whose coupon went back
    assert Order.objects.get(pk=order.pk).status == "pending_payment"
    assert Refund.objects.get(payment__out_trade_no=payment["out_trade_no"]).reason == "paid an outdated amount"
    assert status_of(mine) == "unused"
    # and the coupon can be used again
    paid = pay(me, order, mine).json()
    succeed(me, paid["payment"])
    assert status_of(mine) == "used" and Order.objects.get(pk=order.pk).status == "paid"


def test_a_payment_whose_window_passed_is_closed_by_the_sweep_and_releases_its_coupon(client):
    me = bidder(client)
    order = won_order(me)
    mine = claim(me)
    payment = pay(me, order, mine).json()["payment"]
    Payment.objects.filter(out_trade_no=payment["out_trade_no"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    sweep()
    assert Payment.objects.get(out_trade_no=payment["out_trade_no"]).status == "closed"
    assert status_of(mine) == "unused" and Order.objects.get(pk=order.pk).status == "pending_payment"
    assert pay(me, order, mine).json()["payment"]["out_trade_no"] != payment["out_trade_no"]  # paying again works
    assert status_of(mine) == "locked"


def test_closing_a_stale_payment_leaves_the_coupon_the_order_now_pays_with(client):
    me = bidder(client)
    order = won_order(me)
    first, second = claim(me, amount=10_000), claim(me, amount=30_000)
    stale = pay(me, order, first).json()["payment"]
    pay(me, order, second)
    payment_close(payment_id=Payment.objects.get(out_trade_no=stale["out_trade_no"]).pk, reason="no longer wanted")
    assert (status_of(first), status_of(second)) == ("unused", "locked")
    assert Order.objects.get(pk=order.pk).coupon_discount == 30_000


def test_an_overdue_order_releases_its_coupon_and_a_late_payment_is_refunded(client):
    me = bidder(client)
    order = won_order(me, price=100_000)
    mine = claim(me, amount=20_000)
    payment = pay(me, order, mine).json()["payment"]
    # when the deadline passes and the jobs run (twice)
    deadline_passes(order)
    sweep()
    sweep()
    # then the order is overdue and the coupon is the user's again, once
    order.refresh_from_db()
    assert order.status == "overdue" and order.coupon_discount == 0
    assert status_of(mine) == "unused"
    assert Event.objects.filter(kind="coupon.released", user_coupon_id=mine).count() == 1
    [item] = me.get("/me/coupons", {"status": "unused"}).json()["items"]
    assert item["id"] == mine and item["order_no"] is None
    # and a payment that still succeeds is refunded, leaving the coupon unused
    succeed(me, payment)
    sweep_until_quiet()
    assert Refund.objects.get(payment__out_trade_no=payment["out_trade_no"]).status == "succeeded"
    assert status_of(mine) == "unused"


def test_an_overdue_order_releases_its_coupon_in_the_expiry_job_itself(client):
    from jobs import tasks

    me = bidder(client)
    order = won_order(me)
    mine = claim(me)
    pay(me, order, mine)
    deadline_passes(order)
    assert tasks.order_expire(order.pk) is True
    assert status_of(mine) == "unused"
    assert tasks.order_expire(order.pk) is False
