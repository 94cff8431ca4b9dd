"""House rules in the admin: re-auction (二拍) an unsold or defaulted lot, and lift a defaulter's bar.

Each is a form behind a confirmation; the rules are the services' (``cms.relisting``,
``auction.services.bars``), so the form and any other caller cannot disagree.
Both are 运营's (``auction.change_lot``: nothing else in the admin edits a lot's
market row, so the permission means exactly "the house rules").
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from auction.models import Lot, Order, OrderStatus, Special, User
from auction.money import YuanFormField, format_yuan
from auction.selectors import users_matching
from auction.services.bars import bar_lift, defaults_counted
from auction.services.relisting import RELISTABLE, lowest_reserve, relist_refusal
from cms.models import SpecialPage
from cms.relisting import relist

PERMISSION = "auction.change_lot"
# A glance at why a bidder was barred; the Orders screen has the rest.
DEFAULTS_SHOWN = 10


class RelistForm(forms.Form):
    special = forms.ModelChoiceField(
        queryset=SpecialPage.objects.none(), label=gettext_lazy("Special"), help_text=gettext_lazy("A special not yet bidding.")
    )
    start_price = YuanFormField(label=gettext_lazy("New start price (yuan)"))
    reserve_price = YuanFormField(label=gettext_lazy("New reserve (yuan)"), help_text=gettext_lazy("0: no reserve."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        open_ids = Special.objects.filter(starts_at__gt=timezone.now(), page_id__isnull=False).values_list("page_id", flat=True)
        self.fields["special"].queryset = SpecialPage.objects.filter(pk__in=list(open_ids)).order_by("starts_at")


def may_use_house_rules(user) -> bool:
    return user.has_perm(PERMISSION)


def _guard(request) -> None:
    if not may_use_house_rules(request.user):
        raise PermissionDenied


def relist_index(request):
    _guard(request)
    lots = Lot.objects.filter(status__in=RELISTABLE, relisted_as__isnull=True).select_related("special").order_by("-ends_at")
    title = _("Re-auction (二拍)")
    return TemplateResponse(request, "cms/admin/relist_index.html", {
        "lots": lots, "page_title": title, "header_title": title, "header_icon": "redirect",
    })


@require_http_methods(["GET", "POST"])
def relist_form(request, lot_id: int):
    _guard(request)
    lot = get_object_or_404(Lot, pk=lot_id)
    refusal = relist_refusal(lot)
    if refusal:
        messages.error(request, refusal)
        return redirect("house_rules_relist_index")
    form = RelistForm(request.POST or None, initial={"start_price": lot.start_price, "reserve_price": lot.reserve_price})
    if request.method == "POST" and form.is_valid():
        try:
            new = relist(lot_id=lot.pk, special_page_id=form.cleaned_data["special"].pk, start_price=form.cleaned_data["start_price"],
                         reserve_price=form.cleaned_data["reserve_price"], staff=request.user.get_username())
        except ValidationError as error:
            for field, texts in error.message_dict.items():
                form.add_error(field if field in form.fields else None, texts)
        else:
            messages.success(request, _("Lot “%(old)s” is re-auctioned as lot %(new)s in “%(special)s”.") % {
                "old": lot.title, "new": new.pk, "special": new.special.title})
            return redirect("wagtailadmin_pages:edit", new.page_id)
    return TemplateResponse(request, "cms/admin/relist_form.html", {
        "lot": lot, "form": form, "floor": format_yuan(lowest_reserve(lot)) if lot.reserve_price else None,
        "page_title": _("Re-auction %(lot)s") % {"lot": lot.title},
        "header_title": _("Re-auction “%(lot)s”") % {"lot": lot.title}, "header_icon": "redirect",
    })


class LiftForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}),
        help_text=gettext_lazy("Kept in the audit trail."),
    )
    confirm = forms.BooleanField(label=gettext_lazy("Yes: this bidder may deposit and bid again"))


def barred_index(request):
    """Who is barred, found by nickname, openid or phone; each row leads to the lift's confirmation."""
    _guard(request)
    query = request.GET.get("q", "").strip()
    barred = User.objects.filter(barred_at__isnull=False).order_by("-barred_at")
    if query:
        barred = barred.filter(pk__in=users_matching(query))
    users = [(user, defaults_counted(user=user)) for user in barred]
    title = _("Barred bidders")
    return TemplateResponse(request, "cms/admin/barred_index.html", {
        "users": users, "query": query, "page_title": title, "header_title": title, "header_icon": "lock",
    })


@require_http_methods(["GET", "POST"])
def bar_lift_form(request, user_id: int):
    """What lifting does and to whom, the defaults behind the bar, then the reason and a POST."""
    _guard(request)
    user = get_object_or_404(User, pk=user_id)
    if user.barred_at is None:
        messages.warning(request, _("%(user)s is not barred.") % {"user": user})
        return redirect("house_rules_barred")
    form = LiftForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if bar_lift(user_id=user.pk, reason=form.cleaned_data["reason"], actor="ops", staff=request.user.get_username()):
            messages.success(request, _("%(user)s may deposit and bid again.") % {"user": user})
        else:  # lifted by someone else between the page and the press
            messages.warning(request, _("%(user)s is not barred.") % {"user": user})
        return redirect("house_rules_barred")
    defaults = Order.objects.filter(user=user, status=OrderStatus.OVERDUE).select_related("lot").order_by("-pay_deadline")
    title = _("Lift the bar on %(user)s") % {"user": user}
    return TemplateResponse(request, "cms/admin/bar_lift_form.html", {
        "barred_user": user, "defaults": defaults[:DEFAULTS_SHOWN], "defaults_counted": defaults_counted(user=user), "form": form,
        "page_title": title, "header_title": title, "header_icon": "lock",
    })


def urlpatterns():
    return [
        path("house-rules/relist/", relist_index, name="house_rules_relist_index"),
        path("house-rules/relist/<int:lot_id>/", relist_form, name="house_rules_relist"),
        path("house-rules/barred/", barred_index, name="house_rules_barred"),
        path("house-rules/barred/<int:user_id>/lift/", bar_lift_form, name="house_rules_bar_lift"),
    ]


def relist_url(lot: Lot) -> str:
    return reverse("house_rules_relist", args=(lot.pk,))
