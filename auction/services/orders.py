"""Orders: made at the hammer, paid within the window, or overdue and forfeited."""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.errors import NotFound, OrderNotPayable
from auction.images import cover_prefetch
from auction.models import (
    Deposit,
    DepositScope,
    DepositStatus,
    Event,
    FulfilmentStatus,
    Lot,
    Order,
    OrderStatus,
    Payment,
    PaymentPurpose,
    PaymentStatus,
    Special,
    User,
)
from auction.models.orders import address_text
from auction.money import premium_for
from auction.services import coupons
from auction.services.deposits import deposit_apply
from auction.services.events import event_record, events_record_bulk
from auction.services.payment_rows import payment_open, random_number, refund_create


@dataclass(frozen=True)
class Quote:
    price: int
    premium: int
    deposit_credit: int
    coupon_discount: int
    amount_due: int


def order_number() -> str:
    """``YYYYMMDD`` + 16 random base62 characters: 24 characters, WeChat-safe."""
    return random_number()


def orders_for_user(*, user: User, status: str | None = None):
    # The lot's title and cover come with the page of orders: a fixed number of
    # queries however many orders it holds, warm card cache or cold.
    orders = Order.objects.filter(user=user).select_related("lot").prefetch_related(cover_prefetch("lot__cover")).order_by("-id")
    return orders.filter(status=status) if status else orders


def order_for_user(*, order_no: str, user: User) -> Order:
    order = Order.objects.select_related("lot").filter(order_no=order_no, user=user).first()
    if order is None:
        raise NotFound()  # another user's order does not exist for this caller
    return order


def order_quote(*, order_no: str, user: User, user_coupon_id: int | None = None) -> Quote:
    order = order_for_user(order_no=order_no, user=user)
    discount = 0
    if user_coupon_id is not None:
        user_coupon = coupons.user_coupon_of(user=user, user_coupon_id=user_coupon_id)
        discount = coupons.coupon_discount_for(order=order, user_coupon=user_coupon, now=timezone.now())
    due = max(0, order.total - order.deposit_credit - discount)
    return Quote(price=order.price, premium=order.premium, deposit_credit=order.deposit_credit, coupon_discount=discount, amount_due=due)


def order_create(*, lot: Lot, winner_id: int, pay_deadline: datetime) -> Order:
    """At the hammer (or a buy-now), under the lot's lock: the buyer's premium
    at the special's frozen rate is added and the winner's lot deposit credited."""
    deposit_amount = (
        Deposit.objects.filter(lot=lot, scope=DepositScope.LOT, user_id=winner_id, status=DepositStatus.HELD)
        .values_list("amount", flat=True)
        .first()
    ) or 0
    return orders_create([(lot, winner_id, deposit_amount)], pay_deadline=pay_deadline)[lot.pk]


def order_row(*, lot: Lot, winner_id: int, deposit_amount: int, pay_deadline: datetime, premium_rate: int) -> Order:
    """What an order charges at the hammer (unsaved): the one place its amounts are decided."""
    premium = premium_for(lot.current_price, premium_rate)
    return Order(
        order_no=order_number(),
        lot=lot,
        user_id=winner_id,
        price=lot.current_price,
        premium=premium,
        deposit_credit=min(deposit_amount, lot.current_price + premium),
        pay_deadline=pay_deadline,
    )


def orders_create(winners: list[tuple[Lot, int, int]], *, pay_deadline: datetime) -> dict[int, Order]:
    """Orders for ``(lot, winner_id, held lot deposit)``, the lots locked by the caller:
    one read of their specials' premium rates, one INSERT for the orders and one
    for their events, whatever their number."""
    if not winners:
        return {}
    rates = dict(
        Special.objects.filter(pk__in={lot.special_id for lot, _, _ in winners}).values_list("pk", "buyer_premium_rate")
    )
    made = Order.objects.bulk_create([
        order_row(lot=lot, winner_id=winner_id, deposit_amount=amount, pay_deadline=pay_deadline, premium_rate=rates[lot.special_id])
        for lot, winner_id, amount in winners
    ])
    if any(order.pk is None for order in made):  # a database that cannot return the ids of a bulk insert
        numbers = {order.order_no: order for order in made}
        for pk, number in Order.objects.filter(order_no__in=numbers).values_list("pk", "order_no"):
            numbers[number].pk = pk
    events_record_bulk([
        Event(kind="order.created", user_id=order.user_id, lot=order.lot, order=order, amount=order.price,
              data={"pay_deadline": pay_deadline.isoformat(), "premium": order.premium,
                    "buyer_premium_rate": rates[order.lot.special_id]})
        for order in made
    ])
    signals.orders_created.send(sender=Order, order_ids=[order.pk for order in made], pay_deadline=pay_deadline)
    return {order.lot_id: order for order in made}


