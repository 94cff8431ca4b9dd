"""The sweep: anything due and not done gets done.

Exact-time schedules give promptness; this gives certainty. It is what makes
a lost task (the Redis broker does not acknowledge), a crashed worker or a
missing notification harmless. Each step is idempotent and isolated: one
failure is logged and the rest still runs.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from auction.gateways.payments import GatewayError, gateway_for
from auction.models import (
    Deposit,
    DepositScope,
    DepositStatus,
    Payment,
    PaymentStatus,
    Special,
    SpecialStatus,
    UserCoupon,
    UserCouponStatus,
)
from auction.services.coupons import user_coupon_expire
from auction.services.deposits import deposit_cancel, special_deposits_settle
from auction.services.fulfilment import order_receipt_auto, orders_due_for_auto_receipt
from auction.services.overdue import orders_expire_due
from auction.services.payments import payment_apply_success, payment_close
from auction.services.refund_batches import refunds_poll_all, refunds_run, refunds_submit
from auction.services.settlement import lots_settle_all, special_advance

logger = logging.getLogger(__name__)

# Leave a fresh refund to its own job and notification before polling it.
REFUND_POLL_AFTER = timedelta(seconds=settings.AUCTION_REFUND_POLL_AFTER_SECONDS)
BATCH = 200
# Each batched step runs until nothing is left or this is spent; the next sweep,
# a minute on, carries on. Short enough that a worker takes SIGTERM in time.
SWEEP_BUDGET_SECONDS = 10.0


def _each(label: str, ids, action) -> int:
    done = 0
    for pk in ids:
        try:
            action(pk)
            done += 1
        except Exception:
            logger.exception("reconcile: %s %s failed; the next sweep retries", label, pk)
    return done


def _guarded(label: str, action) -> int:
    try:
        return action()
    except Exception:
        logger.exception("reconcile: %s failed; the next sweep retries", label)
        return 0


def payment_reconcile(payment_id: int) -> None:
    """Ask the gateway before closing: a payment it says is paid is applied instead.

    For payments whose window has passed: the sweep, and ops' "query now".
    """
    payment = Payment.objects.get(pk=payment_id)
    try:
        state = gateway_for(payment.gateway).query(payment)
    except GatewayError:
        return
    if state.status == "paid":
        payment_apply_success(
            out_trade_no=payment.out_trade_no, transaction_id=state.transaction_id,
            amount=state.amount if state.amount is not None else payment.amount, paid_at=state.paid_at, actor="job",
        )
    else:
        payment_close(payment_id=payment.pk, reason="payment window passed")


def reconcile(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    report = {}
    report["specials"] = _each(
        "special", Special.objects.exclude(status=SpecialStatus.ENDED).values_list("pk", flat=True)[:BATCH],
        lambda pk: special_advance(special_id=pk, now=now),
    )
    # Lots, orders and refunds: in bounded batches until none is left (a lost
    # trigger, a killed cluster), not a fixed number a minute.
    report["lots_settled"] = _guarded("lots", lambda: lots_settle_all(now=now, budget_seconds=SWEEP_BUDGET_SECONDS))
    report["orders_expired"] = _guarded("orders", lambda: orders_expire_due(now=now, budget_seconds=SWEEP_BUDGET_SECONDS))
    # Ask the gateway about expired payments before giving up on their
    # deposits: one paid in time whose notification was lost is then held.
    report["payments_closed"] = _each(
        "payment",
        Payment.objects.filter(status=PaymentStatus.CREATED, expires_at__lte=now).values_list("pk", flat=True)[:BATCH],
        payment_reconcile,
    )
    report["deposits_cancelled"] = _each(
        "deposit",
        Deposit.objects.filter(status=DepositStatus.PENDING, payment__expires_at__lte=now).values_list("pk", flat=True)[:BATCH],
        lambda pk: deposit_cancel(deposit_id=pk, reason="payment window passed"),
    )
    # A refund the gateway did not take waits out its backoff, a claimed one its
    # lease (both in next_attempt_at); a fresh one is left to its own job first.
    report["refunds_submitted"] = _guarded("refunds", lambda: refunds_run(refunds_submit, now=now, budget_seconds=SWEEP_BUDGET_SECONDS))
    report["refunds_polled"] = _guarded("refund polls", lambda: refunds_poll_all(now=now, budget_seconds=SWEEP_BUDGET_SECONDS, submitted_before=now - REFUND_POLL_AFTER))
    report["special_deposits"] = _each(
        "special deposits",
        Deposit.objects.filter(scope=DepositScope.SPECIAL, status=DepositStatus.HELD, special__status=SpecialStatus.ENDED)
        .values_list("special_id", flat=True).distinct()[:BATCH],
        lambda pk: special_deposits_settle(special_id=pk, now=now),
    )
    report["coupons_expired"] = _each(
        "user coupon",
        UserCoupon.objects.filter(status=UserCouponStatus.UNUSED, valid_until__lte=now).values_list("pk", flat=True)[:BATCH],
        lambda pk: user_coupon_expire(user_coupon_id=pk, now=now),
    )
    report["orders_received"] = _each(
        "order receipt", orders_due_for_auto_receipt(now=now).values_list("pk", flat=True)[:BATCH],
        lambda pk: order_receipt_auto(order_id=pk, now=now),
    )
    return report
