"""优惠券: coupons operators issue, users claim in the coupon centre and spend on an order.

A ``Coupon`` is the offer (terms, quantity, claim window); a ``UserCoupon``
is one claimed copy. The copy keeps the terms it was claimed with, so an
operator editing the offer never changes a coupon somebody already holds.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from auction.models.catalog import Special
from auction.models.orders import Order
from auction.models.payments import Payment
from auction.money import FenField


class Coupon(models.Model):
    title = models.CharField(max_length=64)
    amount = FenField("amount off (yuan)", help_text="Taken off what is left to pay after the deposit credit.")
    min_amount = FenField("minimum order price (yuan)", default=0, help_text="The hammer price must reach this; 0: no minimum.")
    special = models.ForeignKey(
        Special, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons",
        help_text="Only for orders of lots in this special; empty: any order.",
    )
    total = models.PositiveIntegerField("total quantity", help_text="How many can ever be claimed.")
    # Written only by the claim's conditional UPDATE (issued < total): never by a form.
    issued = models.PositiveIntegerField(default=0, editable=False)
    per_user_limit = models.PositiveIntegerField("per-user limit", default=1, help_text="How many one user may claim.")
    claim_starts_at = models.DateTimeField("claimable from")
    claim_ends_at = models.DateTimeField("claimable until")
    # Validity, one way or the other: fixed dates, or N days from the claim.
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    valid_days = models.PositiveIntegerField(
        "valid for days after claiming", null=True, blank=True, help_text="Instead of fixed dates: N days from the claim."
    )
    enabled = models.BooleanField(default=True, help_text="Off: nobody can claim it (coupons already claimed stay usable).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ["-id"]
        indexes = [models.Index(fields=["enabled", "claim_starts_at", "claim_ends_at"])]
        constraints = [
            # The last line behind the claim's conditional UPDATE and the admin's total check.
            models.CheckConstraint(condition=Q(issued__lte=F("total")), name="coupon_never_oversold"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="coupon_amount_positive"),
            models.CheckConstraint(condition=Q(per_user_limit__gte=1), name="coupon_per_user_limit_positive"),
            models.CheckConstraint(condition=Q(claim_starts_at__lt=F("claim_ends_at")), name="coupon_claim_window_in_order"),
            models.CheckConstraint(
                condition=(
                    Q(valid_days__isnull=True, valid_from__isnull=False, valid_until__isnull=False, valid_from__lt=F("valid_until"))
                    | Q(valid_days__isnull=False, valid_days__gte=1, valid_from__isnull=True, valid_until__isnull=True)
                ),
                name="coupon_validity_one_way",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.issued)

    def is_claimable_at(self, now: datetime) -> bool:
        """Enabled, inside the claim window, and not already past fixed validity."""
        if not self.enabled or not (self.claim_starts_at <= now < self.claim_ends_at):
            return False
        return self.valid_until is None or now < self.valid_until

    def validity_for_claim_at(self, now: datetime) -> tuple[datetime, datetime]:
        if self.valid_days:
            return now, now + timedelta(days=self.valid_days)
        return self.valid_from, self.valid_until


class UserCouponStatus(models.TextChoices):
    UNUSED = "unused", _("unused")
    LOCKED = "locked", _("locked (held by an order payment)")
    USED = "used", _("used")
    EXPIRED = "expired", _("expired")


class UserCoupon(models.Model):
    """One claimed coupon, with the terms it was claimed with."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="coupons")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="user_coupons")
    # 1..per_user_limit: unique per (coupon, user), so two racing claims of one
    # user cannot both take the same place under the limit.
    claim_number = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=UserCouponStatus.choices, default=UserCouponStatus.UNUSED)
    # The terms as claimed (editing the coupon afterwards changes none of them).
    title = models.CharField(max_length=64)
    amount = models.PositiveBigIntegerField(help_text="fen")
    min_amount = models.PositiveBigIntegerField(default=0, help_text="fen; 0: none")
    special = models.ForeignKey(Special, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    # While locked or used: the order it is on (one coupon per order: unique),
    # and the payment that holds it. Cleared when it goes back to unused.
    order = models.OneToOneField(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="user_coupon")
    # No database constraint: checking one would share-lock the payment row
    # from under the order's lock, the reverse of the order a success being
    # applied takes them in (payment, then order), and deadlock with it.
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    claimed_at = models.DateTimeField()
    locked_at = models.DateTimeField(null=True, blank=True)
    used_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("claimed coupon")
        verbose_name_plural = _("claimed coupons")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "status"]),
            models.Index(fields=["status", "valid_until"]),
            models.Index(fields=["coupon", "status"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["coupon", "user", "claim_number"], name="user_coupon_one_per_claim_number"),
            models.CheckConstraint(condition=Q(claim_number__gte=1), name="user_coupon_claim_number_positive"),
            # On an order exactly while locked or used.
            models.CheckConstraint(
                condition=(
                    Q(status__in=[UserCouponStatus.LOCKED, UserCouponStatus.USED], order__isnull=False)
                    | Q(status__in=[UserCouponStatus.UNUSED, UserCouponStatus.EXPIRED], order__isnull=True)
                ),
                name="user_coupon_order_while_held",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} #{self.pk}"

    def status_at(self, now: datetime) -> str:
        """An unused coupon past its validity is expired, whether or not the sweep has flipped it."""
        if self.status == UserCouponStatus.UNUSED and now >= self.valid_until:
            return UserCouponStatus.EXPIRED
        return self.status

    def is_valid_at(self, now: datetime) -> bool:
        return self.valid_from <= now < self.valid_until