def order_pay(*, order_no: str, user: User, address: dict, user_coupon_id: int | None = None) -> tuple[Order, Payment | None]:
    """Start paying; with nothing left to pay the order is paid at once."""
    with transaction.atomic():
        order = Order.objects.select_for_update().filter(order_no=order_no, user=user).first()
        if order is None:
            raise NotFound()
        now = timezone.now()
        if order.status != OrderStatus.PENDING_PAYMENT or now >= order.pay_deadline:
            raise OrderNotPayable(status=order.status)
        # Locks and validates the coupon; one the order held before and is not paying with goes back.
        user_coupon, order.coupon_discount = coupons.order_coupon_choose(order=order, user=user, user_coupon_id=user_coupon_id, now=now)
        order.address = address
        order.address_text = address_text(address)[:512]
        order.save(update_fields=["address", "address_text", "coupon_discount"])
        open_payments = list(order.payments.filter(status=PaymentStatus.CREATED).order_by("-id"))
        if order.amount_due == 0:
            if user_coupon is not None:
                coupons.coupon_lock(order=order, user_coupon=user_coupon, payment=None)
            _mark_paid(order, paid_at=now, actor="user")
            payment = None
        else:
            if open_payments and open_payments[0].amount == order.amount_due:
                payment = open_payments.pop(0)
            else:
                payment = payment_open(
                    purpose=PaymentPurpose.ORDER, user=user, amount=order.amount_due, order=order, expires_at=order.pay_deadline
                )
            if user_coupon is not None:
                coupons.coupon_lock(order=order, user_coupon=user_coupon, payment=payment)
        for stale in open_payments:
            signals.payment_close_wanted.send(sender=Order, payment_id=stale.pk)
    return order, payment


def order_paid(*, payment: Payment) -> None:
    """Called under the payment's lock when its success is applied."""
    order = Order.objects.select_for_update().get(pk=payment.order_id)
    # A discount stands only while the order still holds its coupon (released
    # coupons reset it); checked anyway, so a coupon is never spent twice.
    discount_held = order.coupon_discount == 0 or coupons.coupon_held_by(order) is not None
    if order.status == OrderStatus.PENDING_PAYMENT and payment.amount == order.amount_due and discount_held:
        _mark_paid(order, paid_at=payment.paid_at, actor="gateway", payment=payment)
        for other in order.payments.filter(status=PaymentStatus.CREATED).exclude(pk=payment.pk):
            signals.payment_close_wanted.send(sender=Order, payment_id=other.pk)
        return
    # Overdue, already paid through another payment, or paid for an old
    # amount (a coupon released meanwhile included): the money goes back, automatically.
    reason = {
        OrderStatus.OVERDUE: "paid after the order went overdue", OrderStatus.PAID: "order already paid",
        OrderStatus.CANCELLED: "paid after ops cancelled the order",
    }.get(
        order.status, "paid an outdated amount"
    )
    refund_create(payment=payment, reason=reason, actor="gateway")


def _mark_paid(order: Order, *, paid_at: datetime, actor: str, payment: Payment | None = None) -> None:
    order.status = OrderStatus.PAID
    order.paid_at = paid_at
    order.fulfilment_status = FulfilmentStatus.AWAITING_SHIPMENT
    order.save(update_fields=["status", "paid_at", "fulfilment_status"])
    event_record("order.paid", actor=actor, user_id=order.user_id, lot_id=order.lot_id, order=order, amount=order.amount_due)
    coupons.coupon_use(order=order, payment=payment, actor=actor)
    deposit = (
        Deposit.objects.select_for_update()
        .filter(lot_id=order.lot_id, scope=DepositScope.LOT, user_id=order.user_id, status=DepositStatus.HELD)
        .first()
    )
    if deposit is not None:
        deposit_apply(deposit=deposit, order=order, actor=actor)
    signals.special_outcome_changed.send(sender=Order, special_id=Lot.objects.values_list("special_id", flat=True).get(pk=order.lot_id))
