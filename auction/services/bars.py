"""Barred defaulters: the winner who did not pay is kept off that lot's
re-auctions, and after ``AUCTION_DEFAULTS_BEFORE_BAN`` overdue orders off
every new deposit and bid until ops lift the bar.

Checked where a deposit or a bid is decided: the bid's single read carries it
as a scalar subquery (market_rows), buy-now and deposits under the lot's lock.
"""

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auction.models import Event, Lot, LotBar, Order, OrderStatus, User
from auction.services.events import event_record


def is_barred(*, user_id: int, lot_id: int | None) -> bool:
    """Barred everywhere, or from this lot (a re-auction of one they defaulted on)."""
    if User.objects.filter(pk=user_id, barred_at__isnull=False).exists():
        return True
    return lot_id is not None and LotBar.objects.filter(lot_id=lot_id, user_id=user_id).exists()


def defaults_counted(*, user: User) -> int:
    """Orders that went overdue since the last lift (by the event the overdue
    wrote): a lifted bar starts the count again."""
    events = Event.objects.filter(kind="order.overdue", user=user)
    if user.bar_lifted_at:
        events = events.filter(created_at__gt=user.bar_lifted_at)
    return events.values("order_id").distinct().count()


def default_recorded(*, order: Order) -> bool:
    """Called under the order's lock when it goes overdue: bar the user once
    they reach the limit. True if this default barred them."""
    user = User.objects.select_for_update().get(pk=order.user_id)
    if user.barred_at is not None or defaults_counted(user=user) < settings.AUCTION_DEFAULTS_BEFORE_BAN:
        return False
    user.barred_at = timezone.now()
    user.save(update_fields=["barred_at"])
    event_record("user.barred", actor="job", user_id=user.pk, order=order,
                 data={"defaults": defaults_counted(user=user), "limit": settings.AUCTION_DEFAULTS_BEFORE_BAN})
    return True


def bar_lift(*, user_id: int, reason: str, actor: str = "ops", staff: str = "") -> bool:
    """Ops lift a user's bar, with a reason; earlier defaults no longer count.
    False when the user was not barred (lifted by someone else first)."""
    reason = reason.strip()
    if not reason:
        raise ValueError("Say why the bar is lifted.")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if user.barred_at is None:
            return False
        user.barred_at, user.bar_lifted_at = None, timezone.now()
        user.save(update_fields=["barred_at", "bar_lifted_at"])
        # Who lifted it sits next to why in the audit trail.
        data = {"reason": reason, **({"staff": staff} if staff else {})}
        event_record("user.bar_lifted", actor=actor, user_id=user.pk, data=data)
    return True


def lot_bars_carry(*, old: Lot, new: Lot) -> list[int]:
    """At a re-auction: whoever defaulted on the old lot, or was barred from it, is barred from the new one."""
    users = set(LotBar.objects.filter(lot=old).values_list("user_id", flat=True))
    users |= set(Order.objects.filter(lot=old, status=OrderStatus.OVERDUE).values_list("user_id", flat=True))
    LotBar.objects.bulk_create([LotBar(lot=new, user_id=user_id) for user_id in sorted(users)], ignore_conflicts=True)
    return sorted(users)
