"""Payments and refunds: rows first, gateway second, every step idempotent.

A payment row (``out_trade_no``) or refund row (``out_refund_no``) exists
before the gateway hears of it, so a retry reuses the number and the
gateway's own idempotency protects us. A success is applied at most once,
under a lock on the payment row, and only when the amount matches.
"""

import logging
import secrets
import string
import time
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.errors import DomainError, NotFound
from auction.gateways.payments import GatewayError, gateway_for
from auction.models import (
    Deposit,
    Order,
    Payment,
    PaymentPurpose,
    PaymentStatus,
    Refund,
    RefundStatus,
    User,
)
from auction.services.events import event_record

logger = logging.getLogger(__name__)

ALPHABET = string.digits + string.ascii_letters


class PaymentMismatch(DomainError):
    """A success report that does not match what we asked for: never applied."""

    status_code = 400
    code = "payment_mismatch"
    default_message = "The payment report does not match the payment."


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


def payment_apply_success(
    *, out_trade_no: str, transaction_id: str, amount: int, paid_at: datetime | None = None, actor: str = "gateway"
) -> Payment:
    """A verified "the user paid" from the gateway (or the sandbox); safe to repeat."""
    from auction.services import deposits, orders  # they call back into refunds here

    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(out_trade_no=out_trade_no).first()
        if payment is None:
            raise NotFound(f"Unknown payment {out_trade_no}.")
        if payment.status == PaymentStatus.PAID:
            if payment.transaction_id != transaction_id:
                event_record("payment.duplicate_success", actor=actor, payment=payment, amount=amount, data={"transaction_id": transaction_id})
            return payment
        if amount != payment.amount:
            event_record("payment.amount_mismatch", actor=actor, payment=payment, amount=amount, data={"expected": payment.amount})
            raise PaymentMismatch(expected=payment.amount, received=amount)
        # Lock what the handler changes before any row here points at it: an
        # event's foreign key share-locks its target in InnoDB, and upgrading
        # that to the handler's exclusive lock can deadlock with order_pay.
        if payment.order_id:
            Order.objects.select_for_update().only("id").get(pk=payment.order_id)
        if payment.deposit_id:
            Deposit.objects.select_for_update().only("id").get(pk=payment.deposit_id)
        was_closed = payment.status == PaymentStatus.CLOSED
        payment.status = PaymentStatus.PAID
        payment.transaction_id = transaction_id
        payment.paid_at = paid_at or timezone.now()
        payment.save(update_fields=["status", "transaction_id", "paid_at"])
        event_record(
            "payment.paid", actor=actor, user=payment.user, payment=payment, deposit=payment.deposit,
            order=payment.order, amount=payment.amount, data={"transaction_id": transaction_id, "was_closed": was_closed},
        )
        if payment.purpose == PaymentPurpose.DEPOSIT:
            deposits.deposit_paid(payment=payment)
        else:
            orders.order_paid(payment=payment)
    return payment


def payment_close(*, payment_id: int, reason: str, actor: str = "job") -> bool:
    """Close an open payment at the gateway first, then here; a paid one stays paid."""
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.CREATED:
        return False
    try:
        gateway_for(payment.gateway).close(payment)
    except GatewayError:
        logger.warning("closing %s at the gateway failed; the sweep retries", payment.out_trade_no)
        return False
    with transaction.atomic():
        # Lock by primary key, then re-check: an UPDATE filtered on status can
        # lock the status index before the row (index merge on MariaDB) and
        # deadlock with a success being applied, which holds the row.
        if Payment.objects.select_for_update().only("status").get(pk=payment.pk).status != PaymentStatus.CREATED:
            return False
        Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.CLOSED, closed_at=timezone.now())
        event_record("payment.closed", actor=actor, user=payment.user, payment=payment, amount=payment.amount, data={"reason": reason})
        if payment.purpose == PaymentPurpose.ORDER:
            from auction.services.coupons import coupon_release_for_payment

            # In the same transaction: the coupon this payment held goes back to
            # unused; a late success of this payment then no longer matches the
            # order and is refunded.
            coupon_release_for_payment(payment=payment, reason=f"payment closed: {reason}", actor=actor)
    return True


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


def refund_submit(*, refund_id: int) -> Refund:
    """Send a refund to the gateway; resending the same number refunds once."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        if refund.status != RefundStatus.PENDING:
            return refund
        refund.attempts += 1
        try:
            state = gateway_for(refund.payment.gateway).refund(refund)
        except GatewayError as error:
            refund.last_error = str(error)[:2000]
            refund.save(update_fields=["attempts", "last_error"])
            return refund
        refund.status = RefundStatus.PROCESSING
        refund.gateway_refund_id = state.gateway_refund_id
        refund.submitted_at = timezone.now()
        refund.save(update_fields=["attempts", "status", "gateway_refund_id", "submitted_at", "last_error"])
        event_record("refund.submitted", actor="job", user=refund.payment.user, refund=refund, payment=refund.payment, amount=refund.amount)
        signals.refund_submitted.send(sender=Refund, refund_id=refund.pk)
        if state.status != "processing":
            _refund_finish(refund, succeeded=state.status == "succeeded", actor="gateway")
    return refund


def refund_poll(*, refund_id: int) -> Refund:
    """Learn a processing refund's outcome from the gateway (no notification needed)."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != RefundStatus.PROCESSING:
        return refund
    try:
        state = gateway_for(refund.payment.gateway).refund_query(refund)
    except GatewayError:
        return refund
    if state.status == "processing":
        return refund
    return refund_apply_result(out_refund_no=refund.out_refund_no, succeeded=state.status == "succeeded", actor="job")


def refund_apply_result(*, out_refund_no: str, succeeded: bool, actor: str = "gateway") -> Refund:
    """A refund's final outcome (notification or query); safe to repeat."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").filter(out_refund_no=out_refund_no).first()
        if refund is None:
            raise NotFound(f"Unknown refund {out_refund_no}.")
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
            return refund
        _refund_finish(refund, succeeded=succeeded, actor=actor)
    return refund


def _refund_finish(refund: Refund, *, succeeded: bool, actor: str) -> None:
    from auction.services import deposits

    refund.status = RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED
    refund.completed_at = timezone.now()
    refund.save(update_fields=["status", "completed_at"])
    payment = refund.payment
    event_record(
        "refund.succeeded" if succeeded else "refund.failed", actor=actor, user=payment.user, refund=refund,
        payment=payment, deposit=payment.deposit, order=payment.order, amount=refund.amount,
    )
    if succeeded and payment.purpose == PaymentPurpose.DEPOSIT:
        deposits.deposit_refunded(deposit_id=payment.deposit_id)
