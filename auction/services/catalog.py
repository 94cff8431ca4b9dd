"""Publishing the catalog into the market rows.

Content (title, text, images) is copied on every publish. Terms (prices,
deposits, increment, times) are copied until bidding opens and frozen after:
bids were made against them. Market state (price, leader, bid count, a lot's
end time once bidding opened) is never written here.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from auction import signals
from auction.models import Lot, LotImage, Special
from auction.money import MAX_BASIS_POINTS, MAX_FEN, format_yuan
from auction.services.live import live_lot_changed
from auction.services.market_rows import market_row_save, market_rows_update


@dataclass(frozen=True)
class Content:
    title: str
    description: str = ""
    cover_image_id: int | None = None
    image_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class SpecialTerms:
    preview_at: datetime
    starts_at: datetime
    ends_at: datetime
    deposit: int = 0
    extension_seconds: int = 300
    stagger_seconds: int = 0
    buyer_premium_rate: int = 0
    extension_cap_seconds: int = 0


@dataclass(frozen=True)
class LotTerms:
    start_price: int
    reserve_price: int = 0
    deposit: int = 0
    increment: int = 0
    buy_now_price: int = 0


@dataclass
class PublishResult:
    row: Special | Lot
    created: bool
    # Terms the page asked for that the frozen market row kept as they were.
    refused_terms: dict[str, str] = field(default_factory=dict)


SPECIAL_TERM_LABELS = {
    "preview_at": gettext_lazy("the preview time"),
    "starts_at": gettext_lazy("the start time"),
    "ends_at": gettext_lazy("the end time"),
    "deposit": gettext_lazy("the special-wide deposit"),
    "extension_seconds": gettext_lazy("the anti-sniping window"),
    "stagger_seconds": gettext_lazy("the staggered-end interval"),
    "buyer_premium_rate": gettext_lazy("the buyer's premium"),
    "extension_cap_seconds": gettext_lazy("the anti-sniping cap"),
}
LOT_TERM_LABELS = {
    "start_price": gettext_lazy("the start price"),
    "reserve_price": gettext_lazy("the reserve price"),
    "deposit": gettext_lazy("the deposit"),
    "increment": gettext_lazy("the increment"),
    "buy_now_price": gettext_lazy("the buy-now price"),
}
MONEY_TERMS = {"deposit", "start_price", "reserve_price", "increment", "buy_now_price"}


def special_terms_errors(terms: SpecialTerms) -> dict[str, str]:
    errors: dict[str, str] = {}
    if terms.starts_at > terms.ends_at or terms.starts_at == terms.ends_at:
        errors["ends_at"] = _("The end time must be after the start time.")
    if terms.preview_at > terms.starts_at:
        errors["preview_at"] = _("The preview must open no later than bidding starts.")
    if not 0 <= terms.deposit <= MAX_FEN:
        errors["deposit"] = _("The deposit must be between 0 and a plausible amount.")
    if terms.extension_seconds < 0:
        errors["extension_seconds"] = _("The anti-sniping window cannot be negative (0 turns it off).")
    if terms.stagger_seconds < 0:
        errors["stagger_seconds"] = _("The staggered-end interval cannot be negative (0 turns it off).")
    if not 0 <= terms.buyer_premium_rate <= MAX_BASIS_POINTS:
        errors["buyer_premium_rate"] = _("The buyer's premium is between 0 % and 100 %.")
    if terms.extension_cap_seconds < 0:
        errors["extension_cap_seconds"] = _("The anti-sniping cap cannot be negative (0: no cap).")
    return errors


def lot_terms_errors(terms: LotTerms) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name in ("start_price", "reserve_price", "deposit", "increment", "buy_now_price"):
        if not 0 <= getattr(terms, name) <= MAX_FEN:
            errors[name] = _("The amount must be between 0 and a plausible amount.")
    if "start_price" not in errors and terms.start_price == 0:
        errors["start_price"] = _("The start price must be more than 0.")
    if not errors and terms.reserve_price and terms.reserve_price < terms.start_price:
        errors["reserve_price"] = _(
            "The reserve (%(reserve)s) cannot be below the start price (%(start)s); leave it at 0 for no reserve."
        ) % {"reserve": format_yuan(terms.reserve_price), "start": format_yuan(terms.start_price)}
    if not errors and terms.buy_now_price and terms.buy_now_price <= max(terms.start_price, terms.reserve_price):
        errors["buy_now_price"] = _(
            "The buy-now price (%(buy_now)s) must be above the start price and the reserve (%(floor)s); leave it at 0 for none."
        ) % {"buy_now": format_yuan(terms.buy_now_price), "floor": format_yuan(max(terms.start_price, terms.reserve_price))}
    return errors


def _describe(name: str, value) -> str:
    if name in MONEY_TERMS:
        return format_yuan(value)
    if name == "buyer_premium_rate":
        return f"{value / 100:g} %"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    return str(value)


def _has_bids(row: Special | Lot) -> bool:
    if isinstance(row, Lot):
        return row.bid_count > 0
    return Lot.objects.filter(special=row, bid_count__gt=0).exists()


def frozen_reason(row: Special | Lot, opened_at: datetime) -> str:
    """Why a term no longer changes, true whether or not anyone has bid yet."""
    opened = timezone.localtime(opened_at).strftime("%Y-%m-%d %H:%M")
    if _has_bids(row):
        return _("Bidding opened at %(opened)s and bids were made against this term, so it is frozen. "
                 "Text and images can still change.") % {"opened": opened}
    # No bid yet, but bidders have seen the term, may have paid deposits for it, and may bid at any moment.
    return _("Bidding opened at %(opened)s, so this term is frozen: bidders may have paid deposits against it "
             "and can bid at any moment. Text and images can still change.") % {"opened": opened}


def _frozen_changes(row: Special | Lot, terms, labels: dict[str, str], opened_at: datetime) -> dict[str, str]:
    refused = {}
    for name, label in labels.items():
        kept = getattr(row, name)
        if getattr(terms, name) != kept:
            refused[name] = _("%(term)s is frozen at %(kept)s. %(reason)s") % {
                "term": str(label)[:1].upper() + str(label)[1:], "kept": _describe(name, kept), "reason": frozen_reason(row, opened_at),
            }
    return refused


def special_frozen_terms(*, page_id: int | None, now: datetime | None = None) -> tuple[dict, str]:
    """The special's terms as bidding froze them, and why; ``({}, "")`` before bidding opens."""
    special = Special.objects.filter(page_id=page_id).first() if page_id else None
    if not special or not special.is_bidding_opened(now or timezone.now()):
        return {}, ""
    return {name: getattr(special, name) for name in SPECIAL_TERM_LABELS}, frozen_reason(special, special.starts_at)


