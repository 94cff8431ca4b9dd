from django.conf import settings
from django.db import models

from auction.models.catalog import Lot


class LotBar(models.Model):
    """A defaulter barred from a re-auction of the lot they did not pay for."""

    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="bars")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="lot_bars")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lot", "user"], name="lot_bar_unique")]
