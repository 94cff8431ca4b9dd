"""Subscribe messages: credits, the outbox, and the job that sends it.

Every message is an outbox row first, unique per (user, kind, object), written
in the transaction that caused it (a settlement, a refund completed, bidding
opening); outbids are derived from the bid rows by the sending job, so the bid
path writes nothing more. The job claims a row with a conditional update
(``pending`` → ``sending``), so two clusters never send one twice; a credit is
spent only when WeChat accepted the message. The policy is in the README
("Notifications").
"""

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from auction import signals
from auction.errors import LotNotOpen, NotFound
from auction.gateways import wechat_subscribe
from auction.gateways.wechat_subscribe import NO_SUBSCRIPTION, WechatSendError
from auction.models import (
    Bid,
    Deposit,
    Lot,
    LotReminder,
    Notification,
    NotificationKind,
    NotificationStatus,
    Order,
    OrderStatus,
    SubscriptionCredit,
    User,
)
from auction.models.catalog import LOT_OUTCOMES
from auction.models.notifications import KIND_PRIORITY, OutbidScan
from auction.services.notification_texts import shanghai_time, template_data, yuan

logger = logging.getLogger(__name__)

# A worker holds a row this long while sending; past it the send was interrupted.
LEASE_SECONDS = 120
BATCH = 200
OUTBID_SCAN_BIDS = 1000
# Kinds below refunded (outbid, lot_opening) leave a shared template's last credits to the others.
LOW_PRIORITY = KIND_PRIORITY[NotificationKind.OUTBID]


# --- Credits ------------------------------------------------------------------

def template_ids() -> dict[str, str]:
    """Kind → template id, for the kinds the operator configured."""
    return {
        kind: config["template_id"]
        for kind, config in settings.WECHAT_SUBSCRIBE_TEMPLATES.items()
        if kind in NotificationKind.values and config.get("template_id")
    }


def subscriptions_for(*, user: User) -> dict:
    templates = template_ids()
    rows = dict(
        SubscriptionCredit.objects.filter(user=user, template_id__in=set(templates.values()), is_banned=False)
        .values_list("template_id", "credits")
    )
    return {"templates": templates, "credits": {kind: rows.get(template, 0) for kind, template in templates.items()}}


def subscriptions_record(*, user: User, results: dict[str, str]) -> dict:
    """What ``wx.requestSubscribeMessage`` answered: each ``accept`` is one more
    message of that template, ``ban`` stops it until the next accept, anything
    else changes nothing. Template ids not configured here are ignored."""
    known = set(template_ids().values())
    for template_id, result in results.items():
        if template_id not in known or result not in ("accept", "ban"):
            continue
        with transaction.atomic():
            credit, _ = SubscriptionCredit.objects.get_or_create(user=user, template_id=template_id)
            if result == "accept":
                SubscriptionCredit.objects.filter(pk=credit.pk).update(credits=F("credits") + 1, is_banned=False)
            else:
                SubscriptionCredit.objects.filter(pk=credit.pk).update(is_banned=True)
    return subscriptions_for(user=user)


def lot_remind(*, user: User, lot_id: int, wanted: bool) -> None:
    """``lot_opening`` for this user when bidding on the lot opens; refused once it has."""
    lot = Lot.objects.select_related("special").filter(pk=lot_id, is_published=True, special__is_published=True).first()
    if lot is None:
        raise NotFound()
    if not wanted:
        LotReminder.objects.filter(user=user, lot=lot).delete()
        return
    if lot.status in LOT_OUTCOMES or timezone.now() >= lot.special.starts_at:
        raise LotNotOpen("Bidding on this lot has already opened.", starts_at=timezone.localtime(lot.special.starts_at).isoformat())
    LotReminder.objects.get_or_create(user=user, lot=lot)


# --- The outbox ---------------------------------------------------------------

def notification_queue(
    *, user_id: int, kind: str, object_id: int, lot_id: int | None = None, data: dict | None = None,
    not_before: datetime | None = None, announce: bool = True,
) -> None:
    """One outbox row, inside the caller's transaction; the same (user, kind,
    object) a second time adds nothing. Kinds without a template are not queued.
    ``announce``: wake the sending job (a caller queuing many does it once)."""
    template_id = template_ids().get(kind)
    if not template_id:
        return
    now = timezone.now()
    Notification.objects.bulk_create(
        [Notification(
            user_id=user_id, kind=kind, object_id=object_id, lot_id=lot_id, data=data or {}, template_id=template_id,
            priority=KIND_PRIORITY[kind], not_before=not_before or now,
        )],
        ignore_conflicts=True,
    )
    if announce and (not_before or now) <= now:
        signals.notification_queued.send(sender=Notification)


