"""Django-Q2 tasks: each a few lines calling a service, each safe to run twice,
late, or on two clusters at once (the services lock and re-check)."""

from auction.services import (
    deposits,
    fulfilment,
    idempotency,
    live,
    notifications,
    overdue,
    payments,
    reconcile,
    refund_batches,
    settlement,
    tokens,
)
from jobs.schedules import enqueue

# A batch job works this long, then hands what is left to a fresh task: a
# worker is never more than a batch away from taking SIGTERM (runjobs' grace).
BUDGET_SECONDS = 10.0


def lots_end(helper: bool = False) -> str:
    """Every lot due, in batches; the first to find more than a batch asks a second worker to help."""
    if not helper and settlement.lots_settle_pending(more_than=settlement.SETTLE_BATCH):
        # Asked before the first batch commits, so the helper is queued ahead of the
        # refund job that commit enqueues: both workers settle and the winners get
        # their orders first; the refunds, bound by the gateway's rate, follow. Asked
        # after, the second worker spent the settlement on refunds (2,000 lots: the
        # last order 19.5 s after the end, against 1.2 s for 200).
        enqueue("jobs.tasks.lots_end", True)
    settled = settlement.lots_settle()
    if settled:
        settled += settlement.lots_settle_all(budget_seconds=BUDGET_SECONDS)
        if settlement.lots_settle_pending():
            enqueue("jobs.tasks.lots_end", True)
    return f"{settled} lots settled"


def orders_expire() -> int:
    return overdue.orders_expire_due(budget_seconds=BUDGET_SECONDS)


def refunds_submit() -> int:
    sent = refund_batches.refunds_run(refund_batches.refunds_submit, budget_seconds=BUDGET_SECONDS)
    if sent and refund_batches.refunds_due_exist("pending"):
        enqueue("jobs.tasks.refunds_submit")
    return sent


def refunds_poll() -> int:
    # One round over what is processing; one still processing is asked again by
    # the sweep (WeChat's notification usually comes first).
    return refund_batches.refunds_poll_all(budget_seconds=BUDGET_SECONDS)


# Kept for tasks and schedules enqueued before the batch jobs existed.
def lot_end(lot_id: int) -> str:
    order = settlement.lot_settle(lot_id=lot_id)
    return f"lot {lot_id}: order {order.order_no}" if order else f"lot {lot_id}: nothing to do or unsold"


def special_phase(special_id: int) -> str:
    return settlement.special_advance(special_id=special_id)


def order_expire(order_id: int) -> bool:
    return overdue.order_expire(order_id=order_id)


def order_receipt_auto(order_id: int) -> bool:
    return fulfilment.order_receipt_auto(order_id=order_id)


def refund_submit(refund_id: int) -> str:
    return payments.refund_submit(refund_id=refund_id).status


def refund_poll(refund_id: int) -> str:
    return payments.refund_poll(refund_id=refund_id).status


def payment_close(payment_id: int) -> bool:
    return payments.payment_close(payment_id=payment_id, reason="no longer wanted")


def special_deposits(special_id: int) -> int:
    return deposits.special_deposits_settle(special_id=special_id)


def sweep() -> dict:
    result = reconcile.reconcile()
    live.live_changes_purge()  # the embedded default's live change log (auction/services/live.py)
    return result


def tokens_purge() -> str:
    return f"{tokens.tokens_purge()} tokens purged"


def idempotency_purge() -> int:
    return idempotency.idempotency_purge()


def notifications_send() -> dict:
    return notifications.notifications_send()
