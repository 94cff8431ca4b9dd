"""One schedule per name, enforced by the database.

jobs/schedules.py writes every schedule by name (``update_or_create``), from
any process: each job cluster at its start, the web processes when a lot's
end is published or moved, the clusters when orders are made. Django-Q2's
``Schedule.name`` is not unique, and under READ COMMITTED nothing locks a row
that does not exist yet, so two processes writing one new name at once (two
clusters started together, say) both inserted it; from then on every write of
that name failed with MultipleObjectsReturned, the starting cluster among
them. With this index the second insert waits for the first to commit, fails,
and ``update_or_create`` updates the row the first made instead.
"""

from django.db import migrations

INDEX = "django_q_schedule_name_unique"


def one_per_name(apps, schema_editor) -> None:
    # The newest write of a name is the one its writer meant; older copies go.
    Schedule = apps.get_model("django_q", "Schedule")
    kept: set[str] = set()
    duplicates = []
    for pk, name in Schedule.objects.exclude(name=None).order_by("name", "-pk").values_list("pk", "name"):
        if name in kept:
            duplicates.append(pk)
        kept.add(name)
    Schedule.objects.filter(pk__in=duplicates).delete()
    schema_editor.execute(f"CREATE UNIQUE INDEX {INDEX} ON django_q_schedule (name)")


def names_may_repeat(apps, schema_editor) -> None:
    on_table = " ON django_q_schedule" if schema_editor.connection.vendor == "mysql" else ""
    schema_editor.execute(f"DROP INDEX {INDEX}{on_table}")


class Migration(migrations.Migration):
    # MySQL cannot run DDL inside a transaction (and would commit it anyway).
    atomic = False

    dependencies = [
        ("auction", "0015_budget_labels"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(one_per_name, names_may_repeat)]