def notifications_queue_many(rows: list[dict]) -> int:
    """``notification_queue`` for many rows in one INSERT (a settled batch): each
    row has user_id, kind, object_id and optionally lot_id, not_before."""
    templates = template_ids()
    now = timezone.now()
    made = [
        Notification(
            user_id=row["user_id"], kind=row["kind"], object_id=row["object_id"], lot_id=row.get("lot_id"), data={},
            template_id=templates[row["kind"]], priority=KIND_PRIORITY[row["kind"]], not_before=row.get("not_before") or now,
        )
        for row in rows
        if templates.get(row["kind"])
    ]
    if made:
        Notification.objects.bulk_create(made, ignore_conflicts=True)
        if any(row.not_before <= now for row in made):
            signals.notification_queued.send(sender=Notification)
    return len(made)


def orders_won_queue(orders: list[Order]) -> int:
    """``order_won_queue`` for a batch of orders, in one INSERT."""
    rows = []
    for order in orders:
        rows.append({"user_id": order.user_id, "kind": NotificationKind.WON, "object_id": order.pk, "lot_id": order.lot_id})
        reminder_at = order.pay_deadline - timedelta(seconds=settings.AUCTION_PAYMENT_REMINDER_SECONDS)
        if reminder_at > timezone.now():
            rows.append({"user_id": order.user_id, "kind": NotificationKind.PAYMENT_DUE, "object_id": order.pk,
                         "lot_id": order.lot_id, "not_before": reminder_at})
    return notifications_queue_many(rows)


def lot_opening_queue(*, special_id: int) -> int:
    """Bidding opened: the reminders on the special's lots become messages (and are consumed)."""
    with transaction.atomic():
        reminders = list(
            LotReminder.objects.select_for_update().filter(lot__special_id=special_id).order_by("pk").values_list("pk", "user_id", "lot_id")
        )
        for _, user_id, lot_id in reminders:
            notification_queue(user_id=user_id, kind=NotificationKind.LOT_OPENING, object_id=lot_id, lot_id=lot_id, announce=False)
        LotReminder.objects.filter(pk__in=[pk for pk, _, _ in reminders]).delete()
        if reminders:
            signals.notification_queued.send(sender=Notification)
    return len(reminders)


def outbid_derive(*, now: datetime | None = None) -> int:
    """Outbid messages from the bids placed since the last look, lot by lot.

    Under the lot's scan row (locked), so two clusters never derive one twice.
    A user outbid several times between looks gets one message; one already
    waiting covers the new outbid (it reads the price when it is sent); after
    a message, the next waits until the interval has passed."""
    now = now or timezone.now()
    if not template_ids().get(NotificationKind.OUTBID):
        return 0
    last_bid = Bid.objects.filter(lot=OuterRef("pk")).order_by("-id").values("id")[:1]
    scanned = OutbidScan.objects.filter(lot=OuterRef("pk")).values("last_bid_id")[:1]
    lot_ids = list(
        Lot.objects.exclude(status__in=LOT_OUTCOMES).filter(ends_at__gt=now, bid_count__gt=1)
        .annotate(last_bid=Subquery(last_bid), scanned=Coalesce(Subquery(scanned), 0))
        .filter(last_bid__gt=F("scanned")).values_list("pk", flat=True)[:BATCH]
    )
    queued = 0
    for lot_id in lot_ids:
        queued += _outbid_derive_lot(lot_id, now)
    return queued


def _outbid_derive_lot(lot_id: int, now: datetime) -> int:
    interval = timedelta(seconds=settings.AUCTION_OUTBID_INTERVAL_SECONDS)
    # Made on its own (INSERT IGNORE, autocommit): made inside the transaction,
    # two workers' inserts of one key deadlock on InnoDB.
    OutbidScan.objects.bulk_create([OutbidScan(lot_id=lot_id)], ignore_conflicts=True)
    with transaction.atomic():
        scan = OutbidScan.objects.select_for_update().get(pk=lot_id)
        bids = list(Bid.objects.filter(lot_id=lot_id, id__gt=scan.last_bid_id).order_by("id").values_list("id", "user_id")[:OUTBID_SCAN_BIDS])
        if not bids:
            return 0
        previous = Bid.objects.filter(lot_id=lot_id, id__lte=scan.last_bid_id).order_by("-id").values_list("id", "user_id").first()
        chain = ([previous] if previous else []) + bids
        outbid_by: dict[int, int] = {}  # user → the latest bid that outbid them
        for (_, before_user), (bid_id, user_id) in zip(chain, chain[1:], strict=False):
            if before_user != user_id:
                outbid_by[before_user] = bid_id
        leader = chain[-1][1]
        queued = 0
        for user_id, bid_id in outbid_by.items():
            if user_id == leader:
                continue  # leading again already
            mine = Notification.objects.filter(user_id=user_id, kind=NotificationKind.OUTBID, lot_id=lot_id)
            if mine.filter(status=NotificationStatus.PENDING).exists():
                continue
            last = mine.filter(status__in=(NotificationStatus.SENT, NotificationStatus.SENDING)).order_by("-not_before").first()
            not_before = max(now, last.not_before + interval) if last else now
            # Not announced: the job deriving it is about to send what is due.
            notification_queue(
                user_id=user_id, kind=NotificationKind.OUTBID, object_id=bid_id, lot_id=lot_id, not_before=not_before,
                announce=False,
            )
            queued += 1
        scan.last_bid_id = bids[-1][0]
        scan.save(update_fields=["last_bid_id"])
    return queued


