"""Two processes writing one new schedule at once make one schedule, which runs once
(jobs/schedules.py; the unique index of auction/migrations/0013_schedule_names_unique.py)."""

import threading
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone, translation
from django_q.models import Schedule

from jobs import schedules

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_writers_of_one_new_name_make_one_schedule():
    # given a first writer that has written a new instant's schedule and not committed yet
    when = timezone.now() + timedelta(minutes=5)
    written, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                schedules.lot_end(1, when)
                written.set()
                release.wait(10)
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)
        finally:
            connection.close()

    def second() -> None:
        try:
            schedules.lot_end(2, when)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)
        finally:
            connection.close()

    writer = threading.Thread(target=first)
    writer.start()
    assert written.wait(10)
    # when a second process writes the same instant
    other = threading.Thread(target=second)
    other.start()
    other.join(0.5)
    # then it waits for the first (before the index it inserted a second row at once)
    assert other.is_alive(), "the second writer did not wait for the first"
    release.set()
    writer.join(10)
    other.join(30)
    assert not errors, errors
    # and there is one schedule of that name, which the second writer updated
    assert Schedule.objects.filter(name=f"lots end at {when.isoformat()}").count() == 1
    schedules.periodic()
    assert Schedule.objects.filter(name=schedules.SWEEP_NAME).count() == 1


def test_a_second_schedule_of_one_name_is_refused():
    schedules.sweep_every_minute()
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(name=schedules.SWEEP_NAME, func="jobs.tasks.sweep", schedule_type=Schedule.MINUTES)


def test_the_admin_says_a_name_is_taken_instead_of_failing():
    from jobs.admin import ScheduleForm

    schedules.sweep_every_minute()
    form = ScheduleForm(data={"name": schedules.SWEEP_NAME, "func": "jobs.tasks.sweep", "schedule_type": Schedule.DAILY})
    with translation.override("en"):
        assert not form.is_valid()
        assert form.errors["name"] == ["Another schedule already has this name."]
    mine = Schedule.objects.create(name="a report", func="jobs.tasks.sweep", schedule_type=Schedule.DAILY)
    renamed = ScheduleForm(data={"name": "a report"}, instance=mine)
    renamed.is_valid()
    assert "name" not in renamed.errors
