"""What an ASGI process answers before Django: ``GET /ws/health`` (what it holds:
ops and monitors read it) and ``GET /ws/metrics`` (its Prometheus metrics,
project/metrics.py). nginx routes /ws/ to the socket processes, so these are
how each one is asked; ``/metrics`` there is the web workers'."""

import json

from django.conf import settings

from live.hub import hub
from project import metrics

HEALTH_PATH = "/ws/health"
METRICS_PATH = "/ws/metrics"


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def _client_ip(scope) -> str:
    # As the consumer takes it (live/consumer.py): nginx's X-Real-IP when configured.
    ip_header = settings.LIVE_CLIENT_IP_HEADER
    forwarded = _header(scope, ip_header.encode()) if ip_header else ""
    return forwarded.split(",")[-1].strip() if forwarded else (scope.get("client") or ("",))[0]


async def _send(send, status: int, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def with_health(application):
    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            health = hub.health()
            status = 200 if health["source_healthy"] is not False else 503
            body = json.dumps({"status": "ok" if status == 200 else "degraded", **health}).encode()
            await _send(send, status, body, b"application/json")
            return
        if scope["type"] == "http" and scope["path"] == METRICS_PATH:
            if not metrics.may_read(address=_client_ip(scope), authorization=_header(scope, b"authorization")):
                await _send(send, 403, b"Forbidden: not from an allowed address, and no valid token.\n", b"text/plain")
                return
            # This process's own (its sockets, its requests); the jobs' gauges
            # are the web's /metrics, read from the database.
            await _send(send, 200, metrics.exposition(jobs=False), metrics.CONTENT_TYPE_LATEST.encode())
            return
        await application(scope, receive, send)

    return app
