from auction.models import Event


def event_record(kind: str, *, actor: str = "system", amount: int | None = None, data: dict | None = None, **subjects) -> Event:
    """Append to the audit trail; ``subjects`` are user, special, lot, deposit, order, payment, refund, coupon, user_coupon."""
    return Event.objects.create(kind=kind, actor=actor, amount=amount, data=data or {}, **subjects)
