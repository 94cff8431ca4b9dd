"""The figures ops watch, read in a constant number of queries whatever the volume.

One aggregate query per table: every period (today, 7 days, 30 days) and
every bucket of a chart is a filtered aggregate of the same SELECT, so the
dashboard costs seven queries at ten orders or ten million. Buckets are
computed here from datetime bounds rather than with the database's date
truncation, which on MySQL needs its time zone tables loaded.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, F, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from auction.models import (
    Bid,
    Deposit,
    DepositStatus,
    Lot,
    Order,
    OrderStatus,
    Refund,
    RefundStatus,
    UserCoupon,
)
from auction.models.catalog import LOT_OUTCOMES
from auction.services.notifications import notifications_failed_count

PERIODS = ("today", "7d", "30d")
BID_HOURS = 24
GMV_DAYS = 30


@dataclass(frozen=True)
class Figure:
    count: int
    amount: int = 0  # fen


@dataclass
class Dashboard:
    now: datetime
    since: dict[str, datetime]
    # Per period.
    gmv: dict[str, Figure] = field(default_factory=dict)
    overdue: dict[str, Figure] = field(default_factory=dict)
    forfeited: dict[str, Figure] = field(default_factory=dict)
    coupons_claimed: dict[str, int] = field(default_factory=dict)
    coupons_used: dict[str, int] = field(default_factory=dict)
    bids: dict[str, int] = field(default_factory=dict)
    # Now.
    awaiting_payment: Figure = Figure(0)
    awaiting_shipment: int = 0
    deposits_held: Figure = Figure(0)
    refunds_in_flight: Figure = Figure(0)
    refunds_failed: Figure = Figure(0)
    notifications_failed: int = 0
    live_lots: int = 0
    # Charts: (start of bucket, value), oldest first.
    bids_per_hour: list[tuple[datetime, int]] = field(default_factory=list)
    gmv_per_day: list[tuple[datetime, int]] = field(default_factory=list)


def period_starts(now: datetime) -> dict[str, datetime]:
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    return {"today": midnight, "7d": now - timedelta(days=7), "30d": now - timedelta(days=30)}


def _sum(expression, condition: Q):
    return Coalesce(Sum(expression, filter=condition), Value(0))


def dashboard(*, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    since = period_starts(now)
    board = Dashboard(now=now, since=since)
    hours = [now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=BID_HOURS - 1 - i) for i in range(BID_HOURS)]
    midnight = since["today"]
    days = [midnight - timedelta(days=GMV_DAYS - 1 - i) for i in range(GMV_DAYS)]

    # Orders: GMV, overdue, awaiting payment and shipment, GMV per day.
    paid = Q(status=OrderStatus.PAID)
    # What a buyer owes is the hammer price plus the buyer's premium (佣金).
    total = F("price") + F("premium")
    due = Greatest(total - F("deposit_credit") - F("coupon_discount"), Value(0))
    aggregates = {}
    for name, start in since.items():
        aggregates[f"gmv_n_{name}"] = Count("pk", filter=paid & Q(paid_at__gte=start))
        aggregates[f"gmv_{name}"] = _sum(total, paid & Q(paid_at__gte=start))
        overdue = Q(status=OrderStatus.OVERDUE, pay_deadline__gte=start)
        aggregates[f"overdue_n_{name}"] = Count("pk", filter=overdue)
        aggregates[f"overdue_{name}"] = _sum(total, overdue)
    pending = Q(status=OrderStatus.PENDING_PAYMENT)
    aggregates["pending_n"] = Count("pk", filter=pending)
    aggregates["pending"] = _sum(due, pending)
    aggregates["awaiting_shipment"] = Count("pk", filter=paid & Q(fulfilment_status="awaiting_shipment"))
    for i, day in enumerate(days):
        aggregates[f"day_{i}"] = _sum(total, paid & Q(paid_at__gte=day, paid_at__lt=day + timedelta(days=1)))
    row = Order.objects.aggregate(**aggregates)
    for name in PERIODS:
        board.gmv[name] = Figure(row[f"gmv_n_{name}"], row[f"gmv_{name}"])
        board.overdue[name] = Figure(row[f"overdue_n_{name}"], row[f"overdue_{name}"])
    board.awaiting_payment = Figure(row["pending_n"], row["pending"])
    board.awaiting_shipment = row["awaiting_shipment"]
    board.gmv_per_day = [(day, row[f"day_{i}"]) for i, day in enumerate(days)]

    # Deposits: held now, forfeited per period (forfeited is final, so updated_at is when).
    aggregates = {"held_n": Count("pk", filter=Q(status=DepositStatus.HELD)), "held": _sum("amount", Q(status=DepositStatus.HELD))}
    for name, start in since.items():
        forfeited = Q(status=DepositStatus.FORFEITED, updated_at__gte=start)
        aggregates[f"forfeited_n_{name}"] = Count("pk", filter=forfeited)
        aggregates[f"forfeited_{name}"] = _sum("amount", forfeited)
    row = Deposit.objects.aggregate(**aggregates)
    board.deposits_held = Figure(row["held_n"], row["held"])
    board.forfeited = {name: Figure(row[f"forfeited_n_{name}"], row[f"forfeited_{name}"]) for name in PERIODS}

    # Refunds: in flight (not yet sent or with the gateway) and failed, now.
    flight = Q(status__in=(RefundStatus.PENDING, RefundStatus.PROCESSING))
    failed = Q(status=RefundStatus.FAILED)
    row = Refund.objects.aggregate(
        flight_n=Count("pk", filter=flight), flight=_sum("amount", flight), failed_n=Count("pk", filter=failed), failed=_sum("amount", failed)
    )
    board.refunds_in_flight = Figure(row["flight_n"], row["flight"])
    board.refunds_failed = Figure(row["failed_n"], row["failed"])

    # Bids: per period and per hour of the last day.
    aggregates = {f"p_{name}": Count("pk", filter=Q(created_at__gte=start)) for name, start in since.items()}
    for i, hour in enumerate(hours):
        aggregates[f"h_{i}"] = Count("pk", filter=Q(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1)))
    row = Bid.objects.filter(created_at__gte=min(since["30d"], hours[0])).aggregate(**aggregates)
    board.bids = {name: row[f"p_{name}"] for name in PERIODS}
    board.bids_per_hour = [(hour, row[f"h_{i}"]) for i, hour in enumerate(hours)]

    board.live_lots = live_lots(now=now).count()
    board.notifications_failed = notifications_failed_count()

    aggregates = {}
    for name, start in since.items():
        aggregates[f"claimed_{name}"] = Count("pk", filter=Q(claimed_at__gte=start))
        aggregates[f"used_{name}"] = Count("pk", filter=Q(status="used", used_at__gte=start))
    row = UserCoupon.objects.aggregate(**aggregates)
    board.coupons_claimed = {name: row[f"claimed_{name}"] for name in PERIODS}
    board.coupons_used = {name: row[f"used_{name}"] for name in PERIODS}
    return board


def live_lots(*, now: datetime):
    """Bidding right now, by the clock (the status column lags until the phase job runs)."""
    return Lot.objects.filter(is_published=True, special__starts_at__lte=now, ends_at__gt=now).exclude(status__in=LOT_OUTCOMES)
