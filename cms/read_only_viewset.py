"""The read-only viewset every ops screen is built on (``cms.ops`` says why
read-only): a listing with search, filters and CSV/XLSX export, and an inspect
view that shows money in yuan, links related rows to their own inspect views
and lists the row's events, with the "query now" and "retry refund" buttons
where a screen has them. Also the columns and filters the screens share.
"""

from datetime import datetime

import django_filters
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from wagtail.admin.admin_url_finder import ModelAdminURLFinder
from wagtail.admin.ui.tables import Column
from wagtail.admin.views.generic import InspectView
from wagtail.admin.viewsets.model import ModelViewSet

from auction.models import Event, Lot, Special
from auction.money import format_yuan
from cms.admin_views import query_now_view, refund_retry_view
from cms.labels import actor_label, event_kind_label
from cms.user_search import UserSearchIndexView

# Enough history to settle a dispute on one row; the Events screen has all of it.
EVENTS_SHOWN = 200
# Where each model's inspect view lives, so inspect pages link to each other.
INSPECT_URL_NAMES: dict[type[models.Model], str] = {}


def _yuan_or_blank(fen: int | None) -> str:
    return "" if fen is None else format_yuan(fen)


def money_column(name: str, label: str, *, sortable: bool = True) -> Column:
    return Column(name, label=label, accessor=lambda obj: _yuan_or_blank(getattr(obj, name)), sort_key=name if sortable else None)


def _linked(value):
    """A row of another ops screen links to its inspect view; a lot or special to its page."""
    url_name = INSPECT_URL_NAMES.get(type(value))
    if url_name:
        return format_html('<a href="{}">{}</a>', reverse(url_name, args=(value.pk,)), value)
    if isinstance(value, (Lot, Special)) and value.page_id:
        return format_html('<a href="{}">{}</a>', reverse("wagtailadmin_pages:edit", args=(value.page_id,)), value)
    return value


class OpsInspectView(InspectView):
    template_name = "cms/admin/ops_inspect.html"
    # Passed in by the viewset (the view only accepts kwargs it has attributes for).
    money_fields: tuple[str, ...] = ()
    computed_fields: dict = {}
    event_field = ""
    query_action = None
    query_url_name = ""
    retry_action = None
    retry_url_name = ""
    # (obj, user) -> [{label, url, button_class}]: the row's own ops actions.
    row_actions = None
    # The list's name in the breadcrumbs (the viewset's translated menu label, not the model's English plural).
    index_label = ""

    def get_breadcrumbs_items(self):
        items = super().get_breadcrumbs_items()
        plural = str(capfirst(self.model._meta.verbose_name_plural))
        for item in items:
            if self.index_label and str(item.get("label", "")) == plural:
                item["label"] = self.index_label
        return items

    def get_field_label(self, field_name, field):
        from cms.labels import FIELD_LABELS

        if field_name in self.computed_fields:
            return self.computed_fields[field_name][0]
        return FIELD_LABELS.get(field_name) or super().get_field_label(field_name, field)

    def get_field_display_value(self, field_name, field):
        if field_name in self.computed_fields:
            return _linked(self.computed_fields[field_name][1](self.object)) or "—"
        if field_name in self.money_fields:
            value = getattr(self.object, field_name)
            return "—" if value is None else format_yuan(value)
        if field is not None and field.is_relation:
            return _linked(getattr(self.object, field_name)) or "—"
        value = super().get_field_display_value(field_name, field)
        if isinstance(value, datetime):
            # The generic template formats with |localize, which skips the
            # conversion to local time that {{ value }} alone would do.
            return timezone.localtime(value) if timezone.is_aware(value) else value
        return "—" if value is None else value

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        if self.event_field:
            context["events"] = [
                {"event": event, "kind": event_kind_label(event.kind), "actor": actor_label(event.actor),
                 "amount": _yuan_or_blank(event.amount), "url": reverse("market_events:inspect", args=(event.pk,))}
                for event in Event.objects.filter(**{self.event_field: self.object}).order_by("-id")[:EVENTS_SHOWN]
            ]
        if self.query_action and self.query_action.is_available(self.object, self.request.user):
            context["query_action"] = self.query_action
            context["query_url"] = reverse(self.query_url_name, args=(self.object.pk,))
        if self.retry_action and self.retry_action.is_available(self.object, self.request.user):
            context["retry_action"] = self.retry_action
            context["retry_url"] = reverse(self.retry_url_name, args=(self.object.pk,))
        if self.row_actions:
            context["row_actions"] = self.row_actions(self.object, self.request.user)
        return context


