"""Read-only market state in the page editor: what bids and settlement made of a page.

A page holds content and terms; the price, the leader, the end time and the
deposits live on the market rows in ``auction``. Editors see them here
without leaving the page, and nothing here writes: these panels carry no
form fields, so saving or publishing the page cannot touch what they show.

The lot's panel stays live: ``cms/static/cms/live_market.js`` watches the lot
over ``/ws/v1/live`` with the admin's session, and updates the price, the
bids, the end and the watcher count as they change (live/consumer.py).
"""

from django.db.models import Count, Q, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from wagtail.admin.panels import ObjectList, Panel

from auction.models import (
    Deposit,
    DepositScope,
    DepositStatus,
    Lot,
    LotStatus,
    Order,
    OrderStatus,
    Special,
    SpecialStatus,
)
from auction.money import format_yuan
from auction.selectors import mask_nickname, special_closes_at, special_settlement_progress

# The panel is a glance, not the ledger: the Deposits screen has the rest.
DEPOSITS_SHOWN = 50
# Who may see the winner as they are (ops and finance call them); editors see them masked, as bidders do.
WINNER_PERMISSION = "auction.view_order"
# live/routing.py's socket, on this host (nginx routes /ws/ to the ASGI processes).
LIVE_PATH = "/ws/v1/live"


def _admin_url(name: str, *, args=(), query: str = "") -> str:
    # The ops screens are registered by cms.wagtail_hooks; a page type used
    # without them (a test settings module, say) still renders its panel.
    try:
        return reverse(name, args=args) + (f"?{query}" if query else "")
    except NoReverseMatch:
        return ""


def _counts_by_status(deposits) -> list[dict]:
    """Deposits per status in the lifecycle's order, with their total in yuan."""
    rows = {row["status"]: row for row in deposits.order_by().values("status").annotate(count=Count("id"), total=Sum("amount"))}
    return [
        {"status": status, "label": label, "count": rows[status]["count"], "total": format_yuan(rows[status]["total"] or 0)}
        for status, label in DepositStatus.choices
        if status in rows
    ]


def _winner(order: Order | None, viewer) -> dict | None:
    if order is None:
        return None
    if viewer is None or not viewer.has_perm(WINNER_PERMISSION):
        return {"is_masked": True, "nickname": mask_nickname(order.user.nickname)}
    # The phone is the one the winner gave with the shipping address, once they paid.
    return {
        "is_masked": False, "nickname": order.user.nickname or order.user.get_username(), "openid": order.user.openid or "",
        "phone": (order.address or {}).get("phone", ""), "user_id": order.user_id,
    }


def lot_market(*, page_id: int | None, viewer=None) -> dict:
    """What the lot editor's Market panel shows; ``lot`` is None before the first publish.
    ``viewer`` decides whether the winner is shown unmasked (``WINNER_PERMISSION``)."""
    lot = Lot.objects.select_related("special", "leader").filter(page_id=page_id).first() if page_id else None
    if lot is None:
        return {"lot": None}
    now = timezone.now()
    status = lot.status_at(now)
    deposits = Deposit.objects.filter(lot=lot, scope=DepositScope.LOT)
    order = Order.objects.filter(lot=lot).select_related("user").only(
        "pk", "order_no", "status", "address", "user__nickname", "user__openid", "user__username"
    ).first()
    return {
        "lot": lot,
        "status": status,
        "status_label": LotStatus(status).label,
        "current_price": format_yuan(lot.current_price) if lot.bid_count else None,
        "start_price": format_yuan(lot.start_price),
        "next_min_bid": format_yuan(lot.next_min_bid()) if status == LotStatus.BIDDING else None,
        "leader": mask_nickname(lot.leader.nickname) if lot.leader_id else None,
        "deposit_counts": _counts_by_status(deposits),
        "deposits": [
            {
                "id": deposit.pk,
                "user": mask_nickname(deposit.user.nickname),
                "amount": format_yuan(deposit.amount),
                "status": deposit.get_status_display(),
                "created_at": deposit.created_at,
                "url": _admin_url("market_deposits:inspect", args=(deposit.pk,)),
            }
            for deposit in deposits.select_related("user").order_by("-id")[:DEPOSITS_SHOWN]
        ],
        "special_deposits_held": Deposit.objects.filter(
            special_id=lot.special_id, scope=DepositScope.SPECIAL, status=DepositStatus.HELD
        ).count(),
        "order": order,
        "winner": _winner(order, viewer),
        "order_url": _admin_url("market_orders:inspect", args=(order.pk,)) if order else "",
        "bids_url": _admin_url("market_bids:index", query=f"lot={lot.pk}"),
        "events_url": _admin_url("market_events:index", query=f"lot={lot.pk}"),
        "deposits_url": _admin_url("market_deposits:index", query=f"lot={lot.pk}"),
        # For the live script: what it shows next to the codes a socket message carries.
        "status_labels": {status: label for status, label in LotStatus.choices},
        "live_path": LIVE_PATH,
    }


