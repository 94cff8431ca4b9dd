"""What ops may do to an unpaid order: give the buyer more time, or call the sale off.

Both lock the order and re-check it is still pending, so they cannot race the
payment being applied or the overdue job into a second outcome.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from auction import signals
from auction.errors import NotFound, OrderNotPayable, ValidationFailed
from auction.models import Deposit, DepositScope, DepositStatus, Lot, LotStatus, Order, OrderStatus, PaymentStatus
from auction.services import coupons
from auction.services.deposits import deposit_refund
from auction.services.events import event_record
from auction.services.payments import payment_close


def _pending_locked(order_id: int) -> Order:
    order = Order.objects.select_for_update().select_related("lot").filter(pk=order_id).first()
    if order is None:
        raise NotFound()
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise OrderNotPayable("Only an order awaiting payment can be changed this way.", status=order.status)
    return order


def order_deadline_extend(*, order_id: int, pay_deadline: datetime, staff: str = "") -> Order:
    """A later payment deadline; the expiry schedule moves with it."""
    now = timezone.now()
    with transaction.atomic():
        order = _pending_locked(order_id)
        if pay_deadline <= max(now, order.pay_deadline):
            raise ValidationFailed("The new deadline must be later than the current one and in the future.")
        previous = order.pay_deadline
        order.pay_deadline = pay_deadline
        order.save(update_fields=["pay_deadline"])
        # Open payments stay usable until the new deadline.
        order.payments.filter(status=PaymentStatus.CREATED).update(expires_at=pay_deadline)
        event_record(
            "order.deadline_extended", actor="ops", user_id=order.user_id, lot_id=order.lot_id, order=order,
            data={"previous": previous.isoformat(), "pay_deadline": pay_deadline.isoformat(), "staff": staff},
        )
        # A trigger at the new deadline (the one at the old finds nothing due there).
        signals.orders_created.send(sender=Order, order_ids=[order.pk], pay_deadline=pay_deadline)
    return order


def order_cancel(*, order_id: int, reason: str, staff: str = "") -> Order:
    """Called off before payment: the buyer's deposits go back, a coupon is released,
    and the lot becomes ``unsold`` so ops can relist it. Nothing is forfeited."""
    reason = reason.strip()
    if not reason:
        raise ValidationFailed("Say why the order is cancelled; the buyer's deposit is refunded.")
    with transaction.atomic():
        order = _pending_locked(order_id)
    # Close open payments at the gateway first (as at the deadline); one that
    # still succeeds afterwards is refunded by ``order_paid``.
    for payment_id in order.payments.filter(status=PaymentStatus.CREATED).values_list("pk", flat=True):
        payment_close(payment_id=payment_id, reason="order cancelled by ops", actor="ops")
    with transaction.atomic():
        order = _pending_locked(order_id)
        order.status = OrderStatus.CANCELLED
        order.save(update_fields=["status"])
        event_record("order.cancelled", actor="ops", user_id=order.user_id, lot=order.lot, order=order, data={"reason": reason, "staff": staff})
        coupons.coupon_release_for_order(order=order, reason="order cancelled", actor="ops")
        if Lot.objects.filter(pk=order.lot_id, status=LotStatus.SOLD).update(status=LotStatus.UNSOLD, version=F("version") + 1):
            event_record("lot.sale_cancelled", actor="ops", user_id=order.user_id, lot=order.lot, order=order, data={"reason": reason})
        lot_deposits = Deposit.objects.select_for_update().filter(
            user_id=order.user_id, status=DepositStatus.HELD, scope=DepositScope.LOT, lot_id=order.lot_id
        )
        for deposit in lot_deposits.order_by("pk"):
            deposit_refund(deposit=deposit, reason=f"order cancelled: {reason}", actor="ops")
        # A special-wide deposit goes back by the special's own rule, now that nothing is unpaid.
        signals.special_outcome_changed.send(sender=Order, special_id=order.lot.special_id)
    return order


def order_search(queryset, text: str):
    """Orders by number, buyer nickname or openid, or any part of the shipping address (name, phone)."""
    text = text.strip()
    if not text:
        return queryset
    return queryset.filter(
        Q(order_no__icontains=text) | Q(user__nickname__icontains=text) | Q(user__openid__icontains=text)
        | Q(address_text__icontains=text)
    )
