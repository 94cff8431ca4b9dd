from django.conf import settings
from django.db import models
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from auction.models.catalog import Lot
from auction.money import format_yuan


class Bid(models.Model):
    """An accepted bid; rows are only ever added, so they are the lot's history."""

    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="bids")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bids")
    price = models.PositiveBigIntegerField(help_text="fen")
    is_auto = models.BooleanField(default=False, help_text="Placed by a proxy (代理出价).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bid")
        verbose_name_plural = _("bids")
        ordering = ["-id"]
        indexes = [models.Index(fields=["lot", "-id"])]
        constraints = [
            # Prices on a lot only rise, so two bids at one price mean a lost update.
            models.UniqueConstraint(fields=["lot", "price"], name="bid_one_per_price"),
        ]

    def __str__(self) -> str:
        # What the admin titles a bid by: in the reader's language, money in yuan.
        return gettext("%(price)s on lot %(lot)s") % {"price": format_yuan(self.price), "lot": self.lot_id}


class AutoBid(models.Model):
    """代理出价: the server bids for the user one step at a time up to ``max_price``."""

    lot = models.ForeignKey(Lot, on_delete=models.CASCADE, related_name="auto_bids")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auto_bids")
    max_price = models.PositiveBigIntegerField(help_text="fen")
    # When the maximum was last set: at equal maximums the earlier one leads.
    set_at = models.DateTimeField()
    # Its maximum allows the next bid but the user's budget across the special
    # does not: it answers again once the budget has room (auction/services/budget_caps.py).
    held_by_budget = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["lot", "user"], name="auto_bid_one_per_user")]
        indexes = [models.Index(fields=["lot", "-max_price", "set_at"])]

    def __str__(self) -> str:
        return gettext("auto-bid up to %(price)s on lot %(lot)s") % {"price": format_yuan(self.max_price), "lot": self.lot_id}
