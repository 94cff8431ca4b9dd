"""Coupons in the Wagtail admin (Market → Coupons): operators create, edit and disable them.

Saving goes through ``auction.services.coupons.coupon_save``, never a plain
``Model.save``: a form holds the ``issued`` count read when it was opened,
and writing it back would undo the claims made while the operator typed.
There is no delete: a coupon is disabled (``enabled`` off), so coupons
already claimed and the audit trail always point at it.

Claimed coupons (``UserCoupon``) are listed read-only, like the other ops screens.
"""

import django_filters
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.filters import WagtailFilterSet
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.views import generic
from wagtail.admin.viewsets.model import ModelViewSet

from auction.errors import CouponTotalBelowIssued
from auction.models import Coupon, Special, UserCoupon, UserCouponStatus
from auction.services.coupons import coupon_save, status_filter
from cms import export_columns
from cms.exports import ExportingIndexView
from cms.read_only_viewset import (
    INSPECT_URL_NAMES,
    OpsInspectView,
    ReadOnlyViewSet,
    id_filter,
    money_column,
    since_filter,
)

SAVED_TERMS_NOTE = _("Changes apply to coupons claimed from now on; coupons already claimed keep the terms they were claimed with.")


# The form's words in the user's language; the model in ``auction`` names its fields in English.
COUPON_FIELD_TEXT = {
    "title": (_("Title"), ""),
    "amount": (_("Amount off (yuan)"), _("Taken off what is left to pay after the deposit credit.")),
    "min_amount": (_("Minimum order price (yuan)"), _("The hammer price must reach this; 0: no minimum.")),
    "special": (_("Special"), _("Only for orders of lots in this special; empty: any order.")),
    "total": (_("Total quantity"), _("How many can ever be claimed.")),
    "per_user_limit": (_("Per-user limit"), _("How many one user may claim.")),
    "claim_starts_at": (_("Claimable from"), ""),
    "claim_ends_at": (_("Claimable until"), ""),
    "valid_from": (_("Valid from"), ""),
    "valid_until": (_("Valid until"), ""),
    "valid_days": (_("Valid for days after claiming"), _("Instead of fixed dates: N days from the claim.")),
    "enabled": (_("Enabled"), _("Off: nobody can claim it (coupons already claimed stay usable).")),
}


