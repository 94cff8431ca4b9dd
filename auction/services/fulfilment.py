"""Fulfilment: a paid order waits for shipment, ops ship it, the buyer (or the clock) confirms receipt.

Each step is a conditional move under the order's row lock, so a buyer's
confirmation racing the automatic one, or two ops pressing "ship", change
the order once and write one event.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.errors import NotFound, OrderNotShippable, OrderNotShipped, ValidationFailed
from auction.models import FulfilmentStatus, Order, OrderStatus, User
from auction.services.events import event_record


def auto_receipt_after() -> timedelta:
    return timedelta(days=settings.AUCTION_AUTO_RECEIPT_DAYS)


def order_ship(*, order_id: int, carrier: str, tracking_no: str, staff: str = "") -> Order:
    """Ops record the carrier and tracking number; a shipped order's may be corrected."""
    carrier, tracking_no = carrier.strip(), tracking_no.strip()
    if not carrier or not tracking_no:
        raise ValidationFailed("Carrier and tracking number are both required.")
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None:
            raise NotFound()
        if order.status != OrderStatus.PAID or order.fulfilment_status not in (FulfilmentStatus.AWAITING_SHIPMENT, FulfilmentStatus.SHIPPED):
            raise OrderNotShippable(status=order.status, fulfilment_status=order.fulfilment_status or None)
        correction = order.fulfilment_status == FulfilmentStatus.SHIPPED
        if correction and (order.carrier, order.tracking_no) == (carrier, tracking_no):
            return order  # pressed twice: nothing changed
        previous = {"carrier": order.carrier, "tracking_no": order.tracking_no}
        order.carrier, order.tracking_no = carrier, tracking_no
        if not correction:
            order.fulfilment_status = FulfilmentStatus.SHIPPED
            order.shipped_at = timezone.now()
        order.save(update_fields=["carrier", "tracking_no", "fulfilment_status", "shipped_at"])
        data = {"carrier": carrier, "tracking_no": tracking_no, "staff": staff}
        if correction:
            data["previous"] = previous
        event_record(
            "order.shipping_corrected" if correction else "order.shipped", actor="ops",
            user_id=order.user_id, lot_id=order.lot_id, order=order, data=data,
        )
        if not correction:
            signals.order_shipped.send(sender=Order, order_id=order.pk, shipped_at=order.shipped_at)
    return order


def _receive(order: Order, *, actor: str, now: datetime) -> None:
    order.fulfilment_status = FulfilmentStatus.RECEIVED
    order.received_at = now
    order.save(update_fields=["fulfilment_status", "received_at"])
    event_record("order.received", actor=actor, user_id=order.user_id, lot_id=order.lot_id, order=order)


def order_confirm_receipt(*, order_no: str, user: User) -> Order:
    """The buyer confirms; confirming again answers the same order and changes nothing."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(order_no=order_no, user=user).first()
        if order is None:
            raise NotFound()
        if order.fulfilment_status == FulfilmentStatus.RECEIVED:
            return order
        if order.fulfilment_status != FulfilmentStatus.SHIPPED:
            raise OrderNotShipped(status=order.status, fulfilment_status=order.fulfilment_status or None)
        _receive(order, actor="user", now=timezone.now())
    return order


def order_receipt_auto(*, order_id: int, now: datetime | None = None) -> bool:
    """``AUCTION_AUTO_RECEIPT_DAYS`` after shipping, an unconfirmed order counts as received."""
    now = now or timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(pk=order_id).first()
        if order is None or order.fulfilment_status != FulfilmentStatus.SHIPPED or order.shipped_at + auto_receipt_after() > now:
            return False
        _receive(order, actor="job", now=now)
    return True


def orders_due_for_auto_receipt(*, now: datetime):
    return Order.objects.filter(fulfilment_status=FulfilmentStatus.SHIPPED, shipped_at__lte=now - auto_receipt_after())
