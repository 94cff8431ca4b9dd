"""The watchers bench's lean clients: a WebSocket client and an HTTP client that take
little of the two cores the server shares with them (bench/watchers.py)."""

import asyncio
import json


class LeanSocket(asyncio.Protocol):
    """A `websockets` client on its Sans-I/O protocol (handshake, framing, answering the
    server's pings) under a bare asyncio Protocol: the harness's own CPU per message
    is the smaller part of this box then. At W = 5,000 its asyncio client cost ~65 µs
    of CPU a message (a future and a queue per recv), this ~45, the kernel's ~15 of
    it included. A frame's text is handed to ``on_text`` as it is parsed."""

    def __init__(self, url: str, on_text):
        from websockets.client import ClientProtocol
        from websockets.uri import parse_uri

        self.protocol = ClientProtocol(parse_uri(url))
        self.on_text = on_text
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closing = False
        self.transport = None

    @classmethod
    async def open(cls, url: str, on_text) -> "LeanSocket":
        from websockets.uri import parse_uri

        uri = parse_uri(url)
        loop = asyncio.get_running_loop()
        _, socket = await asyncio.wait_for(loop.create_connection(lambda: cls(url, on_text), uri.host, uri.port), 60)
        await asyncio.wait_for(socket.opened, 60)
        return socket

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.protocol.send_request(self.protocol.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        from websockets.frames import Opcode
        from websockets.http11 import Response

        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                if self.protocol.handshake_exc is not None:
                    self.opened.set_exception(self.protocol.handshake_exc)
                else:
                    self.opened.set_result(None)
            elif event.opcode is Opcode.TEXT:
                self.on_text(event.data)
        self.flush()  # pongs to the server's pings, the close handshake

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)
            elif self.transport.can_write_eof():
                self.transport.write_eof()

    def send_text(self, text: str) -> None:
        self.protocol.send_text(text.encode())
        self.flush()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)


class LeanHTTP:
    """Keep-alive HTTP/1.1 connections to nginx, a pool of them, for the bidder: httpx
    took ~2.4 ms of CPU a bid here (a fifth of a core at 100 bids/s, on the box the
    server shares), this ~0.5 ms. Only what nginx answers: Content-Length or chunked
    bodies."""

    def __init__(self, base: str, size: int):
        from urllib.parse import urlsplit

        parts = urlsplit(base)
        self.host, self.port, self.prefix = parts.hostname, parts.port or 80, parts.path.rstrip("/")
        self.idle: list = []
        self.slots = asyncio.Semaphore(size)

    async def post_json(self, path: str, body: dict, token: str) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        head = (f"POST {self.prefix}{path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode()
        async with self.slots:
            reader, writer = self.idle.pop() if self.idle else await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(head + payload)
                status, answer, keep = await asyncio.wait_for(self._read(reader), 30)
            except BaseException:
                writer.close()
                raise
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return status, answer

    @staticmethod
    async def _read(reader) -> tuple[int, bytes, bool]:
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if headers.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            answer = b"".join(chunk[:-2] for chunk in chunks)
        else:
            answer = await reader.readexactly(int(headers.get("content-length", 0)))
        return status, answer, headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
