"""Ops screens in the Wagtail admin: orders, deposits, payments, refunds, events, bids.

Read-only on purpose. Every change to these rows is a rule in ``auction``
(locked, re-checked, written to the audit trail); an edit form here would
be a way round all of that. So each viewset serves a listing and an inspect
view only, with no add, edit, copy or delete URL at all, and the only things
ops can do are "query now" and "retry refund" (``cms.admin_views``), which
call the same services as the jobs.

Plain ``ModelViewSet``s rather than snippets: registering these models as
snippets would also list them under Snippets and bring in snippet choosers,
revisions and usage views that an audit screen must not have.
"""

import django_filters
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.viewsets.model import ModelViewSetGroup

from auction.gateways.payments import GATEWAYS
from auction.models import Bid, Deposit, Event, Order, Payment, Refund, RefundStatus, UserCoupon
from auction.selectors import mask_nickname
from cms import export_columns
from cms.admin_views import PaymentQueryNow, RefundQueryNow, RefundRetry
from cms.labels import ACTORS, actor_label, event_kind_label, gateway_label
from cms.read_only_viewset import ReadOnlyViewSet, id_filter, money_column, since_filter


class OrderFilterSet(WagtailFilterSet):
    lot = id_filter("lot_id", _("Lot id"))
    user = id_filter("user_id", _("User id"))
    paid_after = since_filter("paid_at", _("Paid from"))
    deadline_after = since_filter("pay_deadline", _("Deadline from"))

    class Meta:
        model = Order
        fields = ["status", "fulfilment_status"]


def _order_row_actions(order, user):
    from cms.order_actions import order_actions_for

    return order_actions_for(order, user, OrderViewSet.name)


class OrderViewSet(ReadOnlyViewSet):
    model = Order
    name = "market_orders"
    icon = "form"
    menu_label = _("Orders")
    export_columns = export_columns.ORDERS
    list_display = [
        "order_no", "lot", "user", "status", "fulfilment_status", money_column("price", _("Price")),
        money_column("premium", _("Premium")), money_column("amount_due", _("Amount due"), sortable=False), "pay_deadline", "paid_at",
    ]
    filterset_class = OrderFilterSet
    # This order's own address too: a name or phone given for a gift, not the buyer's.
    search_fields = ["order_no", "address_text"]
    user_search_field = "user"
    list_select_related = ("lot", "user")
    inspect_view_fields = [
        "order_no", "lot", "user", "status", "price", "premium", "deposit_credit", "coupon_discount", "amount_due",
        "coupon", "pay_deadline", "created_at", "paid_at", "address_text",
        "fulfilment_status", "carrier", "tracking_no", "shipped_at", "received_at",
    ]
    computed_fields = {"coupon": (_("Coupon (locked or used)"), lambda order: UserCoupon.objects.filter(order=order).first())}
    money_fields = ("price", "premium", "deposit_credit", "coupon_discount", "amount_due")
    event_field = "order"
    row_actions = staticmethod(_order_row_actions)

    def get_urlpatterns(self):
        from cms.order_actions import order_action_urls

        return super().get_urlpatterns() + order_action_urls(self)

    def get_permissions_to_register(self):
        # "change" is what ships, extends and cancels (cms.order_actions).
        return Permission.objects.filter(
            content_type=ContentType.objects.get_for_model(Order), codename__in=["view_order", "change_order"]
        )


class DepositFilterSet(WagtailFilterSet):
    lot = id_filter("lot_id", _("Lot id"))
    special = id_filter("special_id", _("Special id"))
    updated_after = since_filter("updated_at", _("Changed from"))

    class Meta:
        model = Deposit
        fields = ["status", "scope"]


class DepositViewSet(ReadOnlyViewSet):
    model = Deposit
    name = "market_deposits"
    icon = "lock"
    menu_label = _("Deposits")
    export_columns = export_columns.DEPOSITS
    list_display = [
        "id", "user", "scope",
        Column("target", label=_("Lot / special"), accessor=lambda deposit: deposit.lot if deposit.lot_id else deposit.special),
        money_column("amount", _("Amount")), "status", "created_at",
    ]
    filterset_class = DepositFilterSet
    search_fields: list[str] = []
    user_search_field = "user"
    list_select_related = ("user", "lot", "special")
    inspect_view_fields = ["id", "user", "scope", "special", "lot", "amount", "status", "payment", "created_at", "updated_at"]
    computed_fields = {"payment": (_("Payment"), lambda deposit: Payment.objects.filter(deposit=deposit).first())}
    money_fields = ("amount",)
    event_field = "deposit"


class PaymentFilterSet(WagtailFilterSet):
    gateway = django_filters.ChoiceFilter(choices=lambda: [(name, gateway_label(name)) for name in GATEWAYS], label=_("Gateway"))

    class Meta:
        model = Payment
        fields = ["status", "purpose", "gateway"]


