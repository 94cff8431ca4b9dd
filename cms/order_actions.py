"""What ops do to one order from its inspect page: ship it, give more time to pay, cancel it.

Each action is a form on its own page: the confirmation step (the ops person
sees what will happen and types what it needs) before a POST that calls the
``auction`` service. The services lock and re-check, so a stale page or a
double submit changes nothing twice.
"""

from datetime import timedelta

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import FormView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from auction.errors import DomainError
from auction.models import FulfilmentStatus, Order, OrderStatus
from auction.money import format_yuan
from auction.services.fulfilment import order_ship
from auction.services.order_ops import order_cancel, order_deadline_extend


class ShipForm(forms.Form):
    carrier = forms.CharField(label=_("Carrier"), max_length=64)
    tracking_no = forms.CharField(label=_("Tracking number"), max_length=64)


class ExtendForm(forms.Form):
    pay_deadline = forms.DateTimeField(
        label=_("New payment deadline"), help_text=_("Asia/Shanghai time, e.g. 2026-12-03 18:00"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200, help_text=_("Kept in the event history."))
    confirm = forms.BooleanField(label=_("Yes: cancel this order, refund the buyer's deposit and release the coupon"))


class OrderAction:
    name = ""
    label = ""
    permission = "auction.change_order"
    form_class = forms.Form
    button_class = "button"
    explanation = ""

    def why_not(self, order: Order) -> str:
        raise NotImplementedError

    def initial(self, order: Order) -> dict:
        return {}

    def run(self, order: Order, data: dict, staff: str) -> str:
        raise NotImplementedError

    def is_available(self, order: Order, user) -> bool:
        return user.has_perm(self.permission) and not self.why_not(order)


class Ship(OrderAction):
    name = "ship"
    label = _("Ship")
    form_class = ShipForm
    explanation = _("The buyer sees the carrier and tracking number at once; receipt is confirmed by them or automatically later.")

    def why_not(self, order):
        if order.status != OrderStatus.PAID or order.fulfilment_status not in (FulfilmentStatus.AWAITING_SHIPMENT, FulfilmentStatus.SHIPPED):
            return _("Only a paid order that has not been received can be shipped.")
        return ""

    def initial(self, order):
        return {"carrier": order.carrier, "tracking_no": order.tracking_no}

    def run(self, order, data, staff):
        order_ship(order_id=order.pk, carrier=data["carrier"], tracking_no=data["tracking_no"], staff=staff)
        return _("Order %(order)s shipped: %(carrier)s %(tracking_no)s.") % {"order": order, **data}


class ExtendDeadline(OrderAction):
    name = "extend"
    label = _("Extend the payment deadline")
    form_class = ExtendForm
    button_class = "button button-secondary"
    explanation = _("The buyer gets until the new deadline to pay; the order does not go overdue before it.")

    def why_not(self, order):
        return "" if order.status == OrderStatus.PENDING_PAYMENT else _("Only an order awaiting payment has a deadline to extend.")

    def initial(self, order):
        return {"pay_deadline": timezone.localtime(order.pay_deadline + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}

    def run(self, order, data, staff):
        order = order_deadline_extend(order_id=order.pk, pay_deadline=data["pay_deadline"], staff=staff)
        return _("Order %(order)s may now be paid until %(deadline)s.") % {
            "order": order, "deadline": timezone.localtime(order.pay_deadline).strftime("%Y-%m-%d %H:%M"),
        }


class Cancel(OrderAction):
    name = "cancel"
    label = _("Cancel the order")
    form_class = CancelForm
    button_class = "button serious"
    explanation = _(
        "The order is closed without payment, the buyer's deposit for this lot is refunded (nothing is forfeited), "
        "a coupon it held goes back unused, and the lot becomes unsold so it can be relisted."
    )

    def why_not(self, order):
        return "" if order.status == OrderStatus.PENDING_PAYMENT else _("Only an order awaiting payment can be cancelled.")

    def run(self, order, data, staff):
        order_cancel(order_id=order.pk, reason=data["reason"], staff=staff)
        return _("Order %(order)s cancelled; the deposit refund is on its way.") % {"order": order}


ACTIONS: tuple[OrderAction, ...] = (Ship(), ExtendDeadline(), Cancel())


class OrderActionView(WagtailAdminTemplateMixin, FormView):
    template_name = "cms/admin/order_action.html"
    action: OrderAction = None
    inspect_url_name = ""
    index_url_name = ""
    header_icon = "form"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.has_perm(self.action.permission):
            raise PermissionDenied
        self.order = get_object_or_404(Order.objects.select_related("lot", "user"), pk=kwargs["pk"])
        return super().dispatch(request, *args, **kwargs)

    def get_form_class(self):
        return self.action.form_class

    def get_initial(self):
        return self.action.initial(self.order)

    def get_page_title(self):
        return self.action.label

    def get_page_subtitle(self):
        return str(self.order)

    def get_breadcrumbs_items(self):
        return [
            *self.breadcrumbs_items,
            {"url": reverse(self.index_url_name), "label": _("Orders")},
            {"url": reverse(self.inspect_url_name, args=(self.order.pk,)), "label": str(self.order)},
            {"url": "", "label": self.action.label},
        ]

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            action=self.action, order=self.order, why_not=self.action.why_not(self.order),
            amount_due=format_yuan(self.order.amount_due), inspect_url=reverse(self.inspect_url_name, args=(self.order.pk,)),
        )
        return context

    def form_valid(self, form):
        reason = self.action.why_not(self.order)
        if reason:
            messages.warning(self.request, reason)
            return redirect(self.inspect_url_name, self.order.pk)
        try:
            text = self.action.run(self.order, form.cleaned_data, staff=self.request.user.get_username())
        except DomainError as error:
            form.add_error(None, error.message)
            return self.form_invalid(form)
        messages.success(self.request, text)
        return redirect(self.inspect_url_name, self.order.pk)


def order_action_urls(viewset) -> list:
    return [
        path(
            f"{action.name}/<int:pk>/",
            OrderActionView.as_view(
                action=action, inspect_url_name=viewset.get_url_name("inspect"), index_url_name=viewset.get_url_name("index"),
            ),
            name=action.name,
        )
        for action in ACTIONS
    ]


def order_actions_for(order: Order, user, viewset_name: str) -> list[dict]:
    return [
        {"label": action.label, "url": reverse(f"{viewset_name}:{action.name}", args=(order.pk,)), "button_class": action.button_class}
        for action in ACTIONS
        if action.is_available(order, user)
    ]
