from auction.models import Event
from auction.services.live import live_event_recorded


def event_record(kind: str, *, actor: str = "system", amount: int | None = None, data: dict | None = None, **subjects) -> Event:
    """Append to the audit trail; ``subjects`` are user, special, lot, deposit, order, payment, refund, coupon, user_coupon."""
    event = Event.objects.create(kind=kind, actor=actor, amount=amount, data=data or {}, **subjects)
    live_event_recorded(kind, subjects)  # the owner's sockets see a deposit or an order change, after commit
    return event
