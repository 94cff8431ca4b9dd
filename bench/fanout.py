"""Server CPU per delivered ``lot`` message, in one process, no network (bench/ only).

    .venv/bin/python bench/fanout.py --sockets 1000 --messages 50 --ws websockets-sansio --deflate on

N real uvicorn WebSocket protocol objects (the ``--ws`` implementation, the
client offering permessage-deflate as browsers and the ``websockets`` client
do) on fake transports that only count bytes, each running the project's real
ASGI application (Channels' ``LiveConsumer``); all watch one lot on the real
``live.hub``. Then the hub broadcasts M messages shaped like a lot's change,
and the process CPU (``time.process_time``) per socket per message is what the
hub, Channels and uvicorn cost to deliver one message, the lot's read
excepted (no database is touched). Robust on a busy box: CPU time, not wall time.
"""

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["LIVE_MAX_SOCKETS_PER_IP"] = "1000000"  # every fake socket comes from 127.0.0.1

LOT_ID = 7


class CountingTransport:
    """What uvicorn's protocols call on a transport; writes are counted, never sent."""

    def __init__(self) -> None:
        self.written = 0
        self.writes = 0
        self.closing = False
        self.protocol = None

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.writes += 1

    def writelines(self, chunks) -> None:
        for chunk in chunks:
            self.write(chunk)

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def get_protocol(self):
        return self.protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return True

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return False


def protocol_class(ws: str):
    if ws == "websockets":
        from uvicorn.protocols.websockets.websockets_impl import WebSocketProtocol

        return WebSocketProtocol
    if ws == "websockets-sansio":
        from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

        return WebSocketsSansIOProtocol
    from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

    return WSProtocol


def handshake(index: int, deflate_offered: bool) -> bytes:
    key = base64.b64encode(index.to_bytes(16, "big")).decode()
    lines = [
        "GET /ws/v1/live HTTP/1.1", "Host: bench.example", "Upgrade: websocket", "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
    ]
    if deflate_offered:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def lot_message(version: int) -> dict:
    from django.utils import timezone

    from live.hub import server_time

    now = timezone.localtime()
    return {
        "type": "lot",
        "server_time": server_time(),
        "lot": {
            "id": LOT_ID, "special_id": 3, "title": "清乾隆 粉彩花卉纹碗 bench lot", "cover": {"url": "/media/images/bowl.fill-400x400.jpg", "width": 400, "height": 400},
            "status": "bidding", "start_price": 100000, "current_price": 100000 + version * 1000,
            "bid_count": version, "ends_at": now, "next_min_bid": 101000 + version * 1000, "reserve_met": True,
        },
        "version": version,
        "previous_version": version - 1,
        "bids": [{"id": 1000 + version, "price": 100000 + version * 1000, "bidder": "b***3", "created_at": now}],
        "committed_at": now,
    }


async def announced(args, hub, sockets) -> dict:
    """--db-lots L: the sockets watch the database's newest L lots and announcements
    come at --rate a second for --seconds, so the hub's own reads (through its
    database thread, ``time.process_time`` counts every thread) are in the CPU per
    message. The lots do not change: each read's version is moved on by one, so
    every read is shown as a change would be."""
    import random

    from asgiref.sync import sync_to_async

    from auction.models import Bid, Lot

    def newest() -> dict[int, int]:
        lot_ids = list(Lot.objects.filter(is_published=True).order_by("-id").values_list("id", flat=True)[: args.db_lots])
        return {lot_id: Bid.objects.filter(lot_id=lot_id).order_by("-id").values_list("id", flat=True).first() or 0
                for lot_id in lot_ids}

    lots = await sync_to_async(newest, thread_sensitive=True)()
    lot_ids = list(lots)
    for index, socket in enumerate(sockets):
        lot_id = lot_ids[index % len(lot_ids)]
        await hub.watch(socket, lot_id)
        socket.lot_ids.add(lot_id)
    for lot_id, bid_id in lots.items():
        hub.snapshot_read(lot_id, version=1, newest_bid_id=bid_id)
    real_read = hub._read_lots

    async def read_as_changed(after):
        changes = await real_read(after)
        for lot_id, change in changes.items():
            change["version"] = (hub.feeds[lot_id].version or 0) + 1 if lot_id in hub.feeds else change["version"]
        return changes

    hub._read_lots = read_as_changed
    sent_before, started_cpu, started = hub.messages_sent, time.process_time(), time.monotonic()
    announcements = 0
    while time.monotonic() - started < args.seconds:
        due = int((time.monotonic() - started) * args.rate)
        while announcements < due:
            hub.deliver(f"lot:{random.choice(lot_ids)}", {"committed_at": time.time()})
            announcements += 1
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.5)  # the last reads
    cpu = time.process_time() - started_cpu
    delivered = hub.messages_sent - sent_before
    return {"ws": args.ws, "deflate": args.deflate, "sockets": len(sockets), "lots": len(lot_ids), "rate": args.rate,
            "seconds": args.seconds, "announcements": announcements, "delivered": delivered,
            "cpu_cores": round(cpu / (time.monotonic() - started), 3),
            "us_per_message_with_reads": round(cpu / max(delivered, 1) * 1e6, 1)}


