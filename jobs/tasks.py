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
    settlement,
    tokens,
)


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
