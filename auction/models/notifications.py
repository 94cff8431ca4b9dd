"""WeChat subscribe messages: credits the user granted, and the outbox of what to send.

A subscribe message is one-time: each ``accept`` from ``wx.requestSubscribeMessage``
allows one message of that template. Credits are kept per template id, since
that is what WeChat counts (kinds that share a template share its credits).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from auction.models.catalog import Lot


class NotificationKind(models.TextChoices):
    WON = "won", _("won (得标)")
    PAYMENT_DUE = "payment_due", _("payment due (付款提醒)")
    REFUNDED = "refunded", _("deposit refunded (保证金退还)")
    OUTBID = "outbid", _("outbid (被超越)")
    LOT_OPENING = "lot_opening", _("lot opening (开拍提醒)")


# Credits are spent in this order when few are left (README, "Notifications").
KIND_PRIORITY = {
    NotificationKind.WON: 0,
    NotificationKind.PAYMENT_DUE: 1,
    NotificationKind.REFUNDED: 2,
    NotificationKind.OUTBID: 3,
    NotificationKind.LOT_OPENING: 4,
}


class NotificationStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    SKIPPED = "skipped", _("skipped")
    FAILED = "failed", _("failed")


class SubscriptionCredit(models.Model):
    """How many messages of one template the user allows us to send."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription_credits")
    template_id = models.CharField(max_length=64)
    credits = models.PositiveIntegerField(default=0)
    # 'ban' (the user switched this template off): nothing is sent until they accept again.
    is_banned = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "template_id"], name="subscription_credit_one_per_template")]

    def __str__(self) -> str:
        return f"{self.credits} × {self.template_id} for user {self.user_id}"


class LotReminder(models.Model):
    """``PUT /lots/{id}/remind``: send ``lot_opening`` when bidding opens; consumed then."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lot_reminders")
    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="reminders")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lot"], name="lot_reminder_one_per_user")]


class Notification(models.Model):
    """One message to one user, a row before it is sent: unique per (user, kind,
    object), so the same event never produces two."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    # What it is about: the order (won, payment_due), the deposit (refunded),
    # the lot (lot_opening), the bid that outbid the user (outbid).
    object_id = models.BigIntegerField()
    lot = models.ForeignKey(Lot, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    priority = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(help_text="Not sent before this time.")
    attempts = models.PositiveSmallIntegerField(default=0)
    # While ``sending``: a worker holds it until then; past it, the send was interrupted.
    lease_until = models.DateTimeField(null=True, blank=True)
    template_id = models.CharField(max_length=64, blank=True, default="")
    errcode = models.IntegerField(null=True, blank=True, help_text="WeChat's errcode of the last attempt")
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind", "object_id"], name="notification_one_per_object"),
        ]
        indexes = [
            models.Index(fields=["status", "not_before"]),
            models.Index(fields=["user", "kind", "lot"]),
        ]

    def __str__(self) -> str:
        return gettext("%(kind)s #%(object)s to user %(user)s: %(status)s") % {
            "kind": self.get_kind_display(), "object": self.object_id, "user": self.user_id, "status": self.get_status_display()}


class OutbidScan(models.Model):
    """How far the outbid messages of a lot have been derived from its bids.

    Outbids are read from the bid rows by the sending job, so the bid path
    writes nothing for them; within one lot bids commit in id order (under the
    lot's row), so a per-lot mark never skips one."""

    lot = models.OneToOneField(Lot, on_delete=models.CASCADE, primary_key=True, related_name="+")
    last_bid_id = models.BigIntegerField(default=0)
