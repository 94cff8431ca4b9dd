"""Coupon races run for real: threads with their own database connections.

On MariaDB (``make services-test``) the claim's conditional UPDATE locks the
coupon's row and the unique claim number stops a user's second place; on
SQLite the IMMEDIATE transactions serialise writers. Either way a coupon is
never oversold, never over a user's limit, and never on two orders.
"""

import pytest
from django.test import Client

from auction.errors import CouponLimitReached, CouponSoldOut, CouponTotalBelowIssued, CouponUnavailable
from auction.models import Coupon, Order, Payment, Refund, UserCoupon
from auction.services.coupons import coupon_claim, coupon_save
from auction.services.orders import order_pay
from auction.services.payments import payment_apply_success, payment_close
from tests.factories import CouponFactory, UserFactory
from tests.market import ADDRESS, bidder, won_order
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _errors(results: list, *expected: type) -> list:
    """Exceptions in ``results`` that are not one of the expected refusals."""
    return [r for r in results if isinstance(r, BaseException) and not isinstance(r, expected)]


def _issued_matches_rows(coupon: Coupon) -> Coupon:
    coupon.refresh_from_db()
    assert coupon.issued == UserCoupon.objects.filter(coupon=coupon).count()
    assert coupon.issued <= coupon.total
    return coupon


def test_a_rush_of_100_users_on_10_coupons_issues_exactly_10():
    coupon = CouponFactory(total=10, per_user_limit=1)
    users = [UserFactory() for _ in range(100)]

    results = run_threads(100, lambda index: coupon_claim(coupon_id=coupon.pk, user=users[index]).pk)

    assert not _errors(results, CouponSoldOut), _errors(results, CouponSoldOut)
    won = [r for r in results if isinstance(r, int)]
    assert len(won) == 10 and len(set(won)) == 10
    assert sum(isinstance(r, CouponSoldOut) for r in results) == 90
    assert _issued_matches_rows(coupon).issued == 10
    assert UserCoupon.objects.filter(coupon=coupon).values("user").distinct().count() == 10


def test_one_user_claiming_from_10_threads_with_a_limit_of_1_gets_one():
    coupon = CouponFactory(total=100, per_user_limit=1)
    user = UserFactory()

    results = run_threads(10, lambda index: coupon_claim(coupon_id=coupon.pk, user=user).pk)

    assert not _errors(results, CouponLimitReached), _errors(results, CouponLimitReached)
    assert sum(isinstance(r, int) for r in results) == 1
    assert UserCoupon.objects.filter(coupon=coupon, user=user).count() == 1
    assert _issued_matches_rows(coupon).issued == 1


def test_one_user_from_10_threads_with_a_limit_of_3_gets_three_numbered_1_to_3():
    coupon = CouponFactory(total=100, per_user_limit=3)
    user = UserFactory()

    results = run_threads(10, lambda index: coupon_claim(coupon_id=coupon.pk, user=user).pk)

    assert not _errors(results, CouponLimitReached), _errors(results, CouponLimitReached)
    assert sorted(UserCoupon.objects.filter(coupon=coupon, user=user).values_list("claim_number", flat=True)) == [1, 2, 3]
    assert _issued_matches_rows(coupon).issued == 3


def test_lowering_the_total_while_users_claim_never_goes_below_what_was_issued():
    coupon = CouponFactory(total=40, per_user_limit=1)
    users = [UserFactory() for _ in range(31)]

    def claim_or_lower(index: int):
        if index == 0:
            edited = Coupon.objects.get(pk=coupon.pk)
            edited.total = 12
            return coupon_save(coupon=edited, staff="ops")
        return coupon_claim(coupon_id=coupon.pk, user=users[index]).pk

    results = run_threads(31, claim_or_lower)

    assert not _errors(results, CouponSoldOut, CouponTotalBelowIssued), results
    coupon = _issued_matches_rows(coupon)
    if isinstance(results[0], CouponTotalBelowIssued):
        assert coupon.total == 40  # refused: more than 12 were already out
    else:
        assert coupon.total == 12 and coupon.issued <= 12


def test_one_coupon_paid_on_two_orders_at_once_is_locked_by_one():
    me = bidder(Client())
    orders = [won_order(me), won_order(me)]
    mine = coupon_claim(coupon_id=CouponFactory().pk, user=me.user)

    def pay_with_it(index: int) -> str:
        order, payment = order_pay(order_no=orders[index].order_no, user=me.user, address=ADDRESS, user_coupon_id=mine.pk)
        return order.order_no

    results = run_threads(2, pay_with_it)

    assert not _errors(results, CouponUnavailable), results
    [winner] = [r for r in results if isinstance(r, str)]
    assert sum(isinstance(r, CouponUnavailable) for r in results) == 1
    mine.refresh_from_db()
    assert mine.status == "locked" and mine.order.order_no == winner
    assert sorted(Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("coupon_discount", flat=True)) == [0, mine.amount]


@pytest.mark.parametrize("attempt", range(3))
def test_a_payment_succeeding_while_it_is_closed_never_spends_a_coupon_it_gave_back(attempt):
    # Either order of the two is fine; the race is run a few times to meet both.
    me = bidder(Client())
    order = won_order(me, price=100_000)
    mine = coupon_claim(coupon_id=CouponFactory(amount=20_000).pk, user=me.user)
    _, payment = order_pay(order_no=order.order_no, user=me.user, address=ADDRESS, user_coupon_id=mine.pk)

    def succeed_or_close(index: int):
        if index == 0:
            return payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id=f"race-{attempt}", amount=payment.amount)
        return payment_close(payment_id=payment.pk, reason="race")

    results = run_threads(2, succeed_or_close)

    assert not _errors(results), results
    order.refresh_from_db()
    mine.refresh_from_db()
    refunded = Refund.objects.filter(payment_id=payment.pk).exists()
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    if order.status == "paid":
        assert (mine.status, mine.order_id, refunded, order.coupon_discount) == ("used", order.pk, False, 20_000)
    else:
        assert (order.status, mine.status, mine.order_id, refunded) == ("pending_payment", "unused", None, True)
        assert order.coupon_discount == 0