class CouponForm(WagtailAdminModelForm):
    class Meta:
        model = Coupon
        fields = [
            "title", "amount", "min_amount", "special", "total", "per_user_limit", "claim_starts_at", "claim_ends_at",
            "valid_from", "valid_until", "valid_days", "enabled",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (label, help_text) in COUPON_FIELD_TEXT.items():
            self.fields[name].label, self.fields[name].help_text = label, help_text
        self.fields["special"].queryset = Special.objects.order_by("-starts_at", "-id")
        self.fields["special"].empty_label = gettext("Any special")
        if self.instance.pk:
            self.fields["total"].help_text = gettext("%(issued)s already issued: the total cannot go below that.") % {"issued": self.instance.issued}
            self.fields["title"].help_text = SAVED_TERMS_NOTE

    def clean(self):
        data = super().clean()
        amount = data.get("amount")
        if amount is not None and amount <= 0:
            self.add_error("amount", gettext("The amount off must be more than ¥0."))
        starts, ends = data.get("claim_starts_at"), data.get("claim_ends_at")
        if starts and ends and starts >= ends:
            self.add_error("claim_ends_at", gettext("The claim window must end after it starts."))
        self._clean_validity(data, starts)
        total = data.get("total")
        if total is not None:
            if total < 1:
                self.add_error("total", gettext("The total quantity must be at least 1."))
            elif self.instance.pk and total < self.instance.issued:
                self.add_error("total", gettext("%(issued)s already issued: the total cannot be less than that.") % {"issued": self.instance.issued})
        limit = data.get("per_user_limit")
        if limit is not None and limit < 1:
            self.add_error("per_user_limit", gettext("The per-user limit must be at least 1."))
        return data

    def _clean_validity(self, data: dict, claim_starts_at) -> None:
        valid_from, valid_until, valid_days = data.get("valid_from"), data.get("valid_until"), data.get("valid_days")
        has_dates, has_days = bool(valid_from or valid_until), valid_days is not None
        if has_dates and has_days:
            self.add_error("valid_days", gettext("Set the validity one way only: fixed dates, or a number of days after claiming, not both."))
        elif not has_dates and not has_days:
            self.add_error("valid_days", gettext("Set the validity: fixed dates (from and until), or a number of days after claiming."))
        elif has_days:
            if valid_days < 1:
                self.add_error("valid_days", gettext("Valid for at least 1 day."))
        elif not (valid_from and valid_until):
            self.add_error("valid_until" if valid_from else "valid_from", gettext("Fixed validity needs both dates: from and until."))
        elif valid_from >= valid_until:
            self.add_error("valid_until", gettext("Valid until must be after valid from."))
        elif claim_starts_at and valid_until <= claim_starts_at:
            self.add_error("valid_until", gettext("The coupon would expire before it can be claimed: end its validity after the claim window opens."))


class CouponSaveMixin:
    """Save through the service; a total overtaken by racing claims is a form error, not a 500."""

    def save_instance(self):
        return coupon_save(coupon=self.form.save(commit=False), staff=self.request.user.get_username())

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except CouponTotalBelowIssued as error:
            form.add_error("total", error.message)
            self.produced_error_code = "validation_error"
            self.produced_error_message = self.get_error_message()
            return self.form_invalid(form)


class CouponCreateView(CouponSaveMixin, generic.CreateView):
    pass


class CouponEditView(CouponSaveMixin, generic.EditView):
    pass


class CouponIndexView(ExportingIndexView):
    """Translated labels and title (cms.exports); no export columns, so no export buttons."""

    def get_base_queryset(self):
        # A subquery per coupon on (coupon, status): a join would read every claim of a hot coupon.
        used = (
            UserCoupon.objects.filter(coupon=OuterRef("pk"), status=UserCouponStatus.USED)
            .order_by().values("coupon").annotate(n=Count("pk")).values("n")
        )
        return super().get_base_queryset().select_related("special").annotate(used_count=Coalesce(Subquery(used), 0))


def _window(coupon: Coupon) -> str:
    return f"{timezone.localtime(coupon.claim_starts_at):%Y-%m-%d %H:%M} – {timezone.localtime(coupon.claim_ends_at):%Y-%m-%d %H:%M}"


def _validity(coupon: Coupon) -> str:
    if coupon.valid_days:
        return gettext("%(days)s days after claiming") % {"days": coupon.valid_days}
    return f"{timezone.localtime(coupon.valid_from):%Y-%m-%d %H:%M} – {timezone.localtime(coupon.valid_until):%Y-%m-%d %H:%M}"


class CouponFilterSet(WagtailFilterSet):
    enabled = django_filters.BooleanFilter(label=_("Enabled"))
    special = django_filters.ModelChoiceFilter(queryset=Special.objects.order_by("-starts_at", "-id"), label=_("Special"))

    class Meta:
        model = Coupon
        fields = ["enabled", "special"]


class CouponViewSet(ModelViewSet):
    model = Coupon
    name = "market_coupons"
    icon = "tag"
    menu_label = _("Coupons")
    url_prefix = "market/coupons"
    index_view_class = CouponIndexView
    add_view_class = CouponCreateView
    edit_view_class = CouponEditView
    inspect_view_enabled = True
    inspect_view_class = OpsInspectView
    copy_view_enabled = False
    add_to_reference_index = False
    list_per_page = 50
    list_display = [
        "title", money_column("amount", _("Amount off")), money_column("min_amount", _("Minimum")), "special",
        Column("window", label=_("Claimable"), accessor=_window),
        Column("validity", label=_("Valid"), accessor=_validity),
        Column("total", label=_("Total"), sort_key="total"),
        Column("issued", label=_("Claimed"), sort_key="issued"),
        Column("used_count", label=_("Used"), sort_key="used_count"),
        Column("remaining", label=_("Remaining"), accessor=lambda coupon: coupon.remaining),
        BooleanColumn("enabled", label=_("Enabled")),
    ]
    filterset_class = CouponFilterSet
    search_fields = ["title"]
    inspect_view_fields = [
        "title", "amount", "min_amount", "special", "total", "issued", "per_user_limit", "claim_starts_at",
        "claim_ends_at", "valid_from", "valid_until", "valid_days", "enabled", "created_at", "updated_at",
    ]

    def get_form_class(self, for_update=False):
        return CouponForm

    def get_index_view_kwargs(self, **kwargs):
        return super().get_index_view_kwargs(page_title=self.menu_label, **kwargs)

    def on_register(self):
        INSPECT_URL_NAMES[self.model] = self.get_url_name("inspect")
        super().on_register()

    def get_common_view_kwargs(self, **kwargs):
        view_kwargs = super().get_common_view_kwargs(**kwargs)
        # No delete, history or usage: see the module docstring.
        for name in ("delete", "history", "usage"):
            view_kwargs[f"{name}_url_name"] = None
        return view_kwargs

    def get_inspect_view_kwargs(self, **kwargs):
        return super().get_inspect_view_kwargs(money_fields=("amount", "min_amount"), event_field="coupon", **kwargs)

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("new/", self.add_view, name="add"),
            path("edit/<int:pk>/", self.edit_view, name="edit"),
            path("inspect/<int:pk>/", self.inspect_view, name="inspect"),
        ]

    def get_permissions_to_register(self):
        # Add, change and view mean something here; delete does not exist.
        return super().get_permissions_to_register().exclude(codename=f"delete_{self.model_name}")


class UserCouponFilterSet(WagtailFilterSet):
    # As shown everywhere else: an unused coupon past its validity is expired.
    status = django_filters.ChoiceFilter(choices=UserCouponStatus.choices, method="filter_status", label=_("Status"))
    coupon = id_filter("coupon_id", _("Coupon id"))
    user = id_filter("user_id", _("User id"))
    claimed_after = since_filter("claimed_at", _("Claimed from"))
    used_after = since_filter("used_at", _("Used from"))

    class Meta:
        model = UserCoupon
        fields = ["status"]

    def filter_status(self, queryset, name, value):
        return queryset.filter(status_filter(value, timezone.now())) if value else queryset


def _shown_status(user_coupon: UserCoupon) -> str:
    return UserCouponStatus(user_coupon.status_at(timezone.now())).label


class UserCouponViewSet(ReadOnlyViewSet):
    model = UserCoupon
    name = "market_user_coupons"
    icon = "tag"
    menu_label = _("Claimed coupons")
    export_columns = export_columns.USER_COUPONS
    list_display = [
        "id", "title", "user", Column("shown_status", label=_("Status"), accessor=_shown_status),
        money_column("amount", _("Amount off")), "valid_until", "order", "claimed_at",
    ]
    filterset_class = UserCouponFilterSet
    search_fields = ["title"]
    user_search_field = "user"
    list_select_related = ("user", "order")
    inspect_view_fields = [
        "id", "coupon", "user", "shown_status", "title", "amount", "min_amount", "special", "valid_from", "valid_until",
        "order", "payment", "claim_number", "claimed_at", "locked_at", "used_at",
    ]
    computed_fields = {"shown_status": (_("Status"), _shown_status)}
    money_fields = ("amount", "min_amount")
    event_field = "user_coupon"