def lot_frozen_terms(*, page_id: int | None, now: datetime | None = None) -> tuple[dict, str]:
    """The lot's terms as bidding froze them, and why; ``({}, "")`` before its special's bidding opens."""
    lot = Lot.objects.select_related("special").filter(page_id=page_id).first() if page_id else None
    if not lot or not lot.special.is_bidding_opened(now or timezone.now()):
        return {}, ""
    return {name: getattr(lot, name) for name in LOT_TERM_LABELS}, frozen_reason(lot, lot.special.starts_at)


def special_check(*, page_id: int | None, terms: SpecialTerms, now: datetime | None = None) -> dict[str, str]:
    """Everything an editor would be refused for these terms, by field."""
    errors = special_terms_errors(terms)
    special = Special.objects.filter(page_id=page_id).first() if page_id else None
    if special and special.is_bidding_opened(now or timezone.now()):
        errors.update(_frozen_changes(special, terms, SPECIAL_TERM_LABELS, special.starts_at))
    return errors


def lot_check(*, page_id: int | None, terms: LotTerms, now: datetime | None = None) -> dict[str, str]:
    errors = lot_terms_errors(terms)
    lot = Lot.objects.select_related("special").filter(page_id=page_id).first() if page_id else None
    if lot and lot.special.is_bidding_opened(now or timezone.now()):
        errors.update(_frozen_changes(lot, terms, LOT_TERM_LABELS, lot.special.starts_at))
    return errors


def _apply_content(row: Special | Lot, content: Content) -> None:
    row.title = content.title[:255]
    row.description = content.description
    row.cover_id = content.cover_image_id


@transaction.atomic
def special_publish(
    *,
    page_id: int,
    content: Content,
    terms: SpecialTerms,
    lot_page_ids: list[int] | None = None,
    is_published: bool = True,
    now: datetime | None = None,
) -> PublishResult:
    """Create or update a special's market row from its page.

    ``lot_page_ids`` is the order of the special's lot pages; it sets each
    lot's position (and so its staggered end) while terms are not frozen.
    """
    now = now or timezone.now()
    errors = special_terms_errors(terms)
    if errors:
        raise ValidationError(errors)
    lots = _lots_to_reschedule(page_id, now)
    special = Special.objects.select_for_update().filter(page_id=page_id).first()
    created = special is None
    if created:
        special = Special(page_id=page_id)
    refused: dict[str, str] = {}
    if created or not special.is_bidding_opened(now):
        for name in SPECIAL_TERM_LABELS:
            setattr(special, name, getattr(terms, name))
    else:
        refused = _frozen_changes(special, terms, SPECIAL_TERM_LABELS, special.starts_at)
    _apply_content(special, content)
    special.is_published = is_published
    special.save()
    if not refused:
        signals.special_times_changed.send(sender=Special, special_id=special.pk)
        if not created:
            _reschedule_lots(special, lots, lot_page_ids, now)
    return PublishResult(row=special, created=created, refused_terms=refused)


