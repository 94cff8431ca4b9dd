"""``/ws/v1/live``: one socket, many lots (CONTRACT "Live updates (WebSocket)").

Bids are never taken here (they go over HTTP, under the lot's lock); the
socket only watches. A token in ``Authorization: Bearer`` is checked by the
same service as the HTTP API and adds the caller's own view (``my``) and
personal events. An admin session (the Wagtail login cookie, sent by the
browser from a page of this site) makes a staff socket, which is also told
how many watch each of its lots (``watchers``, live/watchers.py).
"""

import json
import time
from urllib.parse import urlsplit

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.http.cookie import parse_cookie

from live import reads
from live.hub import dumps, hub, server_time
from live.reads import Origin

# Close codes (4000-4999 are the application's): the client tells why from the code.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_THROTTLED = 4429
CLOSE_IDLE = 4408


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def _admin_session_key(scope) -> str | None:
    """The session cookie, only when the page that opened the socket is this site's.

    A browser sends cookies with a WebSocket handshake whatever page opens it,
    and the same-origin policy does not cover sockets: without this check any
    site a staff member visits could read staff data through their cookie.
    """
    key = parse_cookie(_header(scope, b"cookie")).get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    origin = _header(scope, b"origin")
    if not origin:
        return None
    if urlsplit(origin).netloc != _header(scope, b"host") and origin not in settings.CSRF_TRUSTED_ORIGINS:
        return None
    return key


class LiveConsumer(AsyncWebsocketConsumer):
    user = None
    user_id = None
    admitted = False
    staff = False

    async def connect(self) -> None:
        self.lot_ids: set[int] = set()
        self.last_heard = time.monotonic()
        scope = self.scope
        ip_header = settings.LIVE_CLIENT_IP_HEADER
        forwarded = _header(scope, ip_header.encode()) if ip_header else ""
        self.client_ip = forwarded.split(",")[-1].strip() if forwarded else (scope.get("client") or ("?",))[0]
        scheme = "https" if scope.get("scheme") == "wss" or _header(scope, b"x-forwarded-proto") == "https" else "http"
        self.origin = Origin(scheme=scheme, host=_header(scope, b"host") or "localhost")
        await self.accept()
        authorization = _header(scope, b"authorization")
        if authorization:
            method, _, raw_token = authorization.partition(" ")
            user = None
            if method.lower() == "bearer" and raw_token.strip():
                user = await sync_to_async(reads.user_for_token, thread_sensitive=True)(raw_token.strip())
            if user is None:
                # As on HTTP: a token sent but no good is refused, never quietly anonymous.
                await self.refuse("unauthenticated", "The token is not valid; log in again.", CLOSE_UNAUTHENTICATED)
                return
            self.user, self.user_id = user, user.pk
        session_key = _admin_session_key(scope)
        if session_key:
            # Staff only from an admin session: a bearer token, even a staff member's, never.
            self.staff = await sync_to_async(reads.is_staff_session, thread_sensitive=True)(session_key)
        over = hub.admit(self)
        if over:
            await self.refuse("throttled", over, CLOSE_THROTTLED)
            return
        self.admitted = True
        await hub.join(self)

    async def dispatch(self, message) -> None:
        """As Channels' own, without its ``close_old_connections`` before every message.

        That call is a hop to the process's one sync thread per message, a ping
        included, and the same thread does the hub's lot reads: a minute's pings
        from 2,500 sockets queued ahead of the reads held the lots' messages back
        by seconds (bench/watchers.py, commit -> written p99 2-3 s). Every read a
        socket makes goes through ``live.reads``, which renews its connection itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def refuse(self, code: str, message: str, close_code: int) -> None:
        await self.send_message("error", code=code, message=message)
        await self.close(code=close_code)

    async def disconnect(self, code) -> None:
        await hub.leave(self, self.lot_ids, admitted=self.admitted)
        self.lot_ids = set()

    async def close_idle(self) -> None:
        """Called by the hub's sweep (one task for all sockets, not one each)."""
        idle = settings.LIVE_IDLE_SECONDS
        await self.send_message("error", code="idle", message=f"Nothing heard for {idle:.0f}s: closing.")
        await self.close(code=CLOSE_IDLE)

    async def send_text(self, text: str) -> None:
        await self.send(text_data=text)

    async def send_message(self, kind: str, **body) -> None:
        await self.send_text(dumps({"type": kind, "server_time": server_time(), **body}))

    async def receive(self, text_data=None, bytes_data=None) -> None:
        self.last_heard = time.monotonic()
        try:
            message = json.loads(text_data if text_data is not None else bytes_data)
        except (ValueError, TypeError):
            await self.bad("Send JSON: {\"op\": \"watch\" | \"unwatch\" | \"ping\", ...}.")
            return
        op = message.get("op") if isinstance(message, dict) else None
        if op == "ping":
            await self.send_message("pong")
        elif op in ("watch", "unwatch"):
            lot_ids = message.get("lot_ids")
            if (
                not isinstance(lot_ids, list)
                or not lot_ids
                or not all(type(lot_id) is int and 0 < lot_id < 2**63 for lot_id in lot_ids)
            ):
                await self.bad("lot_ids must be a non-empty list of lot ids.")
                return
            if op == "watch":
                await self.watch(list(dict.fromkeys(lot_ids)))
            else:
                dropped = self.lot_ids & set(lot_ids)
                self.lot_ids -= dropped
                await hub.unwatch(self, dropped)
        else:
            await self.bad("Unknown op: use watch, unwatch or ping.")

    async def bad(self, text: str, **detail) -> None:
        await self.send_message("error", code="validation_error", message=text, **detail)

    async def watch(self, lot_ids: list[int]) -> None:
        limit = settings.LIVE_MAX_LOTS_PER_SOCKET
        if len(self.lot_ids | set(lot_ids)) > limit:
            await self.bad(f"One socket watches at most {limit} lots.")
            return
        read = sync_to_async(reads.snapshot, thread_sensitive=True)
        for lot_id in lot_ids:
            feed = await hub.watch(self, lot_id)
            self.lot_ids.add(lot_id)
            found = await read(lot_id, self.user, self.origin)
            if found is None:
                self.lot_ids.discard(lot_id)
                await hub.unwatch(self, {lot_id})
                await self.send_message("error", code="not_found", message=f"No lot {lot_id}.", lot_id=lot_id)
                continue
            body, version, newest_bid_id = found
            hub.snapshot_read(lot_id, version=version, newest_bid_id=newest_bid_id)
            del feed
            await self.send_message("snapshot", lot=body, version=version)
            hub.snapshot_sent(self, lot_id)
