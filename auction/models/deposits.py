from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from auction.models.catalog import Lot, Special


class DepositScope(models.TextChoices):
    LOT = "lot", _("one lot")
    SPECIAL = "special", _("special-wide")


class DepositStatus(models.TextChoices):
    PENDING = "pending", _("awaiting payment")
    HELD = "held", _("held")
    REFUNDING = "refunding", _("refunding")
    REFUNDED = "refunded", _("refunded")
    APPLIED = "applied", _("credited to the order")
    FORFEITED = "forfeited", _("forfeited (扣保证金)")
    CANCELLED = "cancelled", _("cancelled (never paid)")


ACTIVE_DEPOSIT_STATUSES = (DepositStatus.PENDING, DepositStatus.HELD)


class Deposit(models.Model):
    """保证金, for one lot or a whole special."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deposits")
    scope = models.CharField(max_length=8, choices=DepositScope.choices)
    special = models.ForeignKey(Special, on_delete=models.PROTECT, related_name="deposits")
    lot = models.ForeignKey(Lot, null=True, blank=True, on_delete=models.PROTECT, related_name="deposits")
    amount = models.PositiveBigIntegerField(help_text="fen")
    status = models.CharField(max_length=16, choices=DepositStatus.choices, default=DepositStatus.PENDING)
    # "user:scope:target" while pending or held, NULL after: a unique column
    # that MySQL can enforce, where it cannot enforce a partial unique index.
    active_key = models.CharField(max_length=80, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("deposit")
        verbose_name_plural = _("deposits")
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "status"]), models.Index(fields=["lot", "status"]), models.Index(fields=["special", "status"])]

    def __str__(self) -> str:
        # What the admin titles a deposit by, in the reader's language.
        if self.scope == DepositScope.LOT:
            target = gettext("lot %(id)s") % {"id": self.lot_id}
        else:
            target = gettext("special %(id)s") % {"id": self.special_id}
        return gettext("deposit %(id)s (%(target)s, %(status)s)") % {"id": self.pk, "target": target, "status": self.get_status_display()}

    @staticmethod
    def key_for(*, user_id: int, scope: str, special_id: int, lot_id: int | None) -> str:
        return f"{user_id}:{scope}:{lot_id if scope == DepositScope.LOT else special_id}"