def _lots_to_reschedule(page_id: int, now: datetime) -> list[Lot] | None:
    """The special's lots, locked before the special's row: the order everything else takes.

    Whatever writes a row that points at the special under a lot's lock (a
    first budget, a proxy's budget events, a settled lot's events)
    share-locks the special's row in InnoDB through that foreign key; a
    publish holding the special while it waited for the lots would deadlock
    with it. The special is read unlocked to find it: its lots move with its
    terms until bidding opens; after that ``starts_at`` is frozen and none is
    locked (None).
    """
    special = Special.objects.filter(page_id=page_id).only("id", "starts_at").first()
    if special is None or special.is_bidding_opened(now):
        return None
    return list(Lot.objects.select_for_update().filter(special=special).order_by("pk"))


def _reschedule_lots(special: Special, lots: list[Lot] | None, lot_page_ids: list[int] | None, now: datetime) -> None:
    """Positions and end times follow the special's terms until bidding opens."""
    if special.is_bidding_opened(now):
        return
    if lots is None:
        # Read as opened, locked as not: another publish moved the start later
        # in between. Locked late rather than left unscheduled.
        lots = list(Lot.objects.select_for_update().filter(special=special).order_by("pk"))
    order = {page_id: index for index, page_id in enumerate(lot_page_ids or [])}
    for lot in lots:
        position = order.get(lot.page_id, lot.position)
        ends_at = special.lot_ends_at(position)
        if (lot.position, lot.ends_at) != (position, ends_at):
            market_rows_update(Lot.objects.filter(pk=lot.pk), position=position, ends_at=ends_at)
            signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=ends_at)
            live_lot_changed(lot_id=lot.pk)


@transaction.atomic
def lot_publish(
    *,
    page_id: int,
    special_page_id: int,
    position: int,
    content: Content,
    terms: LotTerms,
    is_published: bool = True,
    now: datetime | None = None,
) -> PublishResult:
    """Create or update a lot's market row; its special's row must exist."""
    now = now or timezone.now()
    errors = lot_terms_errors(terms)
    if errors:
        raise ValidationError(errors)
    special = Special.objects.get(page_id=special_page_id)
    lot = Lot.objects.select_for_update().filter(page_id=page_id).first()
    created = lot is None
    refused: dict[str, str] = {}
    if created:
        lot = Lot(page_id=page_id, special=special, position=position, ends_at=special.lot_ends_at(position))
        for name in LOT_TERM_LABELS:
            setattr(lot, name, getattr(terms, name))
        _apply_content(lot, content)
        lot.is_published = is_published
        lot.save()
        signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)
    else:
        # A new content version: no cache shows the old title or cover (selectors.lot_card).
        lot.content_version += 1
        fields = ["title", "description", "cover", "is_published", "content_version", "updated_at"]
        if special.is_bidding_opened(now):
            refused = _frozen_changes(lot, terms, LOT_TERM_LABELS, special.starts_at)
        else:
            for name in LOT_TERM_LABELS:
                setattr(lot, name, getattr(terms, name))
            lot.position = position
            lot.ends_at = special.lot_ends_at(position)
            fields += [*LOT_TERM_LABELS, "position", "ends_at"]
        _apply_content(lot, content)
        lot.is_published = is_published
        # update_fields: price, leader, bid count and status are never written
        # here; the new version (is_published and terms are market columns)
        # sends a bid that read the old row back to read this one.
        market_row_save(lot, *fields)
        if "ends_at" in fields:
            signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)
    _replace_images(lot, content.image_ids)
    if not created:
        live_lot_changed(lot_id=lot.pk, version=lot.version)
    return PublishResult(row=lot, created=created, refused_terms=refused)


def _replace_images(lot: Lot, image_ids: tuple[int, ...]) -> None:
    current = list(lot.images.order_by("sort_order", "id").values_list("image_id", flat=True))
    if current == list(image_ids):
        return
    lot.images.all().delete()
    LotImage.objects.bulk_create(
        [LotImage(lot=lot, image_id=image_id, sort_order=index) for index, image_id in enumerate(image_ids)]
    )


def catalog_unpublish(*, page_id: int) -> None:
    """Hide a special or lot from the catalog; its market rows and bids stay."""
    Special.objects.filter(page_id=page_id).update(is_published=False, updated_at=timezone.now())
    market_rows_update(
        Lot.objects.filter(page_id=page_id), is_published=False, content_version=F("content_version") + 1, updated_at=timezone.now()
    )
    for lot_id in Lot.objects.filter(page_id=page_id).values_list("id", flat=True):
        live_lot_changed(lot_id=lot_id)
