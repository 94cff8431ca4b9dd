from auction.models import Event
from auction.services.live import live_event_recorded


def event_record(kind: str, *, actor: str = "system", amount: int | None = None, data: dict | None = None, **subjects) -> Event:
    """Append to the audit trail; ``subjects`` are user, special, lot, deposit, order, payment, refund, coupon, user_coupon."""
    event = Event.objects.create(kind=kind, actor=actor, amount=amount, data=data or {}, **subjects)
    live_event_recorded(kind, subjects)  # the owner's sockets see a deposit or an order change, after commit
    return event


def events_record_bulk(events: list[Event]) -> list[Event]:
    """Many audit rows in one INSERT (a batch of settled lots, sent refunds), with
    the same after-commit announcements to their owners as ``event_record``."""
    made = Event.objects.bulk_create(events)
    for event in events:
        live_event_recorded(
            event.kind, {"user_id": event.user_id, "deposit_id": event.deposit_id, "order_id": event.order_id}
        )
    return made
