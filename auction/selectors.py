"""Reads for the catalog API: published rows only, in a fixed number of queries."""

import time
from datetime import datetime

from django.conf import settings
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
    Order,
    Refund,
    RefundStatus,
    Special,
    SpecialStatus,
    User,
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


def users_matching(text: str) -> QuerySet:
    """Ids of the users ops mean by ``text``: part of a nickname or openid, or of
    a name or phone they gave in a shipping address (users have no phone of
    their own). A subquery, so a list filters by it without joining or duplicating rows."""
    text = text.strip()
    in_addresses = Order.objects.filter(address_text__icontains=text).values("user_id")
    return User.objects.filter(Q(nickname__icontains=text) | Q(openid__icontains=text) | Q(pk__in=in_addresses)).values("pk")


def lot_is_visible(*, lot_id: int) -> bool:
    return Lot.objects.filter(pk=lot_id, is_published=True, special__is_published=True).exists()


def lot_card_cache_key(lot_id: int, content_version: int) -> str:
    return f"lot-card:{lot_id}:{content_version}"


# A hot lot answers hundreds of bids a second with its card. The shared cache
# (Redis in production) holds each card under the lot's content_version, and
# each process keeps the cards it used in front of it: a card for a given
# version never changes (publishing moves the version), so neither copy can
# be stale for the row a request read, and no process needs another's memory.
# The bound on age only covers what changes a card outside publishing (an
# image deleted under it).
LOCAL_CARD_SECONDS = settings.AUCTION_LOT_CARD_LOCAL_SECONDS
SHARED_CARD_SECONDS = 3600
_LOCAL_CARD_LIMIT = 10_000
_local_cards: dict[tuple[int, int], tuple[float, dict]] = {}


def lot_card(*, lot: Lot) -> dict:
    """Title and cover of a lot at its ``content_version`` (loaded with it):
    the bid path answers with them on every bid. A cache that fails is a miss
    (project/cache.py), so the answer never depends on Redis."""
    key = (lot.pk, lot.content_version)
    now = time.monotonic()
    local = _local_cards.get(key)
    if local is not None and local[0] > now:
        return local[1]
    shared_key = lot_card_cache_key(*key)
    card = cache.get(shared_key)
    if card is None:
        row = Lot.objects.select_related("cover").only("title", "cover", "content_version").get(pk=lot.pk)
        card = {"title": row.title, "cover": rendition_of(row.cover, COVER_SPEC)}
        if row.content_version != lot.content_version:
            # Published again since the caller read the lot: this card is the
            # newer one's, and is cached under the version it was read with.
            key, shared_key = (lot.pk, row.content_version), lot_card_cache_key(lot.pk, row.content_version)
        cache.set(shared_key, card, timeout=SHARED_CARD_SECONDS)
    if len(_local_cards) >= _LOCAL_CARD_LIMIT:
        _local_cards.clear()
    _local_cards[key] = (now + LOCAL_CARD_SECONDS, card)
    return card


def lot_cards_forget_local() -> None:
    """For tests: lot ids come back after a rollback, with content_version 0."""
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
