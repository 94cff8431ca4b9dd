from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from auction.models.catalog import Special


class SpecialBudget(models.Model):
    """预算: what one user's proxies may commit across a special's lots, in total.

    ``committed`` is the sum of the prices at which the user leads there (lots
    bidding or sold), as the last decision taken under this row's lock found
    it: a proxy answer locks the row (after its lot's), sums the user's leads
    on the other lots again and bids only within ``max_total``. The sum is
    taken from the lots, not kept as a running count, so a plain bid that
    outbids the user on the lock-free path needs no budget lookup
    (auction/services/budget_caps.py).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="special_budgets")
    special = models.ForeignKey(Special, on_delete=models.CASCADE, related_name="budgets")
    max_total = models.PositiveBigIntegerField(help_text="fen")
    committed = models.PositiveBigIntegerField(default=0, help_text="fen: the prices at which the user leads, at the last decision")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("budget")
        verbose_name_plural = _("budgets")
        # (user, special) first: the proxy query looks a budget up by both.
        constraints = [models.UniqueConstraint(fields=["user", "special"], name="special_budget_one_per_user")]

    def __str__(self) -> str:
        return _("budget of %(user)s on special %(special)s") % {"user": self.user_id, "special": self.special_id}
