"""Market → Budgets: each bidder's budget across a special (预算), read-only.

Ops read it when a bidder asks why a proxy stopped: the budget, what it
committed at the last decision under its lock (the column), and the sum of
the bidder's leads now. The movements are in Events (kinds ``budget.*``).
"""

from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import Column

from auction.models import SpecialBudget
from auction.money import format_yuan
from auction.services.budget_caps import committed_now, with_committed_now
from cms.read_only_viewset import ReadOnlyViewSet, id_filter, money_column


class BudgetFilterSet(WagtailFilterSet):
    special = id_filter("special_id", _("Special id"))
    user = id_filter("user_id", _("User id"))

    class Meta:
        model = SpecialBudget
        fields = []


def _committed_now(budget: SpecialBudget) -> str:
    leads = getattr(budget, "leads_now", None)  # the list's annotation; the inspect view asks
    if leads is None:
        leads = committed_now(special_id=budget.special_id, user_id=budget.user_id)
    return format_yuan(leads)


class BudgetViewSet(ReadOnlyViewSet):
    model = SpecialBudget
    name = "market_budgets"
    icon = "table"
    menu_label = _("Budgets")
    list_display = [
        "special", "user", money_column("max_total", _("Budget")), money_column("committed", _("Committed at the last decision")),
        Column("committed_now", label=_("Committed now"), accessor=_committed_now), "updated_at",
    ]
    filterset_class = BudgetFilterSet
    search_fields = ["user__nickname", "user__openid", "special__title"]
    list_select_related = ("special", "user")
    inspect_view_fields = ["special", "user", "max_total", "committed", "committed_now", "created_at", "updated_at"]
    # Labelled here: the model's fields carry no translatable names (cms.labels).
    computed_fields = {
        "max_total": (_("Budget"), lambda budget: format_yuan(budget.max_total)),
        "committed": (_("Committed at the last decision"), lambda budget: format_yuan(budget.committed)),
        "committed_now": (_("Committed now"), _committed_now),
    }

    def get_index_view_kwargs(self, **kwargs):
        view_kwargs = super().get_index_view_kwargs(**kwargs)
        view_kwargs["queryset"] = with_committed_now(view_kwargs["queryset"])
        return view_kwargs
