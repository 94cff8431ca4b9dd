"""What hand-written SQL needs from Django's database layer, for SQLite and MySQL alike."""

from datetime import UTC, datetime

from django.db import DEFAULT_DB_ALIAS
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Model
from django.db.models.base import ModelState


def loaded(model: type[Model], **values) -> Model:
    """An instance as ``.only(*values)`` would load it: other fields deferred,
    fetched on first access.

    Built without ``Model.__init__``, which walks every field of the model and
    costs the bid path about 5 % of its CPU; what is not in ``values`` is
    simply absent, which is how Django marks a deferred field.
    """
    instance = model.__new__(model)
    instance.__dict__.update(values)
    instance._state = ModelState()
    instance._state.adding = False
    # The project has one database (settings.DATABASES); naming it saves the
    # bid path a lookup of the thread's connection per row.
    instance._state.db = DEFAULT_DB_ALIAS
    return instance


# With USE_TZ and no TIME_ZONE of the database's own (project/settings.py),
# Django keeps datetimes as UTC without an offset on SQLite and MySQL alike.
# The bid path converts four of them per bid, and going through
# ``connection.ops`` (a lookup of the thread's connection each time) cost it
# 8 % of its CPU; tests/test_db_helpers.py checks these give what Django's
# adapters give.


def datetime_from_db(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite, where a column's type was not declared
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def datetime_to_db(value: datetime) -> str:
    return str(value.astimezone(UTC).replace(tzinfo=None))


def collation_from_database(sender, connection: BaseDatabaseWrapper, **kwargs) -> None:
    """A MySQL connection speaks its database's collation (``connection_created``).

    ``CREATE DATABASE auction CHARACTER SET utf8mb4`` takes the server's
    default collation (utf8mb4_general_ci on MariaDB 10.11, utf8mb4_0900_ai_ci
    on MySQL 8.4), and every table inherits it. The driver's ``SET NAMES``
    gives the connection the character set's default instead, which is not
    always the database's, and where they differ Wagtail's migrations compare
    a column with a CAST(... AS char) and fail with "Illegal mix of
    collations". One statement per new connection (they live CONN_MAX_AGE).
    """
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        # Only a utf8mb4 one: another character set is refused by a check
        # (auction/checks.py), and the connection must keep speaking utf8mb4.
        cursor.execute(
            "SET collation_connection = IF(@@character_set_database = 'utf8mb4', @@collation_database, @@collation_connection)"
        )
