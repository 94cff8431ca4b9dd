"""The reference for bench/bids.py: a bare Django Ninja endpoint doing one UPDATE.

A single-file Django project (no apps, no middleware, no auth) with one
operation, ``POST /bump``, that runs ``UPDATE bench_counter SET n = n + 1
WHERE id = 1`` on the benchmark's MariaDB database in autocommit: one hot
row, one statement, one round trip. bench/bids.py serves it with the same
gunicorn config, workers and threads as the app, so its throughput is what
the bid path is measured against ("about half of what a bare Ninja endpoint
doing one UPDATE reaches").

    gunicorn -c deploy/gunicorn.conf.py --pythonpath bench bare_app:application

Reads DATABASE_URL like the app. The table is made by bench/bids.py.
"""

import os

import dj_database_url
import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-bare-not-secret-" + "x" * 40,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
    DATABASES={"default": {**dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60), "OPTIONS": {"charset": "utf8mb4"}}},
    USE_TZ=True,
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection  # noqa: E402
from django.urls import path  # noqa: E402
from ninja import NinjaAPI, Schema  # noqa: E402

api = NinjaAPI(urls_namespace="bench-bare", docs_url=None, openapi_url=None)


class BumpOut(Schema):
    n: int


@api.post("/bump", response=BumpOut)
def bump(request):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE bench_counter SET n = n + 1 WHERE id = 1")
    return {"n": 1}


urlpatterns = [path("", api.urls)]
application = get_wsgi_application()
