"""Reads for the catalog API: published rows only, in a fixed number of queries."""

import time
from datetime import datetime

from django.core.cache import cache
from django.db.models import Count, DateTimeField, Max, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest

from auction.images import COVER_SPEC, cover_prefetch, gallery_prefetch, rendition_of
from auction.models import (
    AutoBid,
    Bid,
    Deposit,
    DepositScope,
    DepositStatus,
    Lot,
    LotImage,
    Refund,
    RefundStatus,
    Special,
    SpecialStatus,
)
from auction.models.catalog import LOT_OUTCOMES


def special_closes_at_expression() -> Greatest:
    """When a special closes, for ``Special`` querysets: the later of its own
    end and its last published lot's (anti-sniping and staggering move lots
    past ``ends_at``). Only published lots count: nobody can bid on the others,
    so an unpublished lot never keeps a special open. The one rule, used by
    the catalog, deposits, the special's stored status and the admin panel."""
    published_lots = Q(lots__is_published=True)
    return Greatest(
        "ends_at", Coalesce(Max("lots__ends_at", filter=published_lots), "ends_at", output_field=DateTimeField())
    )


def special_closes_at(special: Special) -> datetime:
    """When ``special`` closes (see ``special_closes_at_expression``)."""
    return Special.objects.filter(pk=special.pk).annotate(closes_at=special_closes_at_expression()).values_list(
        "closes_at", flat=True
    ).get()


def _specials() -> QuerySet[Special]:
    return (
        Special.objects.filter(is_published=True)
        .annotate(lot_count=Count("lots", filter=Q(lots__is_published=True)), closes_at=special_closes_at_expression())
        .prefetch_related(cover_prefetch())
    )


def specials_list(*, now: datetime, status: str | None = None) -> QuerySet[Special]:
    specials = _specials()
    if status == SpecialStatus.UPCOMING:
        specials = specials.filter(preview_at__gt=now)
    elif status == SpecialStatus.PREVIEW:
        specials = specials.filter(preview_at__lte=now, starts_at__gt=now)
    elif status == SpecialStatus.BIDDING:
        specials = specials.filter(starts_at__lte=now, closes_at__gt=now)
    elif status == SpecialStatus.ENDED:
        specials = specials.filter(closes_at__lte=now)
    return specials.order_by("-starts_at", "-id")


def _lots() -> QuerySet[Lot]:
    return (
        Lot.objects.filter(is_published=True, special__is_published=True)
        .select_related("special")
        .prefetch_related(cover_prefetch())
    )


def special_detail(*, special_id: int) -> Special | None:
    lots = _lots().order_by("position", "id")
    return _specials().filter(pk=special_id).prefetch_related(Prefetch("lots", queryset=lots, to_attr="published_lots")).first()


def lot_detail(*, lot_id: int) -> Lot | None:
    images = LotImage.objects.prefetch_related(gallery_prefetch()).order_by("sort_order", "id")
    return _lots().filter(pk=lot_id).prefetch_related(Prefetch("images", queryset=images, to_attr="gallery")).first()


def lot_bids(*, lot_id: int) -> QuerySet[Bid]:
    return Bid.objects.filter(lot_id=lot_id).select_related("user").only(
        "id", "price", "created_at", "user__nickname"
    ).order_by("-id")


def mask_nickname(nickname: str) -> str:
    """张三丰 → 张**: enough to tell bidders apart, never who they are."""
    nickname = (nickname or "").strip()
    return (nickname[0] if nickname else "匿") + "**"


def lot_is_visible(*, lot_id: int) -> bool:
    return Lot.objects.filter(pk=lot_id, is_published=True, special__is_published=True).exists()


def lot_card_cache_key(lot_id: int) -> str:
    return f"lot-card:{lot_id}"


# A hot lot answers hundreds of bids a second with its card, so each process
# also keeps cards for a few seconds in front of the shared cache: an editor's
# new title or cover reaches bid answers that much later (pages and lists read
# the database). A cache only; no process needs another's copy.
LOCAL_CARD_SECONDS = 5.0
_LOCAL_CARD_LIMIT = 10_000
_local_cards: dict[int, tuple[float, dict]] = {}


def lot_card(*, lot_id: int) -> dict:
    """Title and cover of a lot, cached: the bid path answers with them on every bid."""
    now = time.monotonic()
    local = _local_cards.get(lot_id)
    if local is not None and local[0] > now:
        return local[1]
    card = cache.get(lot_card_cache_key(lot_id))
    if card is None:
        lot = Lot.objects.select_related("cover").only("title", "cover").get(pk=lot_id)
        card = {"title": lot.title, "cover": rendition_of(lot.cover, COVER_SPEC)}
        cache.set(lot_card_cache_key(lot_id), card, timeout=300)
    if len(_local_cards) >= _LOCAL_CARD_LIMIT:
        _local_cards.clear()
    _local_cards[lot_id] = (now + LOCAL_CARD_SECONDS, card)
    return card


def lot_card_forget(lot_id: int) -> None:
    """After an edit: this process shows the new card at once, others within seconds."""
    _local_cards.pop(lot_id, None)
    cache.delete(lot_card_cache_key(lot_id))


def lot_cards_forget_local() -> None:
    _local_cards.clear()


def deposit_status_for_lot(*, lot: Lot, user) -> str | None:
    """The deposit that decides whether the caller may bid: an active one for the
    lot or its special first, else the latest for the lot (e.g. refunded)."""
    keys = [
        Deposit.key_for(user_id=user.pk, scope=DepositScope.LOT, special_id=lot.special_id, lot_id=lot.pk),
        Deposit.key_for(user_id=user.pk, scope=DepositScope.SPECIAL, special_id=lot.special_id, lot_id=None),
    ]
    active = list(Deposit.objects.filter(active_key__in=keys).values_list("status", flat=True))
    if DepositStatus.HELD in active:
        return DepositStatus.HELD
    if active:
        return active[0]
    return Deposit.objects.filter(user=user, lot=lot).order_by("-id").values_list("status", flat=True).first()


def auto_bid_max(*, lot_id: int, user) -> int | None:
    return AutoBid.objects.filter(lot_id=lot_id, user=user).values_list("max_price", flat=True).first()


def special_settlement_progress(*, special_id: int) -> dict[str, int]:
    """How far a special's end has been carried out, for ops: lots with their
    outcome, and its refunds created, sent, completed and failed (two queries)."""
    lots = Lot.objects.filter(special_id=special_id).aggregate(
        lots=Count("pk"), settled=Count("pk", filter=Q(status__in=LOT_OUTCOMES)),
    )
    refunds = Refund.objects.filter(payment__deposit__special_id=special_id).aggregate(
        refunds=Count("pk"),
        submitted=Count("pk", filter=~Q(status=RefundStatus.PENDING)),
        completed=Count("pk", filter=Q(status=RefundStatus.SUCCEEDED)),
        failed=Count("pk", filter=Q(status=RefundStatus.FAILED)),
        waiting_retry=Count("pk", filter=Q(status=RefundStatus.PENDING, attempts__gt=0)),
    )
    return {**lots, **refunds}
