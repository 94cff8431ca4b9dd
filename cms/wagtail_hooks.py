"""Everything this project adds to the Wagtail admin, registered in one place.

The models shown here live in ``auction``, which knows nothing of Wagtail's
admin: the viewsets are defined in ``cms.ops`` and registered only here.
"""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from cms.budgets_admin import BudgetViewSet
from cms.coupons_admin import CouponViewSet, UserCouponViewSet
from cms.jobs_admin import JOB_VIEWSETS
from cms.notifications_admin import NotificationViewSet
from cms.ops import MarketViewSetGroup


class MarketMenu(MarketViewSetGroup):
    # Coupons are the one thing under Market that ops edit; see cms.coupons_admin.
    items = (*MarketViewSetGroup.items, BudgetViewSet, CouponViewSet, UserCouponViewSet, NotificationViewSet, *JOB_VIEWSETS)


@hooks.register("register_admin_viewset")
def register_market_viewsets():
    return MarketMenu()


class JobsMenuItem(MenuItem):
    """Django-Q2's full admin (the Jobs views above are read-only) is the Django admin's."""

    def is_shown(self, request):
        # The Django admin lets in staff only; a link others cannot open is noise.
        return request.user.is_active and request.user.is_staff


@hooks.register(MarketViewSetGroup.submenu_hook)
def register_jobs_menu_item():
    return JobsMenuItem(_("Jobs (Django admin)"), reverse("admin:app_list", args=("django_q",)), name="jobs", icon_name="cogs", order=900)


@hooks.register("register_admin_urls")
def register_house_rules_urls():
    from cms.rules_admin import urlpatterns

    return urlpatterns()


class HouseRulesMenuItem(MenuItem):
    """Shown only to who may use the house rules (cms.rules_admin): an editor has no use for a link they cannot open."""

    def is_shown(self, request):
        from cms.rules_admin import may_use_house_rules

        return may_use_house_rules(request.user)


@hooks.register(MarketViewSetGroup.submenu_hook)
def register_relist_menu_item():
    return HouseRulesMenuItem(_("Re-auction (二拍)"), reverse("house_rules_relist_index"), name="relist", icon_name="redirect", order=800)


@hooks.register(MarketViewSetGroup.submenu_hook)
def register_barred_menu_item():
    return HouseRulesMenuItem(_("Barred bidders"), reverse("house_rules_barred"), name="barred", icon_name="lock", order=810)


# The dashboard (Market → Overview and the home page panel) registers its own hooks.
from cms import dashboard_hooks  # noqa: E402,F401
