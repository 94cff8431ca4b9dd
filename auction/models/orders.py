from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from auction.models.catalog import Lot


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("awaiting payment")
    PAID = "paid", _("paid")
    OVERDUE = "overdue", _("overdue")
    # Ops called the sale off before payment: nothing forfeited, the lot may be relisted.
    CANCELLED = "cancelled", _("cancelled")


class FulfilmentStatus(models.TextChoices):
    """After payment: ops ship the lot, the buyer (or the clock) confirms receipt."""

    AWAITING_SHIPMENT = "awaiting_shipment", _("awaiting shipment")
    SHIPPED = "shipped", _("shipped")
    RECEIVED = "received", _("received")


def address_text(address: dict | None) -> str:
    """The shipping address as a person reads it (and as ops search it)."""
    if not address:
        return ""
    parts = [address.get("name", ""), address.get("phone", ""), address.get("region", ""), address.get("detail", "")]
    return " ".join(str(part).strip() for part in parts if str(part).strip())


class Order(models.Model):
    order_no = models.CharField(max_length=32, unique=True)
    lot = models.OneToOneField(Lot, on_delete=models.PROTECT, related_name="order")  # one order per lot
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT)
    price = models.PositiveBigIntegerField(help_text="fen: the hammer price")
    # 佣金: rate × price rounded half up, fixed when the order is made; orders
    # made before the premium existed keep 0.
    premium = models.PositiveBigIntegerField(default=0, help_text="fen: the buyer's premium")
    deposit_credit = models.PositiveBigIntegerField(default=0, help_text="fen: the winner's lot deposit")
    coupon_discount = models.PositiveBigIntegerField(default=0, help_text="fen")
    pay_deadline = models.DateTimeField()
    address = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    # Written with ``address`` so ops can search it; the JSON stays the source.
    address_text = models.CharField("shipping address", max_length=512, blank=True, default="")
    # Empty until paid (the contract's ``fulfilment: null``).
    fulfilment_status = models.CharField("fulfilment", max_length=24, choices=FulfilmentStatus.choices, blank=True, default="")
    carrier = models.CharField(max_length=64, blank=True, default="")
    tracking_no = models.CharField("tracking number", max_length=64, blank=True, default="")
    shipped_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["user", "status"]),
            models.Index(fields=["status", "pay_deadline"]),
            # The auto-receipt sweep and the fulfilment filter.
            models.Index(fields=["fulfilment_status", "shipped_at"]),
        ]

    def __str__(self) -> str:
        return self.order_no

    @property
    def amount_due(self) -> int:
        return max(0, self.total - self.deposit_credit - self.coupon_discount)

    @property
    def total(self) -> int:
        """What the buyer owes before credits: the hammer price and the premium."""
        return self.price + self.premium
