"""A local stand-in for WeChat's jscode2session, speaking its real protocol.

It answers HTTP 200 with an ``errcode`` body on refusal, as WeChat does, so
a client that trusts the status code alone fails these tests.
"""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class FakeWechat:
    appid: str = "wx-test-appid"
    secret: str = "wx-test-secret"
    # code -> (openid, unionid); any other code is refused with 40029.
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Set to an int to answer every request with that raw HTTP status and an HTML body.
    broken_status: int | None = None
    requests: list[dict] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, query: dict[str, str]) -> dict:
        if query.get("appid") != self.appid or query.get("secret") != self.secret:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        code = query.get("js_code", "")
        if code in self.sessions:
            openid, unionid = self.sessions.pop(code)  # a code is good once
            body = {"openid": openid, "session_key": "c2Vzc2lvbi1rZXk="}
            if unionid:
                body["unionid"] = unionid
            return body
        return {"errcode": 40029, "errmsg": "invalid code, rid: 0"}

    def start(self) -> "FakeWechat":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                fake.requests.append({"path": url.path, "query": query})
                if fake.broken_status is not None:
                    self._send(fake.broken_status, b"<html>502 Bad Gateway</html>", "text/html")
                elif url.path != "/sns/jscode2session":
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, json.dumps(fake.answer(query)).encode(), "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
