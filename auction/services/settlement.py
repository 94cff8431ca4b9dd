"""A lot's end and a special's phases: carried out by jobs, decided by the clock.

The outcome of a lot is fixed the moment it ends (see ``Lot.status_at``);
settlement only carries out the consequences, in one transaction under the
lot's lock, so running it twice, late, or on two workers at once changes
nothing the second time, and a crash halfway leaves nothing half done.
"""

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from auction import signals
from auction.models import Deposit, DepositScope, DepositStatus, Event, Lot, LotStatus, Order, Special, SpecialStatus
from auction.models.catalog import LOT_OUTCOMES, status_by_time
from auction.selectors import special_closes_at
from auction.services import notifications
from auction.services.deposits import deposit_cancel, deposits_refund, special_deposits_settle
from auction.services.events import event_record, events_record_bulk
from auction.services.live import live_lot_changed, live_user_event
from auction.services.market_rows import market_rows_update
from auction.services.orders import orders_create

logger = logging.getLogger(__name__)

# A read settles at most this many lots: a special whose lots all end at one
# moment would otherwise settle every one of them inside one request. Lots
# past the batch read ``bidding`` until the next read or the job settles them.
SETTLE_ON_READ_LIMIT = 10
# Lots per settling transaction: big enough that a sale of thousands of lots
# is a few dozen transactions, small enough that one holds its locks briefly.
SETTLE_BATCH = 100


def pay_deadline_for(ends_at: datetime, *, now: datetime) -> datetime:
    """The winner's full window counted from when the order exists, or the end if
    later (DESIGN, Rules): settled late after an outage, the window starts at
    the order, so no deposit is forfeited before its winner could see the order."""
    return max(ends_at, now) + timedelta(seconds=settings.AUCTION_PAYMENT_WINDOW_SECONDS)


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
        return _settle_locked([lot]).get(lot.pk)


def lots_settle(*, now: datetime | None = None, limit: int = SETTLE_BATCH) -> int:
    """Settle up to ``limit`` lots past their end, in one transaction; the number settled.

    The batch is the lots due and not yet settled whose rows no other worker
    holds (``SKIP LOCKED``): two workers, or two clusters, settle disjoint
    batches, and a lot another transaction holds is left to the next batch.
    A crash halfway rolls the whole batch back; the next run does it again.
    """
    now = now or timezone.now()
    with transaction.atomic():
        lots = list(
            Lot.objects.select_for_update(skip_locked=True)
            .filter(ends_at__lte=now)
            .exclude(status__in=LOT_OUTCOMES)
            .order_by("pk")[:limit]
        )
        if lots:
            _settle_locked(lots)
    return len(lots)


def lots_settle_all(*, now: datetime | None = None, budget_seconds: float = 45.0) -> int:
    """Batches until nothing is due (or the budget is spent: the caller runs again)."""
    started, settled = time.monotonic(), 0
    while time.monotonic() - started < budget_seconds:
        done = lots_settle(now=now or timezone.now())
        settled += done
        if done == 0:
            break
    return settled


def lots_settle_pending(*, now: datetime | None = None, more_than: int = 0) -> bool:
    """Whether more than ``more_than`` lots are past their end and unsettled."""
    due = Lot.objects.filter(ends_at__lte=now or timezone.now()).exclude(status__in=LOT_OUTCOMES)
    if not more_than:
        return due.exists()
    return due.order_by()[more_than : more_than + 1].exists()


def lots_settle_locked(lots: list[Lot]) -> dict[int, Order]:
    """Settle ``lots`` whose rows the caller holds locked and which are over (a
    buy-now ends its lot at once): the same consequences as any end."""
    return _settle_locked(lots)


