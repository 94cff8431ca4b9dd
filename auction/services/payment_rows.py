"""Payment and refund rows: made before the gateway hears of them.

The bottom of the money services: deposits and orders open payments and ask
for refunds through these, and nothing here knows what a payment is for.
What a payment's outcome does (a success applied, a payment closed, a
refund finished) is ``auction.services.payments``, above deposits and orders.

A payment row (``out_trade_no``) or refund row (``out_refund_no``) exists
before the gateway hears of it, so a retry reuses the number and the
gateway's own idempotency protects us.
"""

import secrets
import string
import time
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from auction import signals
from auction.errors import NotFound
from auction.gateways.payments import gateway_for
from auction.models import Deposit, Event, Payment, PaymentPurpose, PaymentStatus, Refund, User
from auction.services.events import event_record, events_record_bulk

ALPHABET = string.digits + string.ascii_letters


def random_number(prefix: str = "", length: int = 16) -> str:
    """``[prefix]YYYYMMDD`` + random base62: sortable by day, not guessable."""
    day = timezone.localdate().strftime("%Y%m%d")
    return prefix + day + "".join(secrets.choice(ALPHABET) for _ in range(length))


def payment_open(
    *, purpose: str, user: User, amount: int, expires_at: datetime, deposit: Deposit | None = None, order=None
) -> Payment:
    """The row only; call ``payment_prepare`` after the transaction commits."""
    payment = Payment.objects.create(
        out_trade_no=random_number("D" if purpose == PaymentPurpose.DEPOSIT else "O"),
        purpose=purpose,
        user=user,
        amount=amount,
        deposit=deposit,
        order=order,
        gateway=settings.AUCTION_PAYMENT_GATEWAY,
        expires_at=expires_at,
    )
    event_record("payment.created", actor="user", user=user, payment=payment, deposit=deposit, order=order, amount=amount)
    return payment


# WeChat's prepay_id lives two hours; params older than this are asked for
# again (same out_trade_no, so still one payment at the gateway).
PARAMS_FRESH_SECONDS = 90 * 60


def _params_fresh(params: dict) -> bool:
    try:
        return time.time() - int(params.get("timeStamp", 0)) < PARAMS_FRESH_SECONDS
    except (TypeError, ValueError):
        return False


def payment_prepare(*, payment: Payment) -> Payment:
    """Client params from the gateway, reused while fresh; a retry asks again with the same number."""
    if payment.status != PaymentStatus.CREATED or (payment.params and _params_fresh(payment.params)):
        return payment
    params = gateway_for(payment.gateway).create(payment)
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.CREATED).update(params=params)
    payment.params = params
    return payment


def payment_for_user(*, out_trade_no: str, user: User) -> Payment:
    payment = Payment.objects.filter(out_trade_no=out_trade_no, user=user).first()
    if payment is None:
        raise NotFound()
    return payment


def refund_create(*, payment: Payment, reason: str, actor: str = "system") -> Refund:
    """The refund row for a paid payment, once: ``out_refund_no`` comes from the payment."""
    refund, created = Refund.objects.get_or_create(
        payment=payment,
        defaults={"out_refund_no": Refund.number_for(payment), "amount": payment.amount, "reason": reason},
    )
    if created:
        event_record(
            "refund.created", actor=actor, user=payment.user, payment=payment, deposit=payment.deposit,
            order=payment.order, refund=refund, amount=refund.amount, data={"reason": reason},
        )
        signals.refund_created.send(sender=Refund, refund_id=refund.pk)
    return refund


def refunds_create(payments: list[Payment], *, reasons: dict[int, str], actor: str = "system") -> list[Refund]:
    """Refund rows for paid payments the caller has locked (through their deposits)
    and found with none: one INSERT for the refunds, one for their events."""
    if not payments:
        return []
    refunds = Refund.objects.bulk_create(
        [Refund(payment=p, out_refund_no=Refund.number_for(p), amount=p.amount, reason=reasons[p.pk]) for p in payments]
    )
    if any(refund.pk is None for refund in refunds):
        numbers = {refund.out_refund_no: refund for refund in refunds}
        for pk, number in Refund.objects.filter(out_refund_no__in=numbers).values_list("pk", "out_refund_no"):
            numbers[number].pk = pk
    events_record_bulk([
        Event(kind="refund.created", actor=actor, user_id=r.payment.user_id, payment=r.payment, deposit_id=r.payment.deposit_id,
              order_id=r.payment.order_id, refund=r, amount=r.amount, data={"reason": r.reason})
        for r in refunds
    ])
    for refund in refunds:
        signals.refund_created.send(sender=Refund, refund_id=refund.pk)
    return refunds
