"""HTTP and WebSockets from one ASGI application (uvicorn; deploy/auction-live@.service).

The embedded default serves everything from it (``make run``); production
sends only ``/ws/`` here and keeps bids on the WSGI workers (deploy/nginx.conf).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (after Django is set up)
from django.conf import settings  # noqa: E402

from live.health import with_health  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402

http_application = django_application
if settings.DEBUG:
    # runserver's static files for the admin, now that this serves instead of it.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_application = ASGIStaticFilesHandler(django_application)

application = ProtocolTypeRouter(
    {"http": with_health(http_application), "websocket": URLRouter(websocket_urlpatterns)}
)

from project.gc_tuning import tune_after_load  # noqa: E402

tune_after_load()
