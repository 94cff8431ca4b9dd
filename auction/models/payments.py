from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from auction.models.deposits import Deposit
from auction.models.orders import Order


class PaymentPurpose(models.TextChoices):
    DEPOSIT = "deposit", _("deposit")
    ORDER = "order", _("order")


class PaymentStatus(models.TextChoices):
    CREATED = "created", _("created")
    PAID = "paid", _("paid")
    CLOSED = "closed", _("closed")


class Payment(models.Model):
    """One attempt to collect money; the row exists before the gateway hears of it,
    so a retry reuses ``out_trade_no`` and the gateway's idempotency protects us."""

    out_trade_no = models.CharField(max_length=32, unique=True)
    purpose = models.CharField(max_length=8, choices=PaymentPurpose.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments")
    deposit = models.OneToOneField(Deposit, null=True, blank=True, on_delete=models.PROTECT, related_name="payment")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    amount = models.PositiveBigIntegerField(help_text="fen")
    status = models.CharField(max_length=8, choices=PaymentStatus.choices, default=PaymentStatus.CREATED)
    gateway = models.CharField(max_length=16)
    params = models.JSONField(default=dict, blank=True, help_text="For wx.requestPayment")
    # The gateway's transaction id: unique, so one notification is applied once.
    transaction_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return self.out_trade_no


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("not yet sent")
    PROCESSING = "processing", _("accepted by the gateway")
    SUCCEEDED = "succeeded", _("refunded")
    FAILED = "failed", _("failed (needs ops)")


class Refund(models.Model):
    """Money back for one payment; one refund per payment, numbered from it."""

    out_refund_no = models.CharField(max_length=64, unique=True)
    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="refund")
    amount = models.PositiveBigIntegerField(help_text="fen")
    reason = models.CharField(max_length=80)
    status = models.CharField(max_length=12, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    gateway_refund_id = models.CharField(max_length=64, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Sends to the gateway so far.")
    last_error = models.TextField(blank=True, default="")
    # After a send the gateway did not take: the sweep sends it again from then on (backoff).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "created_at"]), models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return self.out_refund_no

    @staticmethod
    def number_for(payment: Payment) -> str:
        return f"R{payment.out_trade_no}"
