"""Market rows: what bids lock and update, and the published catalog they carry.

Editors work on Wagtail pages (``cms``); publishing a page copies its content
and, until bidding opens, its terms into these rows. The API reads only
these rows, so a draft never leaks and publishing an old revision cannot
touch a price, a leader, a bid count or an end time.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.images import get_image_model_string

from auction.increments import increment_after, next_min_bid


class SpecialStatus(models.TextChoices):
    UPCOMING = "upcoming", _("upcoming")
    PREVIEW = "preview", _("preview")
    BIDDING = "bidding", _("bidding")
    ENDED = "ended", _("ended")


class LotStatus(models.TextChoices):
    UPCOMING = "upcoming", _("upcoming")
    PREVIEW = "preview", _("preview")
    BIDDING = "bidding", _("bidding")
    SOLD = "sold", _("sold")
    UNSOLD = "unsold", _("unsold")
    DEFAULTED = "defaulted", _("defaulted")


LOT_OUTCOMES = {LotStatus.SOLD, LotStatus.UNSOLD, LotStatus.DEFAULTED}


def status_by_time(now: datetime, *, preview_at: datetime, starts_at: datetime) -> str | None:
    """The phase before bidding, or None once bidding has opened."""
    if now < preview_at:
        return SpecialStatus.UPCOMING
    if now < starts_at:
        return SpecialStatus.PREVIEW
    return None


class CatalogEntry(models.Model):
    """What a special and a lot share: the page they come from and its content."""

    page_id = models.PositiveIntegerField(unique=True, null=True, blank=True, help_text="The Wagtail page this row publishes.")
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="", help_text="HTML")
    cover = models.ForeignKey(
        get_image_model_string(), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_published = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.title


class Special(CatalogEntry):
    """专场: an auction event; its times and special-wide deposit are its terms."""

    preview_at = models.DateTimeField()
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text="When the first lot ends; staggering and anti-sniping move lots later.")
    deposit = models.PositiveBigIntegerField(default=0, help_text="Special-wide deposit in fen; 0: none offered.")
    extension_seconds = models.PositiveIntegerField(default=300, help_text="Anti-sniping window; 0: off.")
    stagger_seconds = models.PositiveIntegerField(default=0, help_text="Lot k ends k × this after ends_at; 0: off.")
    buyer_premium_rate = models.PositiveIntegerField(default=0, help_text="佣金 in basis points of the hammer price (1500 = 15 %); 0: none.")
    extension_cap_seconds = models.PositiveIntegerField(
        default=0, help_text="Anti-sniping never moves a lot past its original end plus this; 0: no cap."
    )
    status = models.CharField(max_length=16, choices=SpecialStatus.choices, default=SpecialStatus.UPCOMING)

    class Meta:
        verbose_name = _("special")
        verbose_name_plural = _("specials")
        ordering = ["-starts_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(preview_at__lte=models.F("starts_at")), name="special_preview_before_start"),
            models.CheckConstraint(condition=models.Q(starts_at__lt=models.F("ends_at")), name="special_start_before_end"),
        ]

    def is_bidding_opened(self, now: datetime) -> bool:
        """Terms freeze at this moment, bids or not."""
        return now >= self.starts_at

    def lot_ends_at(self, position: int) -> datetime:
        return self.ends_at + timedelta(seconds=position * self.stagger_seconds)

    def status_at(self, now: datetime, *, closes_at: datetime | None = None) -> str:
        """Derived from the clock, so it is right before any job has run.

        ``closes_at`` is when the last lot ends (anti-sniping and staggering
        move lots past ``ends_at``); the special is bidding until then.
        """
        before = status_by_time(now, preview_at=self.preview_at, starts_at=self.starts_at)
        if before:
            return before
        last_end = max(self.ends_at, closes_at or self.ends_at)
        return SpecialStatus.BIDDING if now < last_end else SpecialStatus.ENDED


class Lot(CatalogEntry):
    """拍品: terms from the page, and the market state bids change."""

    special = models.ForeignKey(Special, on_delete=models.PROTECT, related_name="lots")
    position = models.PositiveIntegerField(default=0, help_text="Order in the special, from 0; drives staggered ends.")
    start_price = models.PositiveBigIntegerField(help_text="fen")
    reserve_price = models.PositiveBigIntegerField(default=0, help_text="fen; 0: no reserve")
    deposit = models.PositiveBigIntegerField(default=0, help_text="fen")
    increment = models.PositiveBigIntegerField(default=0, help_text="fen; 0: the default ladder")
    buy_now_price = models.PositiveBigIntegerField(default=0, help_text="一口价 in fen; 0: none")
    relisted_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="relisted_as",
        help_text="二拍: the unsold or defaulted lot this one re-auctions (a lot is relisted at most once).",
    )

    # Market state: written by bids and settlement only, never by publishing.
    status = models.CharField(max_length=16, choices=LotStatus.choices, default=LotStatus.UPCOMING)
    ends_at = models.DateTimeField()
    current_price = models.PositiveBigIntegerField(default=0, help_text="fen; 0 before any bid")
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="leading_lots"
    )
    bid_count = models.PositiveIntegerField(default=0)
    version = models.PositiveBigIntegerField(default=0, help_text="Bumped by every change of market state.")
    # Bids answer with the lot's title and cover from a cache keyed by this
    # (auction/selectors.py: lot_card), so no process ever shows a card older
    # than the row it read; bids do not move it, so a bid never misses the cache.
    content_version = models.PositiveIntegerField(default=0, help_text="Bumped by every publish of the lot's content.")

    class Meta:
        verbose_name = _("lot")
        verbose_name_plural = _("lots")
        ordering = ["special_id", "position", "id"]
        indexes = [models.Index(fields=["special", "position"]), models.Index(fields=["status", "ends_at"])]

    def step_after(self, price: int) -> int:
        return increment_after(price, fixed_increment=self.increment)

    def next_min_bid(self) -> int:
        return next_min_bid(
            current_price=self.current_price,
            bid_count=self.bid_count,
            start_price=self.start_price,
            fixed_increment=self.increment,
        )

    @property
    def reserve_met(self) -> bool:
        """True with no reserve; otherwise once the best bid reaches it."""
        return self.reserve_price == 0 or (self.bid_count > 0 and self.current_price >= self.reserve_price)

    def status_at(self, now: datetime) -> str:
        """The phase by the clock; an outcome only once settlement stored it.

        ``sold`` promises the winner's order exists, so a lot past its end
        that nothing has settled yet still reads ``bidding`` (bids are refused
        by the clock all the same). Reads settle such a lot themselves
        (``settlement.lots_settle_due``), so this lasts only as long as a
        settlement takes.
        """
        if self.status in LOT_OUTCOMES:
            return self.status
        before = status_by_time(now, preview_at=self.special.preview_at, starts_at=self.special.starts_at)
        return before or LotStatus.BIDDING


class LotImage(models.Model):
    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="images")
    image = models.ForeignKey(get_image_model_string(), on_delete=models.CASCADE, related_name="+")
    sort_order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["lot_id", "sort_order", "id"]
