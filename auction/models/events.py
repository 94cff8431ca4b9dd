from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Event(models.Model):
    """The audit trail: every movement of money and every change of status.

    Ops read it in the admin; it is what settles a dispute. Rows are only added.
    """

    kind = models.CharField(max_length=48, db_index=True, help_text="e.g. deposit.held, order.overdue")
    actor = models.CharField(max_length=32, default="system", help_text="user, job, ops, gateway or system")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    special = models.ForeignKey("auction.Special", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    lot = models.ForeignKey("auction.Lot", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    deposit = models.ForeignKey("auction.Deposit", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    order = models.ForeignKey("auction.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    payment = models.ForeignKey("auction.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    refund = models.ForeignKey("auction.Refund", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    coupon = models.ForeignKey("auction.Coupon", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    user_coupon = models.ForeignKey("auction.UserCoupon", null=True, blank=True, on_delete=models.PROTECT, related_name="events")
    amount = models.BigIntegerField(null=True, blank=True, help_text="fen, when money moved")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind}"