# --- Sending ------------------------------------------------------------------

def notifications_send(*, now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """The job: derive outbids, then send what is due, highest priority first."""
    now = now or timezone.now()
    report: Counter = Counter()
    report["outbid_queued"] = outbid_derive(now=now)
    report["interrupted"] = Notification.objects.filter(status=NotificationStatus.SENDING, lease_until__lt=now).update(
        status=NotificationStatus.FAILED, last_error="interrupted while sending: it may have reached the user"
    )
    due = Notification.objects.filter(status=NotificationStatus.PENDING, not_before__lte=now).order_by("priority", "id")
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        try:
            report[str(notification_send(notification_id=pk, now=now))] += 1
        except Exception:
            logger.exception("notification %s: sending failed; it stays visible in the admin", pk)
            report["error"] += 1
    return dict(report)


def notification_send(*, notification_id: int, now: datetime | None = None) -> str:
    """Send one due row, if this worker claims it first; returns what became of it."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(pk=notification_id, status=NotificationStatus.PENDING, not_before__lte=now).update(
        status=NotificationStatus.SENDING, lease_until=now + timedelta(seconds=LEASE_SECONDS), attempts=F("attempts") + 1
    )
    if not claimed:
        return "taken"
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    config = settings.WECHAT_SUBSCRIBE_TEMPLATES.get(notification.kind) or {}
    template_id = config.get("template_id") or ""
    if not template_id:
        return _finish(notification, NotificationStatus.SKIPPED, error="no template configured for this kind")
    if not notification.user.openid:
        return _finish(notification, NotificationStatus.SKIPPED, error="the user has no WeChat openid")
    message = _compose(notification, now)
    if isinstance(message, str):
        return _finish(notification, NotificationStatus.SKIPPED, error=message)
    values, page = message
    refusal = _credit_refusal(notification, template_id)
    if refusal:
        return _finish(notification, NotificationStatus.SKIPPED, error=refusal)
    try:
        wechat_subscribe.send(
            openid=notification.user.openid, template_id=template_id, page=page,
            data=template_data(config.get("fields") or {}, values),
        )
    except WechatSendError as error:
        return _refused(notification, error, template_id, now)
    SubscriptionCredit.objects.filter(user_id=notification.user_id, template_id=template_id, credits__gt=0).update(
        credits=F("credits") - 1
    )
    Notification.objects.filter(pk=notification.pk).update(template_id=template_id, sent_at=timezone.now())
    return _finish(notification, NotificationStatus.SENT, error="")


def _finish(notification: Notification, status: str, *, error: str, errcode: int | None = None, not_before=None) -> str:
    fields = {"status": status, "last_error": error[:300], "errcode": errcode, "lease_until": None}
    if not_before is not None:
        fields["not_before"] = not_before
    Notification.objects.filter(pk=notification.pk, status=NotificationStatus.SENDING).update(**fields)
    return status


def _refused(notification: Notification, error: WechatSendError, template_id: str, now: datetime) -> str:
    errcode = error.errcode or None
    if error.errcode == NO_SUBSCRIPTION:
        # WeChat holds none for this template, whatever we counted: trust it.
        SubscriptionCredit.objects.filter(user_id=notification.user_id, template_id=template_id).update(credits=0)
        return _finish(notification, NotificationStatus.SKIPPED, error="43101: the user has no subscription left", errcode=errcode)
    attempts = notification.attempts  # counted at the claim
    if error.is_transient and attempts < settings.AUCTION_NOTIFY_MAX_ATTEMPTS:
        delay = settings.AUCTION_NOTIFY_BACKOFF_SECONDS * 2 ** (attempts - 1)
        return _finish(
            notification, NotificationStatus.PENDING, error=f"attempt {attempts}: {error}", errcode=errcode,
            not_before=now + timedelta(seconds=delay),
        )
    logger.warning("notification %s failed after %s attempts: %s", notification.pk, attempts, error)
    return _finish(notification, NotificationStatus.FAILED, error=str(error), errcode=errcode)


def _credit_refusal(notification: Notification, template_id: str) -> str:
    credit = SubscriptionCredit.objects.filter(user_id=notification.user_id, template_id=template_id).first()
    if credit is None or credit.credits == 0:
        return "no credit: the user has not accepted this template (again)"
    if credit.is_banned:
        return "the user turned this template off (ban)"
    if notification.priority >= LOW_PRIORITY and credit.credits <= settings.AUCTION_NOTIFY_RESERVED_CREDITS:
        shared_with_higher = any(
            kind != notification.kind and KIND_PRIORITY[kind] < notification.priority
            for kind, template in template_ids().items() if template == template_id
        )
        if shared_with_higher:
            return "credit kept for a more important message on the same template"
    return ""


def _compose(notification: Notification, now: datetime) -> tuple[dict[str, str], str] | str:
    """The values and the page, read now; a reason (str) when the message no longer applies."""
    kind = notification.kind
    if kind in (NotificationKind.WON, NotificationKind.PAYMENT_DUE):
        order = Order.objects.select_related("lot").filter(pk=notification.object_id).first()
        if order is None:
            return "the order is gone"
        if kind == NotificationKind.PAYMENT_DUE and (order.status != OrderStatus.PENDING_PAYMENT or now >= order.pay_deadline):
            return f"order {order.status}: no reminder needed"
        if kind == NotificationKind.WON and order.status == OrderStatus.OVERDUE:
            return "the order is already overdue"
        left = max(order.pay_deadline - now, timedelta(0))
        if kind == NotificationKind.PAYMENT_DUE:
            note = f"付款截止前{_hours(left)}，逾期将扣除保证金"
        elif order.status == OrderStatus.PENDING_PAYMENT and order.amount_due > 0:
            note = "恭喜得标，请在截止时间前付款"
        else:
            # Paid already, or the deposit covers it all: nothing to ask of the winner.
            note = "恭喜得标，请确认收货地址"
        values = {
            "lot_title": order.lot.title, "amount_due": yuan(order.amount_due), "price": yuan(order.price),
            "pay_deadline": shanghai_time(order.pay_deadline), "order_no": order.order_no, "note": note,
        }
        return values, settings.WECHAT_PAGE_ORDER.format(order_no=order.order_no, lot_id=order.lot_id)
    if kind == NotificationKind.REFUNDED:
        deposit = Deposit.objects.select_related("lot", "special").filter(pk=notification.object_id).first()
        if deposit is None:
            return "the deposit is gone"
        title = deposit.lot.title if deposit.lot_id else deposit.special.title
        values = {
            "lot_title": title, "amount": yuan(deposit.amount), "refunded_at": shanghai_time(deposit.updated_at),
            "note": "保证金已原路退回，请留意到账",
        }
        page = settings.WECHAT_PAGE_LOT.format(lot_id=deposit.lot_id) if deposit.lot_id else ""
        return values, page
    lot = Lot.objects.select_related("special").filter(pk=notification.lot_id).first()
    if lot is None:
        return "the lot is gone"
    if lot.status in LOT_OUTCOMES or now >= lot.ends_at:
        return "the lot has ended"
    if kind == NotificationKind.OUTBID and lot.leader_id == notification.user_id:
        return "leading again"
    values = {
        "lot_title": lot.title, "current_price": yuan(lot.current_price), "start_price": yuan(lot.start_price),
        "ends_at": shanghai_time(lot.ends_at), "starts_at": shanghai_time(lot.special.starts_at),
        "note": "您的出价已被超越，点击查看" if kind == NotificationKind.OUTBID else "您关注的拍品已开拍",
    }
    return values, settings.WECHAT_PAGE_LOT.format(lot_id=lot.pk)


def _hours(left: timedelta) -> str:
    minutes = -int(-left.total_seconds() // 60)  # rounded up: "2 hours" while 1 h 59 min are left
    return f"约{-(-minutes // 60)}小时" if minutes > 60 else f"约{max(minutes, 1)}分钟"


# --- Ops ----------------------------------------------------------------------

def notification_resend(*, notification_id: int) -> bool:
    """A failed row goes back to pending, to be sent by the next run (ops' "Resend")."""
    changed = Notification.objects.filter(pk=notification_id, status=NotificationStatus.FAILED).update(
        status=NotificationStatus.PENDING, attempts=0, not_before=timezone.now(), errcode=None, last_error=""
    )
    if changed:
        signals.notification_queued.send(sender=Notification)
    return bool(changed)


def notifications_failed_count() -> int:
    """For the dashboard: messages that failed and wait for ops."""
    return Notification.objects.filter(status=NotificationStatus.FAILED).count()
