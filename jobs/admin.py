"""Django-Q2's admin stays for superusers, but the core schedules are not edited or deleted there:
they are written by jobs.schedules, and a hand edit would be overwritten or lose a lot's end."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_q.admin import ScheduleAdmin
from django_q.models import Schedule

from jobs.retry import is_core_schedule


class ScheduleForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = "__all__"

    def clean_name(self):
        # The database refuses a second schedule of one name (auction/migrations/0013):
        # said here, in the form, rather than as a failed save.
        name = self.cleaned_data.get("name")
        if name and Schedule.objects.filter(name=name).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError(_("Another schedule already has this name."))
        return name


class GuardedScheduleAdmin(ScheduleAdmin):
    form = ScheduleForm

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