def special_market(*, page_id: int | None, viewer=None) -> dict:
    """The special editor's summary; ``special`` is None before the first publish."""
    special = Special.objects.filter(page_id=page_id).first() if page_id else None
    if special is None:
        return {"special": None}
    now = timezone.now()
    lot_summary = Lot.objects.filter(special=special).aggregate(count=Count("id"), published=Count("id", filter=Q(is_published=True)))
    closes_at = special_closes_at(special)
    status = special.status_at(now, closes_at=closes_at)
    held = Deposit.objects.filter(special=special, status=DepositStatus.HELD).aggregate(count=Count("id"), total=Sum("amount"))
    return {
        "special": special,
        "status_label": SpecialStatus(status).label,
        "lot_count": lot_summary["count"],
        "published_lot_count": lot_summary["published"],
        "closes_at": closes_at,
        "deposits_held": held["count"],
        "deposits_held_total": format_yuan(held["total"] or 0),
        "deposit_counts": _counts_by_status(Deposit.objects.filter(special=special)),
        "orders_by_status": [
            {"label": OrderStatus(row["status"]).label, "count": row["count"]}
            for row in Order.objects.filter(lot__special=special).order_by("status").values("status").annotate(count=Count("id"))
        ],
        "settlement": special_settlement_progress(special_id=special.pk),
        "deposits_url": _admin_url("market_deposits:index", query=f"special={special.pk}"),
        "events_url": _admin_url("market_events:index", query=f"special={special.pk}"),
    }


class MarketPanel(Panel):
    """Renders ``template_name`` with what ``market`` reads for the page; no form fields."""

    template_name = ""

    @staticmethod
    def market(*, page_id: int | None, viewer=None) -> dict:
        raise NotImplementedError

    class BoundPanel(Panel.BoundPanel):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.template_name = self.panel.template_name

        def get_context_data(self, parent_context=None):
            context = super().get_context_data(parent_context)
            # A page being created has no pk yet; it shows "not published yet".
            context["market"] = self.panel.market(
                page_id=self.instance.pk if self.instance else None, viewer=getattr(self.request, "user", None)
            )
            return context


class LotMarketPanel(MarketPanel):
    template_name = "cms/admin/lot_market_panel.html"
    market = staticmethod(lot_market)

    class BoundPanel(MarketPanel.BoundPanel):
        class Media:
            js = ["cms/live_market.js"]


class SpecialMarketPanel(MarketPanel):
    template_name = "cms/admin/special_market_panel.html"
    market = staticmethod(special_market)


class MarketTab(ObjectList):
    """The Market tab, at ``#tab-market`` in every language. Wagtail names a tab's
    anchor after its heading, and 市场 leaves no ASCII to name it by: links to the
    tab (and the browser tests) would change with the editor's language."""

    @property
    def clean_name(self) -> str:
        return "market"
