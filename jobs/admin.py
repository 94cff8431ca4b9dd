"""Django-Q2's admin stays for superusers, but the core schedules are not edited or deleted there:
they are written by jobs.schedules, and a hand edit would be overwritten or lose a lot's end."""

from django.contrib import admin
from django_q.admin import ScheduleAdmin
from django_q.models import Schedule

from jobs.retry import is_core_schedule


class GuardedScheduleAdmin(ScheduleAdmin):
    def has_change_permission(self, request, obj=None):
        if obj is not None and is_core_schedule(obj.name):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and is_core_schedule(obj.name):
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Bulk delete would go round the per-object check above.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


if admin.site.is_registered(Schedule):
    admin.site.unregister(Schedule)
admin.site.register(Schedule, GuardedScheduleAdmin)
