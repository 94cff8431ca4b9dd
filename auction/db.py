"""What hand-written SQL needs from Django's database layer, for SQLite and MySQL alike."""

from datetime import datetime

from django.db import connection
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
    instance._state.db = connection.alias
    return instance


def datetime_from_db(value) -> datetime:
    return connection.ops.convert_datetimefield_value(value, None, connection)


def datetime_to_db(value: datetime):
    return connection.ops.adapt_datetimefield_value(value)
