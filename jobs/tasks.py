"""Django-Q2 tasks: each a few lines calling a service, each safe to run twice,
late, or on two clusters at once (the services lock and re-check)."""

from auction.services import deposits, fulfilment, orders, payments, reconcile, settlement


def lot_end(lot_id: int) -> str:
    order = settlement.lot_settle(lot_id=lot_id)
    return f"lot {lot_id}: order {order.order_no}" if order else f"lot {lot_id}: nothing to do or unsold"


def special_phase(special_id: int) -> str:
    return settlement.special_advance(special_id=special_id)


def order_expire(order_id: int) -> bool:
    return orders.order_expire(order_id=order_id)


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
    return reconcile.reconcile()
