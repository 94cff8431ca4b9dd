"""A lot's end and a special's phases: carried out by jobs, decided by the clock.

The outcome of a lot is fixed the moment it ends (see ``Lot.status_at``);
settlement only carries out the consequences, in one transaction under the
lot's lock, so running it twice, late, or on two workers at once changes
nothing the second time, and a crash halfway leaves nothing half done.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.models import Lot, LotStatus, Order, Special, SpecialStatus
from auction.models.catalog import LOT_OUTCOMES, status_by_time
from auction.services import notifications
from auction.services.deposits import lot_deposits_release, special_closes_at, special_deposits_settle
from auction.services.events import event_record
from auction.services.orders import order_create


def lot_settle(*, lot_id: int) -> Order | None:
    """Sold (an order for the leader) or unsold; every other lot deposit goes back."""
    with transaction.atomic():
        lot = Lot.objects.select_for_update().get(pk=lot_id)
        if lot.status in LOT_OUTCOMES:
            return None
        if timezone.now() < lot.ends_at:
            # Anti-sniping moved the end after this job was scheduled.
            signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)
            return None
        order = None
        if lot.bid_count and lot.leader_id and lot.reserve_met:
            lot.status = LotStatus.SOLD
            deadline = lot.ends_at + timedelta(seconds=settings.AUCTION_PAYMENT_WINDOW_SECONDS)
            order = order_create(lot=lot, winner_id=lot.leader_id, pay_deadline=deadline)
            notifications.order_won_queue(order=order)
        else:
            lot.status = LotStatus.UNSOLD
        lot.version += 1
        lot.save(update_fields=["status", "version"])
        event_record(
            f"lot.{lot.status}", actor="job", lot=lot, special_id=lot.special_id, user_id=lot.leader_id,
            amount=lot.current_price or None, data={"bid_count": lot.bid_count, "reserve_met": lot.reserve_met},
        )
        lot_deposits_release(lot=lot, winner_id=order.user_id if order else None)
        signals.special_outcome_changed.send(sender=Lot, special_id=lot.special_id)
    return order


def special_advance(*, special_id: int, now: datetime | None = None) -> str:
    """Bring the stored statuses (for ops and the admin) in line with the clock."""
    now = now or timezone.now()
    special = Special.objects.get(pk=special_id)
    status = special.status_at(now, closes_at=special_closes_at(special))
    if Special.objects.filter(pk=special_id).exclude(status=status).update(status=status):
        event_record(f"special.{status}", actor="job", special=special)
    phase = status_by_time(now, preview_at=special.preview_at, starts_at=special.starts_at) or LotStatus.BIDDING
    Lot.objects.filter(special_id=special_id, status__in=(LotStatus.UPCOMING, LotStatus.PREVIEW, LotStatus.BIDDING)).exclude(
        status=phase
    ).update(status=phase)
    if phase == LotStatus.BIDDING and status != SpecialStatus.ENDED:
        notifications.lot_opening_queue(special_id=special_id)
    if status == SpecialStatus.ENDED:
        special_deposits_settle(special_id=special_id, now=now)
    return status