def variant(hub, kind: str) -> None:
    """Experiments on how the hub hands a text to its sockets (the hub's own code is --send hub)."""

    async def inline(sockets, text):
        sent = 0
        for socket in sockets:
            coro = socket.send_text(text) if kind == "inline" else socket.base_send({"type": "websocket.send", "text": text})
            try:
                coro.send(None)
            except StopIteration:
                sent += 1
            except Exception:  # noqa: BLE001
                pass
            else:
                raise RuntimeError("a send suspended")
        hub.messages_sent += sent

    hub._send_all = inline


async def main_async(args) -> dict:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from live.hub import hub
    from live.sources import Source

    if args.send != "hub":
        variant(hub, args.send)
    # No subscription and no change log: the hub only fans out what this bench hands it.
    hub.source = Source(hub.deliver, hub.resync)
    config = Config(app="project.asgi:application", ws=args.ws, ws_per_message_deflate=args.deflate == "on",
                    lifespan="off", log_level="warning")
    config.load()
    state = ServerState()
    cls = protocol_class(args.ws)
    transports = []
    for index in range(args.sockets):
        transport = CountingTransport()
        protocol = cls(config=config, server_state=state, app_state={})
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(handshake(index, deflate_offered=True))
        transports.append(transport)
    for _ in range(200):
        if len(hub.joined) >= args.sockets:
            break
        await asyncio.sleep(0.01)
    sockets = list(hub.joined)
    assert len(sockets) == args.sockets, f"{len(sockets)} of {args.sockets} sockets joined"
    if args.db_lots:
        return await announced(args, hub, sockets)
    for socket in sockets:
        await hub.watch(socket, LOT_ID)
        socket.lot_ids.add(LOT_ID)
    feed = hub.feeds[LOT_ID]
    handshake_bytes = sum(transport.written for transport in transports)
    samples = []
    sent_before = hub.messages_sent
    for version in range(1, args.messages + 1):
        message = lot_message(version)
        started = time.process_time()
        await hub._broadcast(feed.watchers, message)
        for _ in range(3):
            await asyncio.sleep(0)  # whatever the sends left for the loop runs inside the timing
        samples.append((time.process_time() - started) / args.sockets * 1e6)
    delivered = hub.messages_sent - sent_before
    written = sum(transport.written for transport in transports) - handshake_bytes
    return {
        "ws": args.ws, "deflate": args.deflate, "send": args.send, "sockets": args.sockets, "messages": args.messages,
        "delivered": delivered,
        "us_per_message_median": round(statistics.median(samples), 1),
        "us_per_message_best": round(min(samples), 1),
        "bytes_per_message": round(written / max(delivered, 1), 1),
        "message_json_bytes": len(json.dumps(lot_message(1), default=str, ensure_ascii=False).encode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--ws", default="websockets-sansio", choices=("websockets", "websockets-sansio", "wsproto"))
    parser.add_argument("--db-lots", type=int, default=0, help="watch the database's newest L lots, announcements at --rate")
    parser.add_argument("--rate", type=float, default=50, help="announcements a second (with --db-lots)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--send", default="hub", choices=("hub", "inline", "direct"))
    parser.add_argument("--deflate", default="off", choices=("on", "off"))
    args = parser.parse_args()
    import django

    django.setup()
    print(json.dumps(asyncio.run(main_async(args))))


if __name__ == "__main__":
    main()
