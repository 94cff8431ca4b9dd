"""``GET /ws/health``: what this ASGI process holds (nginx routes /ws/ here; ops and monitors read it)."""

import json

from live.hub import hub

HEALTH_PATH = "/ws/health"


def with_health(application):
    async def app(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == HEALTH_PATH:
            health = hub.health()
            status = 200 if health["source_healthy"] is not False else 503
            body = json.dumps({"status": "ok" if status == 200 else "degraded", **health}).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await application(scope, receive, send)

    return app
