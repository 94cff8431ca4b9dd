"""Market rows as the contract shows them: local times, renditions, derived status."""

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone

from auction import selectors
from auction.images import COVER_SPEC, GALLERY_SPEC, rendition_of
from auction.models import Lot, LotStatus, Special, User
from auction.services.bars import is_barred


def local(moment: datetime) -> datetime:
    # The contract's zone is the server's (settings.TIME_ZONE), whatever a
    # view may have activated; the default zone is also found without a
    # lookup of the thread's current one, which every bid answer makes twice.
    return moment.astimezone(timezone.get_default_timezone())


def absolute(request: HttpRequest, rendition: dict | None) -> dict | None:
    if rendition and rendition["url"].startswith("/"):
        # MEDIA_URL is a path in the embedded default; the phone needs a host.
        return {**rendition, "url": request.build_absolute_uri(rendition["url"])}
    return rendition


def image(request: HttpRequest, picture, spec: str) -> dict | None:
    return absolute(request, rendition_of(picture, spec))


def special(request: HttpRequest, row: Special, now: datetime) -> dict:
    return {
        "id": row.pk,
        "title": row.title,
        "cover": image(request, row.cover, COVER_SPEC),
        "status": row.status_at(now, closes_at=getattr(row, "closes_at", None)),
        "preview_at": local(row.preview_at),
        "starts_at": local(row.starts_at),
        "ends_at": local(row.ends_at),
        "deposit": row.deposit,
        "lot_count": getattr(row, "lot_count", 0),
    }


def lot_summary(request: HttpRequest, lot: Lot, now: datetime) -> dict:
    return {
        "id": lot.pk,
        "special_id": lot.special_id,
        "title": lot.title,
        "cover": image(request, lot.cover, COVER_SPEC),
        "status": lot.status_at(now),
        "start_price": lot.start_price,
        "current_price": lot.current_price,
        "bid_count": lot.bid_count,
        "ends_at": local(lot.ends_at),
    }


def lot_detail(request: HttpRequest, lot: Lot, now: datetime, user: User | None) -> dict:
    return {
        **lot_summary(request, lot, now),
        "images": [image(request, item.image, GALLERY_SPEC) for item in getattr(lot, "gallery", [])],
        "description": lot.description,
        "deposit": lot.deposit,
        "reserve_met": lot.reserve_met,
        "increment": lot.step_after(lot.current_price if lot.bid_count else lot.start_price),
        "next_min_bid": lot.next_min_bid(),
        "buyer_premium_rate": lot.special.buyer_premium_rate,
        "buy_now_price": lot.buy_now_price,
        "relisted_from": lot.relisted_from_id,
        "server_time": local(now),
        "my": lot_my(lot, user) if user else None,
    }


def lot_my(lot: Lot, user: User) -> dict:
    return {
        "deposit_status": selectors.deposit_status_for_lot(lot=lot, user=user),
        "leading": lot.leader_id == user.pk,
        "auto_bid_max": selectors.auto_bid_max(lot_id=lot.pk, user=user),
        "barred": is_barred(user_id=user.pk, lot_id=lot.pk),
    }


def deposit(row) -> dict:
    return {
        "id": row.pk,
        "scope": row.scope,
        "lot_id": row.lot_id,
        "special_id": row.special_id,
        "amount": row.amount,
        "status": row.status,
        "created_at": local(row.created_at),
    }


def payment(row) -> dict:
    return {
        "out_trade_no": row.out_trade_no,
        "purpose": row.purpose,
        "amount": row.amount,
        "status": row.status,
        "gateway": row.gateway,
        "params": row.params if row.status == "created" and row.params else None,
    }


def lot_after_bid(request: HttpRequest, lot: Lot, now: datetime) -> dict:
    """The locked market row plus the cached card: no further queries on the bid path."""
    card = selectors.lot_card(lot=lot)
    return {
        "id": lot.pk,
        "special_id": lot.special_id,
        "title": card["title"],
        "cover": absolute(request, card["cover"]),
        "status": LotStatus.BIDDING if now < lot.ends_at else lot.status,
        "start_price": lot.start_price,
        "current_price": lot.current_price,
        "bid_count": lot.bid_count,
        "ends_at": local(lot.ends_at),
        "next_min_bid": lot.next_min_bid(),
    }


def order(request: HttpRequest, row) -> dict:
    # From the order's own lot (orders_for_user loads them and their covers
    # with the page), not the per-lot card cache: one lookup per row otherwise.
    return {
        "order_no": row.order_no,
        "lot": {"id": row.lot_id, "title": row.lot.title, "cover": image(request, row.lot.cover, COVER_SPEC)},
        "status": row.status,
        "price": row.price,
        "premium": row.premium,
        "deposit_credit": row.deposit_credit,
        "coupon_discount": row.coupon_discount,
        "amount_due": row.amount_due,
        "pay_deadline": local(row.pay_deadline),
        "created_at": local(row.created_at),
        "paid_at": local(row.paid_at) if row.paid_at else None,
        "fulfilment": fulfilment(row),
    }


def fulfilment(row) -> dict | None:
    if not row.fulfilment_status:
        return None  # not paid yet
    return {
        "status": row.fulfilment_status,
        "carrier": row.carrier,
        "tracking_no": row.tracking_no,
        "shipped_at": local(row.shipped_at) if row.shipped_at else None,
        "received_at": local(row.received_at) if row.received_at else None,
    }


def coupon(row, *, claimed_by_me: int | None) -> dict:
    return {
        "id": row.pk,
        "title": row.title,
        "amount": row.amount,
        "min_amount": row.min_amount,
        "special_id": row.special_id,
        "claim_starts_at": local(row.claim_starts_at),
        "claim_ends_at": local(row.claim_ends_at),
        "valid_from": local(row.valid_from) if row.valid_from else None,
        "valid_until": local(row.valid_until) if row.valid_until else None,
        "valid_days": row.valid_days,
        "remaining": row.remaining,
        "per_user_limit": row.per_user_limit,
        "claimed_by_me": claimed_by_me,
    }


def user_coupon(row, now: datetime, *, claimed_by_me: int) -> dict:
    """The coupon as claimed: its terms are the copy's, which editing the coupon never changes."""
    terms = {"title": row.title, "amount": row.amount, "min_amount": row.min_amount, "special_id": row.special_id}
    return {
        "id": row.pk,
        "coupon": {**coupon(row.coupon, claimed_by_me=claimed_by_me), **terms},
        "status": row.status_at(now),
        "valid_from": local(row.valid_from),
        "valid_until": local(row.valid_until),
        "claimed_at": local(row.claimed_at),
        "order_no": row.order.order_no if row.order_id else None,
    }
