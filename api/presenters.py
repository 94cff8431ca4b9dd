"""Market rows as the contract shows them: local times, renditions, derived status."""

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone

from auction.images import COVER_SPEC, GALLERY_SPEC, rendition_of
from auction.models import Lot, Special, User


def local(moment: datetime) -> datetime:
    return timezone.localtime(moment)


def image(request: HttpRequest, picture, spec: str) -> dict | None:
    rendition = rendition_of(picture, spec)
    if rendition and rendition["url"].startswith("/"):
        # MEDIA_URL is a path in the embedded default; the phone needs a host.
        rendition["url"] = request.build_absolute_uri(rendition["url"])
    return rendition


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
        "server_time": local(now),
        "my": lot_my(lot, user) if user else None,
    }


def lot_my(lot: Lot, user: User) -> dict:
    # Deposits and proxy bids arrive with the market; until then a user has
    # neither, which is the truthful answer.
    return {"deposit_status": None, "leading": lot.leader_id == user.pk, "auto_bid_max": None}
