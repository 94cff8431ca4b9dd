"""逾期: an order not paid by its deadline.

Above orders and payments: the order's open payments are closed at the
gateway first (``payment_close``, which applies a success the gateway
reports instead), then the order, its lot, its coupon and its deposits move
together under the order's lock.
"""

import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from auction.models import Deposit, DepositScope, DepositStatus, Lot, LotStatus, Order, OrderStatus, PaymentStatus
from auction.services import coupons
from auction.services.bars import default_recorded
from auction.services.deposits import deposit_forfeit
from auction.services.events import event_record
from auction.services.live import live_lot_changed
from auction.services.market_rows import market_rows_update
from auction.services.payments import payment_close


def order_expire(*, order_id: int) -> bool:
    """逾期: at the deadline the order is closed, the lot defaulted, the deposits
    forfeited, and a coupon it held goes back to its owner unused.

    Open payments are closed at the gateway first; one that still succeeds
    afterwards is refunded by ``order_paid``.
    """
    order = Order.objects.get(pk=order_id)
    if order.status != OrderStatus.PENDING_PAYMENT or timezone.now() < order.pay_deadline:
        return False
    for payment_id in order.payments.filter(status=PaymentStatus.CREATED).values_list("pk", flat=True):
        payment_close(payment_id=payment_id, reason="order overdue")
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("lot").get(pk=order_id)
        if order.status != OrderStatus.PENDING_PAYMENT or timezone.now() < order.pay_deadline:
            return False
        order.status = OrderStatus.OVERDUE
        order.save(update_fields=["status"])
        event_record("order.overdue", actor="job", user_id=order.user_id, lot=order.lot, order=order, amount=order.amount_due)
        coupons.coupon_release_for_order(order=order, reason="order overdue", actor="job")
        if market_rows_update(Lot.objects.filter(pk=order.lot_id, status=LotStatus.SOLD), status=LotStatus.DEFAULTED):
            event_record("lot.defaulted", actor="job", user_id=order.user_id, lot=order.lot, order=order)
            live_lot_changed(lot_id=order.lot_id)
        deposits = Deposit.objects.select_for_update().filter(user_id=order.user_id, status=DepositStatus.HELD).filter(
            Q(scope=DepositScope.LOT, lot_id=order.lot_id) | Q(scope=DepositScope.SPECIAL, special_id=order.lot.special_id)
        )
        for deposit in deposits.order_by("pk"):
            deposit_forfeit(deposit=deposit, reason="order overdue", order=order)
        default_recorded(order=order)
    return True


def orders_expire_due(*, now=None, limit: int = 200, budget_seconds: float = 45.0) -> int:
    """Every order past its deadline and unpaid, in batches of ids, each expired
    under its own lock (its payments are closed at the gateway first)."""
    started, expired = time.monotonic(), 0
    while time.monotonic() - started < budget_seconds:
        moment = now or timezone.now()
        ids = list(Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, pay_deadline__lte=moment).order_by("pk").values_list("pk", flat=True)[:limit])
        if not ids:
            break
        done = sum(order_expire(order_id=pk) for pk in ids)
        expired += done
        if done == 0:  # each one taken by another worker meanwhile, or not yet due on a re-read
            break
    return expired
