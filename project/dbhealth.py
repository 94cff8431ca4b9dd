"""A persistent database connection that sat idle is pinged before a request uses it.

With CONN_MAX_AGE a worker keeps its connection between requests. When the
database restarts while a worker is idle, that connection is dead, and the
next request would find out by failing (503, api/errors.py) before Django
drops it. Django's CONN_HEALTH_CHECKS would ping before every request: a
round trip on each bid of a hot lot. So only a connection idle for longer than
``AUCTION_DB_IDLE_PING_SECONDS`` gets Django's health check (one ping on first
use in the request, reconnecting if it fails); back-to-back requests pay
nothing, and the first request after an outage is answered.
"""

import time

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import DEFAULT_DB_ALIAS, connections


def _check_if_idle(**kwargs) -> None:
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.connection is None:
        return
    idle = time.monotonic() - getattr(connection, "idle_since", 0.0)
    connection.health_check_enabled = connection.settings_dict["CONN_HEALTH_CHECKS"] or idle > settings.AUCTION_DB_IDLE_PING_SECONDS


def _note_idle(**kwargs) -> None:
    connections[DEFAULT_DB_ALIAS].idle_since = time.monotonic()


def connect() -> None:
    # After Django's own close_old_connections (connected when django.db is
    # imported), which resets the connection's health check for each request.
    request_started.connect(_check_if_idle, dispatch_uid="project.dbhealth.check_if_idle")
    request_finished.connect(_note_idle, dispatch_uid="project.dbhealth.note_idle")
