"""Market → Jobs: Django-Q2's schedules, queued, successful and failed tasks, read-only in Wagtail.

The one action is "retry" on a failed task (``jobs.retry``), behind a
confirmation page. Django's admin keeps the full tools for superusers.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from django_q.models import Failure, OrmQ, Schedule, Success
from wagtail.admin.ui.tables import BooleanColumn, Column
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin
from wagtail.admin.viewsets.model import ModelViewSetGroup

from cms.read_only_viewset import ReadOnlyViewSet
from jobs.retry import failed_task_retry, is_core_schedule

RETRY_PERMISSION = "django_q.change_failure"


def _traceback(task) -> str:
    return format_html('<pre class="ops-traceback" data-traceback>{}</pre>', task.result or "")


class TaskViewSet(ReadOnlyViewSet):
    """Task ids are strings (Django-Q2's uuids), not integers."""

    list_display = ["name", "func", "started", "stopped", Column("time_taken", label=_("Seconds"), accessor=lambda task: round(task.time_taken(), 2))]
    search_fields = ["name", "func", "group"]
    inspect_view_fields = ["name", "func", "args", "kwargs", "group", "cluster", "started", "stopped", "attempt_count", "result"]
    ordering = ["-stopped"]

    def get_permissions_to_register(self):
        from django.contrib.auth.models import Permission
        from django.contrib.contenttypes.models import ContentType

        # Success and Failure are proxies of Task, each with its own permissions.
        content_type = ContentType.objects.get_for_model(self.model, for_concrete_model=False)
        return Permission.objects.filter(content_type=content_type, codename__in=self.permission_codenames)

    @property
    def permission_codenames(self):
        return [f"view_{self.model_name}"]

    def get_urlpatterns(self):
        return [
            path("", self.index_view, name="index"),
            path("results/", self.index_results_view, name="index_results"),
            path("inspect/<str:pk>/", self.inspect_view, name="inspect"),
        ]


class SuccessViewSet(TaskViewSet):
    model = Success
    name = "market_jobs_succeeded"
    icon = "success"
    menu_label = _("Jobs: succeeded")


class RetryView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "cms/admin/task_retry.html"
    page_title = _("Retry the failed task")
    header_icon = "resubmit"

    def dispatch(self, request, pk):
        if not request.user.has_perm(RETRY_PERMISSION):
            raise PermissionDenied
        self.task = get_object_or_404(Failure, pk=pk)
        return super().dispatch(request, pk=pk)

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "task": self.task, "traceback": _traceback(self.task),
                "inspect_url": reverse("market_jobs_failed:inspect", args=(self.task.pk,))}

    def post(self, request, pk):
        new_id = failed_task_retry(task_id=self.task.pk, staff=request.user.get_username())
        messages.success(request, _("Task %(name)s queued again (%(id)s).") % {"name": self.task.name, "id": new_id})
        return redirect("market_jobs_failed:index")


class FailureViewSet(TaskViewSet):
    model = Failure
    name = "market_jobs_failed"
    icon = "warning"
    menu_label = _("Jobs: failed")
    computed_fields = {"result": (_("Traceback"), _traceback)}
    row_actions = staticmethod(
        lambda task, user: [{"label": _("Retry"), "url": reverse("market_jobs_failed:retry", args=(task.pk,)), "button_class": "button"}]
        if user.has_perm(RETRY_PERMISSION) else []
    )

    permission_codenames = ["view_failure", "change_failure"]

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [path("retry/<str:pk>/", RetryView.as_view(), name="retry")]


class ScheduleViewSet(ReadOnlyViewSet):
    model = Schedule
    name = "market_jobs_schedules"
    icon = "time"
    menu_label = _("Jobs: schedules")
    list_display = [
        "name", "func", "schedule_type", "next_run",
        BooleanColumn("core", label=_("Core (not editable)"), accessor=lambda schedule: is_core_schedule(schedule.name)),
    ]
    search_fields = ["name", "func"]
    inspect_view_fields = ["name", "func", "args", "kwargs", "schedule_type", "minutes", "repeats", "next_run", "cron", "task", "cluster"]
    ordering = ["next_run"]


class QueuedViewSet(ReadOnlyViewSet):
    """The database broker's queue (the embedded default); with Redis the queue lives there."""

    model = OrmQ
    name = "market_jobs_queued"
    icon = "list-ul"
    menu_label = _("Jobs: queued")
    list_display = [Column("task_name", label=_("Task"), accessor=lambda row: row.name()), Column("func", label=_("Function"), accessor=lambda row: row.func()), "lock"]
    inspect_view_fields = ["key", "lock"]


JOB_VIEWSETS = (ScheduleViewSet, QueuedViewSet, SuccessViewSet, FailureViewSet)


class JobsViewSetGroup(ModelViewSetGroup):
    menu_label = _("Jobs")
    menu_icon = "cogs"
    items = JOB_VIEWSETS
