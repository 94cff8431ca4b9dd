"""What hand-written SQL needs from Django's database layer, for SQLite and MySQL alike."""

from datetime import datetime

from django.db import connection
from django.db.models import DEFERRED, Model


def loaded(model: type[Model], **values) -> Model:
    """An instance as ``.only(*values)`` would load it: other fields deferred,
    fetched on first access."""
    fields = model._meta.concrete_fields
    return model.from_db(connection.alias, None, [values.get(field.attname, DEFERRED) for field in fields])


def datetime_from_db(value) -> datetime:
    return connection.ops.convert_datetimefield_value(value, None, connection)


def datetime_to_db(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)
