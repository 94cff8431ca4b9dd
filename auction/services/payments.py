"""What a payment's outcome does: a success applied, a payment closed, a refund sent and finished.

Above deposits and orders (it calls into them); the rows they open and the
refunds they ask for are ``auction.services.payment_rows``, below them, so
the import graph has no circle (tests/test_imports.py). Every step is
idempotent. A success is applied at most once, under a lock on the payment
row, and only when the amount matches. No lock is held while a gateway
answers: rows are read before the call, the call is made outside any
transaction, and its answer is applied under a fresh lock and re-checked.
"""

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.errors import DomainError, NotFound, ValidationFailed
from auction.gateways.payments import GatewayError, PaidAtGateway, gateway_for
from auction.models import Deposit, Order, Payment, PaymentPurpose, PaymentStatus, Refund, RefundStatus
from auction.services import deposits, orders
from auction.services.coupons import coupon_release_for_payment
from auction.services.events import event_record

# The adapters (api, jobs, cms) reach the row functions through this module too.
from auction.services.payment_rows import (  # noqa: F401
    payment_for_user,
    payment_open,
    payment_prepare,
    random_number,
    refund_create,
)

logger = logging.getLogger(__name__)

# A refund the gateway could not take (unreachable, busy, a 5xx) is sent
# again by the sweep, each wait twice the last, up to the cap; the same
# out_refund_no every time, so the gateway refunds it once.
REFUND_RETRY_FIRST_SECONDS = 60
REFUND_RETRY_MAX_SECONDS = 3600


class PaymentMismatch(DomainError):
    """A success report that does not match what we asked for: never applied."""

    status_code = 400
    code = "payment_mismatch"
    default_message = "The payment report does not match the payment."


class RefundNotRetryable(ValidationFailed):
    default_message = "Only a failed refund, or one still waiting to be sent, can be sent again."


def payment_apply_success(
    *, out_trade_no: str, transaction_id: str, amount: int, paid_at: datetime | None = None, actor: str = "gateway"
) -> Payment:
    """A verified "the user paid" from the gateway (or the sandbox); safe to repeat."""
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
    """Close an open payment at the gateway first, then here; a paid one stays paid.

    A gateway that refuses because the payer has already paid (the
    notification is late or lost) says so with ``PaidAtGateway``: that
    success is applied here, as a notification would apply it, so an order
    paid just before its deadline is not taken for overdue.
    """
    payment = Payment.objects.get(pk=payment_id)
    if payment.status != PaymentStatus.CREATED:
        return False
    try:
        gateway_for(payment.gateway).close(payment)
    except PaidAtGateway as paid:
        state = paid.state
        try:
            payment_apply_success(
                out_trade_no=payment.out_trade_no, transaction_id=state.transaction_id,
                amount=state.amount if state.amount is not None else payment.amount, paid_at=state.paid_at, actor="gateway",
            )
        except DomainError:  # a mismatched amount, say: recorded as an event, left to ops
            logger.warning("%s is paid at the gateway but its success was not applied", payment.out_trade_no, exc_info=True)
        return False
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
            # In the same transaction: the coupon this payment held goes back to
            # unused; a late success of this payment then no longer matches the
            # order and is refunded.
            coupon_release_for_payment(payment=payment, reason=f"payment closed: {reason}", actor=actor)
    return True


def refund_retry_delay(attempts: int) -> timedelta:
    """How long the sweep waits before sending a refund again after ``attempts`` failed sends."""
    return timedelta(seconds=min(REFUND_RETRY_FIRST_SECONDS * 2 ** max(attempts - 1, 0), REFUND_RETRY_MAX_SECONDS))


def refund_submit(*, refund_id: int) -> Refund:
    """Send a pending refund to the gateway; resending the same number refunds once.

    No lock is held while the gateway answers (on SQLite a transaction is the
    whole write lock, bids included, for up to the gateway's timeout). Two
    sends racing (the job and the sweep) both reach the gateway with the same
    ``out_refund_no``, which refunds once; the first answer applied wins and
    the second finds the refund no longer pending.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING:
        return refund
    state, error = None, None
    try:
        state = gateway_for(refund.payment.gateway).refund(refund)
    except GatewayError as failure:
        error = failure
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        if refund.status != RefundStatus.PENDING:
            return refund
        refund.attempts += 1
        if error is not None:
            refund.last_error = str(error)[:2000]
            refund.next_attempt_at = timezone.now() + refund_retry_delay(refund.attempts)
            refund.save(update_fields=["attempts", "last_error", "next_attempt_at"])
            event_record(
                "refund.send_failed", actor="job", user=refund.payment.user, refund=refund, payment=refund.payment,
                amount=refund.amount, data={"attempts": refund.attempts, "error": refund.last_error[:200],
                                            "next_attempt_at": refund.next_attempt_at.isoformat()},
            )
            return refund
        refund.status = RefundStatus.PROCESSING
        refund.gateway_refund_id = state.gateway_refund_id
        refund.submitted_at = timezone.now()
        refund.next_attempt_at = None
        refund.save(update_fields=["attempts", "status", "gateway_refund_id", "submitted_at", "last_error", "next_attempt_at"])
        event_record("refund.submitted", actor="job", user=refund.payment.user, refund=refund, payment=refund.payment, amount=refund.amount)
        signals.refund_submitted.send(sender=Refund, refund_id=refund.pk)
        if state.status != "processing":
            _refund_finish(refund, succeeded=state.status == "succeeded", actor="gateway")
    return refund


def refund_retry(*, refund_id: int, staff: str) -> Refund:
    """Ops: send a failed refund (or one waiting out its backoff) again, now, with
    the same ``out_refund_no``; its deposit has stayed ``refunding`` meanwhile."""
    with transaction.atomic():
        refund = Refund.objects.select_for_update().select_related("payment").get(pk=refund_id)
        if refund.status not in (RefundStatus.FAILED, RefundStatus.PENDING):
            raise RefundNotRetryable(status=refund.status)
        event_record(
            "refund.retried", actor="ops", user=refund.payment.user, refund=refund, payment=refund.payment,
            deposit=refund.payment.deposit, order=refund.payment.order, amount=refund.amount,
            data={"staff": staff, "was": refund.status, "attempts": refund.attempts},
        )
        refund.status = RefundStatus.PENDING
        refund.next_attempt_at = None
        refund.completed_at = None
        refund.save(update_fields=["status", "next_attempt_at", "completed_at"])
    return refund_submit(refund_id=refund_id)


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