def _settle_locked(lots: list[Lot]) -> dict[int, Order]:
    """The consequences of ``lots``' ends, their rows locked by the caller: a fixed
    number of queries for the whole batch (bulk reads of the deposits, bulk
    creation of orders, refunds and events)."""
    sold = [lot for lot in lots if lot.bid_count and lot.leader_id and lot.reserve_met]
    sold_ids = {lot.pk for lot in sold}
    # The real clock, not the caller's ``now`` (which picks the lots due): the window counts from this order.
    deadline = pay_deadline_for(max(lot.ends_at for lot in lots), now=timezone.now())
    deposits = list(Deposit.objects.select_for_update().filter(lot__in=lots, scope=DepositScope.LOT).order_by("pk"))
    held = {(d.lot_id, d.user_id): d.amount for d in deposits if d.status == DepositStatus.HELD}
    orders = orders_create(
        [(lot, lot.leader_id, held.get((lot.pk, lot.leader_id), 0)) for lot in sold], pay_deadline=deadline
    )
    if sold_ids:
        market_rows_update(Lot.objects.filter(pk__in=sold_ids), status=LotStatus.SOLD)
    unsold_ids = [lot.pk for lot in lots if lot.pk not in sold_ids]
    if unsold_ids:
        market_rows_update(Lot.objects.filter(pk__in=unsold_ids), status=LotStatus.UNSOLD)
    events = []
    for lot in lots:
        lot.status = LotStatus.SOLD if lot.pk in sold_ids else LotStatus.UNSOLD
        lot.version += 1
        events.append(Event(
            kind=f"lot.{lot.status}", actor="job", lot=lot, special_id=lot.special_id, user_id=lot.leader_id,
            amount=lot.current_price or None, data={"bid_count": lot.bid_count, "reserve_met": lot.reserve_met},
        ))
    events_record_bulk(events)
    notifications.orders_won_queue(list(orders.values()))
    for lot in lots:
        live_lot_changed(lot_id=lot.pk, version=lot.version, price=lot.current_price)
    for order in orders.values():
        live_user_event(user_id=order.user_id, kind="won", lot_id=order.lot_id, order_no=order.order_no)
    winners = {lot.pk: lot.leader_id for lot in sold}
    losers = [d for d in deposits if d.status == DepositStatus.HELD and winners.get(d.lot_id) != d.user_id]
    reasons = {d.pk: "lot ended without you winning" if d.lot_id in winners else "lot unsold" for d in losers}
    deposits_refund(losers, reasons=reasons)
    for deposit in deposits:
        if deposit.status == DepositStatus.PENDING:
            deposit_cancel(deposit_id=deposit.pk, reason="lot ended before payment")
    for special_id in sorted({lot.special_id for lot in lots}):
        signals.special_outcome_changed.send(sender=Lot, special_id=special_id)
    return orders


def lots_settle_due(lots: Iterable[Lot], *, now: datetime, limit: int = SETTLE_ON_READ_LIMIT) -> None:
    """Settle the lots read that are past their end and not yet settled, as the
    job would (the same service, under the same lock), and update their
    ``status``: a lot read as ``sold`` then has its order.

    Only a lot due and unsettled costs anything, and only until it is settled:
    the check is on the rows already read.
    """
    due = [lot for lot in lots if lot.status not in LOT_OUTCOMES and now >= lot.ends_at][:limit]
    if not due:
        return
    for lot in due:
        try:
            lot_settle(lot_id=lot.pk)
        except DatabaseError:
            # A lock wait timed out, say: this read shows the lot unsettled,
            # the job (or the next read) settles it.
            logger.warning("settling lot %s on read failed; the job settles it", lot.pk, exc_info=True)
    statuses = dict(Lot.objects.filter(pk__in=[lot.pk for lot in due]).values_list("pk", "status"))
    for lot in due:
        lot.status = statuses.get(lot.pk, lot.status)


def special_advance(*, special_id: int, now: datetime | None = None) -> str:
    """Bring the stored statuses (for ops and the admin) in line with the clock."""
    now = now or timezone.now()
    special = Special.objects.get(pk=special_id)
    status = special.status_at(now, closes_at=special_closes_at(special))
    if Special.objects.filter(pk=special_id).exclude(status=status).update(status=status):
        event_record(f"special.{status}", actor="job", special=special)
    phase = status_by_time(now, preview_at=special.preview_at, starts_at=special.starts_at) or LotStatus.BIDDING
    if market_rows_update(
        Lot.objects.filter(special_id=special_id, status__in=(LotStatus.UPCOMING, LotStatus.PREVIEW, LotStatus.BIDDING)).exclude(status=phase),
        status=phase,
    ):
        for lot_id, version in Lot.objects.filter(special_id=special_id).values_list("id", "version"):
            live_lot_changed(lot_id=lot_id, version=version)
    if phase == LotStatus.BIDDING and status != SpecialStatus.ENDED:
        notifications.lot_opening_queue(special_id=special_id)
    if status == SpecialStatus.ENDED:
        special_deposits_settle(special_id=special_id, now=now)
    return status
