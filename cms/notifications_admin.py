"""Market → Notifications: the outbox of subscribe messages, read-only, with
"Resend" for a failed one (it goes back to pending; the job sends it)."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from wagtail.admin.filters import WagtailFilterSet

from auction.models import Notification, NotificationStatus
from auction.services.events import event_record
from auction.services.notifications import notification_resend
from cms.admin_views import QueryNow
from cms.read_only_viewset import ReadOnlyViewSet, id_filter


class NotificationResend(QueryNow):
    model = Notification
    permission = "auction.change_notification"
    label = gettext_lazy("Resend")

    def why_not(self, notification: Notification) -> str:
        if notification.status != NotificationStatus.FAILED:
            return _("This message is %(status)s: only a failed one can be resent.") % {"status": notification.get_status_display()}
        return ""

    def run(self, notification: Notification) -> tuple[int, str]:
        if notification_resend(notification_id=notification.pk):
            return messages.SUCCESS, _("Queued again: the notifications job sends it within a minute.")
        return messages.WARNING, _("It was no longer failed; nothing changed.")


def resend_view(action: NotificationResend, *, inspect_url_name: str):
    @require_POST
    def view(request, pk):
        if not request.user.has_perm(action.permission):
            raise PermissionDenied
        notification = get_object_or_404(Notification, pk=pk)
        reason = action.why_not(notification)
        if reason:
            messages.warning(request, reason)
        else:
            level, text = action.run(notification)
            event_record(
                "ops.notification_resend", actor="ops", user_id=notification.user_id, lot_id=notification.lot_id,
                data={"staff": request.user.get_username(), "notification_id": notification.pk, "kind": notification.kind},
            )
            messages.add_message(request, level, text)
        return redirect(inspect_url_name, pk)

    return view


class NotificationFilterSet(WagtailFilterSet):
    user = id_filter("user_id", gettext_lazy("User id"))
    lot = id_filter("lot_id", gettext_lazy("Lot id"))

    class Meta:
        model = Notification
        fields = ["status", "kind"]


class NotificationViewSet(ReadOnlyViewSet):
    model = Notification
    name = "market_notifications"
    icon = "mail"
    menu_label = gettext_lazy("Notifications")
    list_display = ["id", "kind", "user", "lot", "status", "attempts", "errcode", "last_error", "not_before", "sent_at"]
    filterset_class = NotificationFilterSet
    search_fields = ["template_id", "last_error"]
    user_search_field = "user"
    list_select_related = ("user", "lot")
    inspect_view_fields = [
        "id", "kind", "user", "lot", "object_id", "template_id", "status", "attempts", "errcode", "last_error",
        "not_before", "created_at", "sent_at",
    ]
    query_action = NotificationResend()

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<int:pk>/", self.inspect_view, name="inspect"),
            # "query" is the name the ops inspect template's action button posts to.
            path("resend/<int:pk>/", resend_view(self.query_action, inspect_url_name=self.get_url_name("inspect")), name="query"),
        ]
