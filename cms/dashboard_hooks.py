"""The dashboard's hooks: its page under Market, and its panel on Wagtail's home page.

Imported by ``cms.wagtail_hooks`` (Wagtail only loads that module).
"""

from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem

from cms.dashboard import PERMISSION, DashboardPanel, OverviewView
from cms.ops import MarketViewSetGroup


@hooks.register("register_admin_urls")
def register_overview_url():
    return [path("market/overview/", OverviewView.as_view(), name="market_overview")]


class PermittedMenuItem(MenuItem):
    def __init__(self, *args, permission: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.permission = permission

    def is_shown(self, request):
        return request.user.has_perm(self.permission)


@hooks.register(MarketViewSetGroup.submenu_hook)
def register_overview_menu_item():
    return PermittedMenuItem(_("Overview"), reverse("market_overview"), name="overview", icon_name="view", order=0, permission=PERMISSION)


@hooks.register("construct_homepage_panels")
def add_dashboard_panel(request, panels):
    if request.user.has_perm(PERMISSION):
        panels.append(DashboardPanel(request))