class PaymentViewSet(ReadOnlyViewSet):
    model = Payment
    name = "market_payments"
    icon = "tag"
    menu_label = _("Payments")
    export_columns = export_columns.PAYMENTS
    list_display = [
        "out_trade_no", "purpose", "user", money_column("amount", _("Amount")), "status",
        Column("gateway", label=_("Gateway"), accessor=lambda payment: gateway_label(payment.gateway), sort_key="gateway"),
        "created_at", "paid_at",
    ]
    filterset_class = PaymentFilterSet
    search_fields = ["out_trade_no", "transaction_id"]
    user_search_field = "user"
    list_select_related = ("user",)
    inspect_view_fields = [
        "out_trade_no", "purpose", "user", "deposit", "order", "amount", "status", "gateway", "transaction_id",
        "refund", "expires_at", "created_at", "paid_at", "closed_at",
    ]
    computed_fields = {
        "refund": (_("Refund"), lambda payment: Refund.objects.filter(payment=payment).first()),
        "gateway": (_("Gateway"), lambda payment: gateway_label(payment.gateway)),
    }
    money_fields = ("amount",)
    event_field = "payment"
    query_action = PaymentQueryNow()


class RefundFilterSet(WagtailFilterSet):
    in_flight = django_filters.BooleanFilter(method="filter_in_flight", label=_("In flight (not yet sent, or with the gateway)"))

    class Meta:
        model = Refund
        fields = ["status"]

    def filter_in_flight(self, queryset, name, value):
        if value is None:
            return queryset
        flight = models.Q(status__in=(RefundStatus.PENDING, RefundStatus.PROCESSING))
        return queryset.filter(flight) if value else queryset.exclude(flight)


class RefundViewSet(ReadOnlyViewSet):
    model = Refund
    name = "market_refunds"
    icon = "resubmit"
    menu_label = _("Refunds")
    export_columns = export_columns.REFUNDS
    list_display = [
        "out_refund_no", money_column("amount", _("Amount")), "reason", "status", "attempts", "created_at", "completed_at",
    ]
    filterset_class = RefundFilterSet
    search_fields = ["out_refund_no"]
    user_search_field = "payment__user"
    list_select_related = ("payment__user",)
    inspect_view_fields = [
        "out_refund_no", "payment", "amount", "reason", "status", "gateway_refund_id", "attempts", "last_error",
        "next_attempt_at", "created_at", "submitted_at", "completed_at",
    ]
    money_fields = ("amount",)
    event_field = "refund"
    query_action = RefundQueryNow()
    retry_action = RefundRetry()


class EventFilterSet(WagtailFilterSet):
    # "refund" finds refund.created, refund.succeeded, ...: kinds are dotted.
    kind = django_filters.CharFilter(lookup_expr="startswith", label=_("Kind starts with"))
    actor = django_filters.ChoiceFilter(choices=list(ACTORS.items()), label=_("Actor"))
    lot = id_filter("lot_id", _("Lot id"))
    special = id_filter("special_id", _("Special id"))
    user = id_filter("user_id", _("User id"))
    coupon = id_filter("coupon_id", _("Coupon id"))

    class Meta:
        model = Event
        fields = ["kind", "actor"]


class EventViewSet(ReadOnlyViewSet):
    model = Event
    name = "market_events"
    icon = "history"
    menu_label = _("Events")
    export_columns = export_columns.EVENTS
    list_display = [
        "created_at", Column("kind", label=_("Kind"), accessor=lambda event: event_kind_label(event.kind), sort_key="kind"),
        Column("actor", label=_("Actor"), accessor=lambda event: actor_label(event.actor), sort_key="actor"),
        "user", "lot", "order", money_column("amount", _("Amount")),
    ]
    filterset_class = EventFilterSet
    search_fields = ["kind"]
    user_search_field = "user"
    list_select_related = ("user", "lot", "order")
    inspect_view_fields = [
        "created_at", "kind_label", "actor_label", "user", "special", "lot", "deposit", "order", "payment", "refund",
        "coupon", "user_coupon", "amount", "data",
    ]
    computed_fields = {
        "kind_label": (_("Kind"), lambda event: event_kind_label(event.kind)),
        "actor_label": (_("Actor"), lambda event: actor_label(event.actor)),
    }
    money_fields = ("amount",)


class BidFilterSet(WagtailFilterSet):
    lot = id_filter("lot_id", _("Lot id"))
    created_after = since_filter("created_at", _("Placed from"))

    class Meta:
        model = Bid
        fields = ["is_auto"]


def _bidder(bid: Bid) -> str:
    return mask_nickname(bid.user.nickname)


class BidViewSet(ReadOnlyViewSet):
    model = Bid
    name = "market_bids"
    icon = "order-up"
    menu_label = _("Bids")
    export_columns = export_columns.BIDS
    list_display = [
        "lot", Column("bidder", label=_("Bidder"), accessor=_bidder), money_column("price", _("Price")),
        BooleanColumn("is_auto", label=_("Proxy")), "created_at",
    ]
    filterset_class = BidFilterSet
    search_fields: list[str] = []
    user_search_field = "user"
    list_select_related = ("lot", "user")
    # Masked as bidders see each other; the user id is enough to find them in Events.
    inspect_view_fields = ["lot", "bidder", "user_id", "price", "is_auto", "created_at"]
    computed_fields = {"bidder": (_("Bidder"), _bidder), "user_id": (_("Bidder's user id"), lambda bid: bid.user_id)}
    money_fields = ("price",)


class MarketViewSetGroup(ModelViewSetGroup):
    menu_label = _("Market")
    menu_icon = "tasks"
    menu_order = 250
    items = (OrderViewSet, DepositViewSet, PaymentViewSet, RefundViewSet, EventViewSet, BidViewSet)
    # cms.wagtail_hooks adds "Jobs" (Django-Q2's admin) to this submenu.
    submenu_hook = "register_market_menu_item"
