"""House rules in the admin: re-auction (二拍) an unsold or defaulted lot, and lift a defaulter's bar.

Both are one form each; the rules are the services' (``cms.relisting``,
``auction.services.bars``), so the form and any other caller cannot disagree.
"""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from auction.models import Lot, Special, User
from auction.money import YuanFormField, format_yuan
from auction.services.bars import bar_lift, defaults_counted
from auction.services.relisting import RELISTABLE, lowest_reserve, relist_refusal
from cms.models import SpecialPage
from cms.relisting import relist

PERMISSION = "auction.change_lot"


class RelistForm(forms.Form):
    special = forms.ModelChoiceField(queryset=SpecialPage.objects.none(), help_text="A special not yet bidding.")
    start_price = YuanFormField(label="New start price (yuan)")
    reserve_price = YuanFormField(label="New reserve (yuan)", help_text="0: no reserve.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        open_ids = Special.objects.filter(starts_at__gt=timezone.now(), page_id__isnull=False).values_list("page_id", flat=True)
        self.fields["special"].queryset = SpecialPage.objects.filter(pk__in=list(open_ids)).order_by("starts_at")


def _guard(request) -> None:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied


def relist_index(request):
    _guard(request)
    lots = Lot.objects.filter(status__in=RELISTABLE, relisted_as__isnull=True).select_related("special").order_by("-ends_at")
    return TemplateResponse(request, "cms/admin/relist_index.html", {
        "lots": lots, "page_title": "Re-auction (二拍)", "header_title": "Re-auction (二拍)", "header_icon": "redirect",
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
            messages.success(request, f"Lot “{lot.title}” is re-auctioned as lot {new.pk} in “{new.special.title}”.")
            return redirect("wagtailadmin_pages:edit", new.page_id)
    return TemplateResponse(request, "cms/admin/relist_form.html", {
        "lot": lot, "form": form, "floor": format_yuan(lowest_reserve(lot)) if lot.reserve_price else None,
        "page_title": f"Re-auction {lot.title}", "header_title": f"Re-auction “{lot.title}”", "header_icon": "redirect",
    })


class LiftForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), help_text="Kept in the audit trail.")


@require_http_methods(["GET", "POST"])
def barred_index(request):
    if not request.user.has_perm("auction.change_user"):
        raise PermissionDenied
    form = LiftForm(request.POST or None)
    if request.method == "POST":
        user = get_object_or_404(User, pk=request.POST.get("user_id") or 0)
        if form.is_valid() and bar_lift(user_id=user.pk, reason=form.cleaned_data["reason"], actor="ops"):
            messages.success(request, f"{user} may deposit and bid again.")
            return redirect("house_rules_barred")
        if form.is_valid():
            messages.warning(request, f"{user} was not barred.")
    users = [(user, defaults_counted(user=user)) for user in User.objects.filter(barred_at__isnull=False).order_by("-barred_at")]
    return TemplateResponse(request, "cms/admin/barred_index.html", {
        "users": users, "form": form, "page_title": "Barred bidders", "header_title": "Barred bidders", "header_icon": "lock",
    })


def urlpatterns():
    return [
        path("house-rules/relist/", relist_index, name="house_rules_relist_index"),
        path("house-rules/relist/<int:lot_id>/", relist_form, name="house_rules_relist"),
        path("house-rules/barred/", barred_index, name="house_rules_barred"),
    ]


def relist_url(lot: Lot) -> str:
    return reverse("house_rules_relist", args=(lot.pk,))
