"""Market → Jobs: schedules and tasks read-only in Wagtail, a failed task's traceback and its retry;
the core schedules cannot be edited or deleted by hand, even in the Django admin."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Failure, Schedule, Task

from auction.models import Event
from jobs.schedules import sweep_every_minute

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345"))
    return client


def failed_task() -> Task:
    return Task.objects.create(
        id="a1b2c3", name="sweep-failed", func="jobs.tasks.sweep", started=timezone.now(), stopped=timezone.now(),
        success=False, result="Traceback (most recent call last):\n  boom\nValueError: 坏了",
    )


def test_the_job_screens_list_schedules_and_tasks(ops):
    sweep_every_minute()
    failed_task()
    for screen in ("market_jobs_schedules", "market_jobs_queued", "market_jobs_succeeded", "market_jobs_failed"):
        assert ops.get(reverse(f"{screen}:index")).status_code == 200, screen
    html = ops.get(reverse("market_jobs_schedules:index")).content.decode()
    assert "sweep: reconcile everything due" in html


def queued() -> int:
    # The ORM broker (embedded default) or Redis (production): whichever is configured.
    from django_q.brokers import get_broker

    return get_broker().queue_size()


def test_a_failed_task_shows_its_traceback_and_can_be_retried_once(ops):
    task = failed_task()
    before = queued()
    inspect = ops.get(reverse("market_jobs_failed:inspect", args=(task.pk,))).content.decode()
    assert "data-traceback" in inspect and "ValueError: 坏了" in inspect
    retry_url = reverse("market_jobs_failed:retry", args=(task.pk,))
    assert retry_url in inspect
    # the confirmation page changes nothing; the POST queues the task again
    assert ops.get(retry_url).status_code == 200 and Failure.objects.filter(pk=task.pk).exists()
    assert ops.post(retry_url).status_code == 302
    assert not Failure.objects.filter(pk=task.pk).exists()
    assert queued() == before + 1
    assert Event.objects.filter(kind="ops.task_retried").count() == 1
    assert ops.post(retry_url).status_code == 404  # pressed twice: nothing is queued twice
    assert queued() == before + 1


def test_an_operator_without_the_retry_permission_cannot_retry(django_user_model):
    user = django_user_model.objects.create_user("finance", password="pw-fin-12345")
    user.groups.add(Group.objects.get(name="财务"))
    client = Client()
    client.force_login(user)
    task = failed_task()
    client.post(reverse("market_jobs_failed:retry", args=(task.pk,)))
    assert Failure.objects.filter(pk=task.pk).exists()


def test_core_schedules_cannot_be_changed_or_deleted_in_the_django_admin(ops):
    sweep = sweep_every_minute()
    hand_made = Schedule.objects.create(name="a report", func="jobs.tasks.sweep", schedule_type=Schedule.DAILY)
    assert ops.post(reverse("admin:django_q_schedule_delete", args=(sweep.pk,)), {"post": "yes"}).status_code == 403
    assert Schedule.objects.filter(pk=sweep.pk).exists()
    change = ops.get(reverse("admin:django_q_schedule_change", args=(sweep.pk,))).content.decode()
    assert 'name="func"' not in change  # read-only
    assert ops.get(reverse("admin:django_q_schedule_change", args=(hand_made.pk,))).status_code == 200
    assert 'name="func"' in ops.get(reverse("admin:django_q_schedule_change", args=(hand_made.pk,))).content.decode()
