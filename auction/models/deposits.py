from django.conf import settings
from django.db import models

from auction.models.catalog import Lot, Special


class DepositScope(models.TextChoices):
    LOT = "lot", "lot"
    SPECIAL = "special", "special-wide"


class DepositStatus(models.TextChoices):
    PENDING = "pending", "awaiting payment"
    HELD = "held", "held"
    REFUNDING = "refunding", "refunding"
    REFUNDED = "refunded", "refunded"
    APPLIED = "applied", "credited to the order"
    FORFEITED = "forfeited", "forfeited (扣保证金)"
    CANCELLED = "cancelled", "cancelled (never paid)"


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
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "status"]), models.Index(fields=["lot", "status"]), models.Index(fields=["special", "status"])]

    def __str__(self) -> str:
        target = f"lot {self.lot_id}" if self.scope == DepositScope.LOT else f"special {self.special_id}"
        return f"deposit {self.pk} ({target}, {self.status})"

    @staticmethod
    def key_for(*, user_id: int, scope: str, special_id: int, lot_id: int | None) -> str:
        return f"{user_id}:{scope}:{lot_id if scope == DepositScope.LOT else special_id}"