class ReadOnlyViewSet(ModelViewSet):
    """A listing and an inspect view; see ``cms.ops`` for why nothing more."""

    inspect_view_enabled = True
    inspect_view_class = OpsInspectView
    # CSV and XLSX through Wagtail's list export, with the list's filters (cms.exports),
    # and search by the row's user (cms.user_search).
    index_view_class = UserSearchIndexView
    user_search_field = ""
    export_columns: tuple = ()
    copy_view_enabled = False
    # The reference index would scan every new audit row for references on save.
    add_to_reference_index = False
    list_per_page = 50
    list_select_related: tuple[str, ...] = ()
    money_fields: tuple[str, ...] = ()
    computed_fields: dict = {}
    event_field = ""
    query_action = None
    retry_action = None
    row_actions = None

    @property
    def url_prefix(self):
        return "market/" + self.name.removeprefix("market_")

    def on_register(self):
        INSPECT_URL_NAMES[self.model] = self.get_url_name("inspect")
        super().on_register()

    def get_common_view_kwargs(self, **kwargs):
        view_kwargs = super().get_common_view_kwargs(**kwargs)
        # No such views exist; None makes the generic views offer no button for them.
        for name in ("add", "edit", "delete", "copy", "history", "usage"):
            view_kwargs[f"{name}_url_name"] = None
        return view_kwargs

    def get_index_view_kwargs(self, **kwargs):
        queryset = self.model._default_manager.select_related(*self.list_select_related)
        return super().get_index_view_kwargs(
            queryset=queryset, export_columns=self.export_columns, page_title=self.menu_label,
            user_search_field=self.user_search_field, **kwargs
        )

    def get_inspect_view_kwargs(self, **kwargs):
        return super().get_inspect_view_kwargs(
            money_fields=self.money_fields,
            computed_fields=self.computed_fields,
            event_field=self.event_field,
            query_action=self.query_action,
            query_url_name=self.get_url_name("query") if self.query_action else "",
            retry_action=self.retry_action,
            retry_url_name=self.get_url_name("retry") if self.retry_action else "",
            row_actions=self.row_actions,
            index_label=self.menu_label,
            **kwargs,
        )

    def get_urlpatterns(self):
        urlpatterns = [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<int:pk>/", self.inspect_view, name="inspect"),
        ]
        if self.query_action:
            view = query_now_view(self.query_action, inspect_url_name=self.get_url_name("inspect"))
            urlpatterns.append(path("query/<int:pk>/", view, name="query"))
        if self.retry_action:
            view = refund_retry_view(self.retry_action, inspect_url_name=self.get_url_name("inspect"))
            urlpatterns.append(path("retry/<int:pk>/", view, name="retry"))
        return urlpatterns

    @property
    def url_finder_class(self):
        # Wagtail's "edit this object" links (history, usage) go to the inspect view.
        return type("_OpsURLFinder", (ModelAdminURLFinder,), {"edit_url_name": self.get_url_name("inspect")})

    def get_permissions_to_register(self):
        # Offer group editors only what means something here: view, and change
        # where it allows "query now". Add and delete would promise forms that do not exist.
        codenames = [f"view_{self.model_name}"] + ([f"change_{self.model_name}"] if self.query_action else [])
        return Permission.objects.filter(content_type=ContentType.objects.get_for_model(self.model), codename__in=codenames)


def since_filter(field_name: str, label: str) -> django_filters.IsoDateTimeFilter:
    """From a moment on: what the dashboard's figures link to (``?paid_after=2026-12-01T00:00:00+08:00``)."""
    return django_filters.IsoDateTimeFilter(field_name=field_name, lookup_expr="gte", label=label)


def id_filter(field_name: str, label: str) -> django_filters.NumberFilter:
    """By a related row's id: what the page editor's market panel links to."""
    return django_filters.NumberFilter(field_name=field_name, label=label)
