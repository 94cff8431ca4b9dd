"""The ops dashboard: Wagtail's home panels and Market → Overview.

Figures come from ``auction.dashboard`` (a constant number of queries);
here they only get labels, yuan, charts and the link to the list behind each.
"""

from datetime import timedelta
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from django_q.models import Failure, Schedule
from wagtail.admin.ui.components import Component
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from auction.dashboard import PERIODS, dashboard, live_lots
from auction.money import format_yuan
from cms.charts import Bar, bar_chart

PERIOD_LABELS = {"today": _("Today"), "7d": _("7 days"), "30d": _("30 days")}
# Who may see the figures: anyone who may see orders (ops and finance).
PERMISSION = "auction.view_order"
HEARTBEAT_GRACE = timedelta(minutes=1)


def _url(name: str, **params) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(params)}" if params else url


def _iso(moment) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds")


def figures(board) -> dict:
    """Rows of the figures table: label, then per period (or now) text and link."""
    since = {name: _iso(start) for name, start in board.since.items()}

    def per_period(label, values, link, money=True):
        cells = []
        for name in PERIODS:
            value = values[name]
            text = f"{format_yuan(value.amount)} · {value.count}" if money else f"{value:,}"
            cells.append({"text": text, "url": link(since[name]), "period": name})
        return {"label": label, "cells": cells}

    periodic = [
        per_period(_("GMV (paid orders)"), board.gmv, lambda s: _url("market_orders:index", status="paid", paid_after=s)),
        per_period(_("Overdue orders"), board.overdue, lambda s: _url("market_orders:index", status="overdue", deadline_after=s)),
        per_period(_("Deposits forfeited"), board.forfeited, lambda s: _url("market_deposits:index", status="forfeited", updated_after=s)),
        per_period(_("Bids"), board.bids, lambda s: _url("market_bids:index", created_after=s), money=False),
        per_period(_("Coupons claimed"), board.coupons_claimed, lambda s: _url("market_user_coupons:index", claimed_after=s), money=False),
        per_period(_("Coupons used"), board.coupons_used, lambda s: _url("market_user_coupons:index", status="used", used_after=s), money=False),
    ]
    now = [
        {"label": _("Orders awaiting payment"), "text": f"{format_yuan(board.awaiting_payment.amount)} · {board.awaiting_payment.count}",
         "url": _url("market_orders:index", status="pending_payment"), "key": "awaiting_payment"},
        {"label": _("Orders awaiting shipment"), "text": f"{board.awaiting_shipment:,}",
         "url": _url("market_orders:index", fulfilment_status="awaiting_shipment"), "key": "awaiting_shipment"},
        {"label": _("Deposits held"), "text": f"{format_yuan(board.deposits_held.amount)} · {board.deposits_held.count}",
         "url": _url("market_deposits:index", status="held"), "key": "deposits_held"},
        {"label": _("Refunds in flight"), "text": f"{format_yuan(board.refunds_in_flight.amount)} · {board.refunds_in_flight.count}",
         "url": _url("market_refunds:index", in_flight="true"), "key": "refunds_in_flight"},
        {"label": _("Refunds failed"), "text": f"{format_yuan(board.refunds_failed.amount)} · {board.refunds_failed.count}",
         "url": _url("market_refunds:index", status="failed"), "key": "refunds_failed", "alert": board.refunds_failed.count > 0},
        {"label": _("Messages failed"), "text": f"{board.notifications_failed:,}",
         "url": _url("market_notifications:index", status="failed"), "key": "notifications_failed",
         "alert": board.notifications_failed > 0},
        {"label": _("Lots live now"), "text": f"{board.live_lots:,}", "url": reverse("market_overview") + "#live-lots", "key": "live_lots"},
    ]
    return {"periodic": periodic, "now": now}


def charts(board) -> dict:
    bids = [
        Bar(
            label=f"{timezone.localtime(hour):%H}" if index % 3 == 0 else "",
            value=count,
            tooltip=f"{timezone.localtime(hour):%m-%d %H:00} · {count}",
            url=_url("market_bids:index", created_after=_iso(hour)),
        )
        for index, (hour, count) in enumerate(board.bids_per_hour)
    ]
    gmv = [
        Bar(
            label=f"{timezone.localtime(day):%d}" if index % 5 == 0 else "",
            value=amount,
            tooltip=f"{timezone.localtime(day):%m-%d} · {format_yuan(amount)}",
            url=_url("market_orders:index", status="paid", paid_after=_iso(day)),
        )
        for index, (day, amount) in enumerate(board.gmv_per_day)
    ]
    return {
        "bids_per_hour": bar_chart(bids, title=str(_("Bids per hour, last 24 hours")), name="bids_per_hour"),
        "gmv_per_day": bar_chart(gmv, title=str(_("GMV per day, last 30 days")), name="gmv_per_day"),
    }


def job_warnings(*, now=None) -> list[str]:
    """Failed tasks in the last day, and a cluster that stopped running schedules."""
    from jobs.schedules import SWEEP_NAME

    now = now or timezone.now()
    warnings = []
    failed = Failure.objects.filter(stopped__gte=now - timedelta(hours=24)).count()
    if failed:
        warnings.append(_("%(count)s task(s) failed in the last 24 hours.") % {"count": failed})
    # runjobs sweeps every minute on every broker (jobs/sweeper.py); the sweep's
    # next run falling behind means no cluster is running (Django-Q2's own stats
    # live in a cache the embedded default does not share between processes).
    sweep = Schedule.objects.filter(name=SWEEP_NAME).only("next_run").first()
    if sweep is None or (sweep.next_run and sweep.next_run < now - HEARTBEAT_GRACE):
        warnings.append(_("The job cluster has not run its schedules for over a minute: is qcluster running?"))
    return warnings


def context(request) -> dict:
    board = dashboard()
    return {
        "board": board, "periods": [PERIOD_LABELS[name] for name in PERIODS], "figures": figures(board), "charts": charts(board),
        "job_warnings": job_warnings(now=board.now), "jobs_url": reverse("admin:app_list", args=("django_q",)),
    }


class OverviewView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "cms/admin/dashboard.html"
    page_title = _("Overview")
    header_icon = "view"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def get_breadcrumbs_items(self):
        return [*self.breadcrumbs_items, {"url": "", "label": _("Market")}, {"url": "", "label": self.get_page_title()}]

    def get_context_data(self, **kwargs):
        data = super().get_context_data(**kwargs)
        data.update(context(self.request))
        data["live_lots"] = live_lots(now=data["board"].now).select_related("special").order_by("ends_at")[:50]
        return data


class DashboardPanel(Component):
    """The same figures and charts on Wagtail's home page, for those who may see them."""

    name = "market_dashboard"
    order = 50
    template_name = "cms/admin/dashboard_panel.html"

    def __init__(self, request):
        self.request = request

    def get_context_data(self, parent_context=None):
        return {**context(self.request), "overview_url": reverse("market_overview")}
