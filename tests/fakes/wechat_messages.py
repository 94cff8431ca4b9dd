"""A local stand-in for WeChat's ``stable_token`` and ``subscribeMessage.send``.

It speaks their protocol (HTTP 200 with an ``errcode`` body on refusal) and
checks what WeChat checks: the access token (40001 unknown, 42001 expired),
the template id (40037) and its keys, each value's rules by key type (47003),
and the user's subscriptions per template (43101 when none is left, and one
is used by each message sent).

Run it by hand to watch messages arrive under ``make run`` (README,
"Notifications")::

    .venv/bin/python -m tests.fakes.wechat_messages --port 18801
"""

import argparse
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from urllib.parse import parse_qs, urlparse

_LIMITS = {"thing": 20, "letter": 32, "symbol": 5, "phone_number": 17, "car_number": 8, "phrase": 5}
_RULES = {
    "number": re.compile(r"^[0-9]{1,32}(\.[0-9]+)?$"),
    "letter": re.compile(r"^[A-Za-z]{1,32}$"),
    "character_string": re.compile(r"^[0-9A-Za-z!-/:-@\[-`{-~]{1,32}$"),
    "amount": re.compile(r"^[¥￥$]?(?=(?:\D*\d){1,10}\D*$)[0-9]+(\.[0-9]+)?元?$"),
    "time": re.compile(r"^((\d{4}年\d{1,2}月\d{1,2}日|\d{4}-\d{2}-\d{2}) )?\d{1,2}:\d{2}(:\d{2})?( ?~ ?.+)?$"),
    "date": re.compile(r"^\d{4}年\d{1,2}月\d{1,2}日( \d{1,2}:\d{2})?$"),
}


def value_problem(key: str, value) -> str:
    """Why WeChat would refuse this value for this key, or ''."""
    if not isinstance(value, str) or not value:
        return "empty"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "control character"
    kind = re.sub(r"\d+$", "", key)
    if kind in _LIMITS and len(value) > _LIMITS[kind]:
        return f"longer than {_LIMITS[kind]}"
    if kind in _RULES and not _RULES[kind].match(value):
        return f"not a {kind}"
    return ""


@dataclass
class FakeWechatMessages:
    appid: str = "wx-test-appid"
    secret: str = "wx-test-secret"
    # template id -> its keys; empty: any template id, any keys (typed by name).
    templates: dict[str, set[str]] = field(default_factory=dict)
    # (openid, template id) -> messages the user allowed; -1 for every pair: unlimited.
    credits: dict[tuple[str, str], int] = field(default_factory=dict)
    default_credits: int = 0
    expires_in: int = 7200
    # The next this many sends answer HTTP 503 (WeChat down); -1: all of them.
    down_for: int = 0
    echo: bool = False
    token_requests: list[dict] = field(default_factory=list)
    send_requests: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (epoch)
    server: ThreadingHTTPServer | None = None
    _numbers: count = field(default_factory=lambda: count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def grant(self, openid: str, template_id: str, n: int = 1) -> None:
        """The user tapped "accept" n times for this template."""
        with self._lock:
            self.credits[(openid, template_id)] = self.credits.get((openid, template_id), 0) + n

    def expire_tokens(self) -> None:
        """Every token handed out so far lapses now (WeChat answers 42001)."""
        with self._lock:
            for token in self.tokens:
                self.tokens[token] = 0.0

    def _current(self) -> str | None:
        now = time.time()
        live = [token for token, expiry in self.tokens.items() if expiry > now]
        return live[-1] if live else None

    def stable_token(self, body: dict) -> dict:
        self.token_requests.append({key: value for key, value in body.items() if key != "secret"})
        if body.get("appid") != self.appid or body.get("secret") != self.secret:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if body.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        with self._lock:
            token = None if body.get("force_refresh") else self._current()
            if token is None:
                token = f"fake-token-{next(self._numbers)}-{time.time_ns()}"
                self.tokens[token] = time.time() + self.expires_in
            return {"access_token": token, "expires_in": max(int(self.tokens[token] - time.time()), 1)}

    def send(self, token: str, body: dict) -> tuple[int, dict]:
        self.send_requests.append({"token_ok": token in self.tokens, "body": body})
        with self._lock:
            if self.down_for:
                self.down_for -= 1 if self.down_for > 0 else 0
                return 503, {}
            if token not in self.tokens:
                return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            if self.tokens[token] <= time.time():
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            template_id, openid, data = body.get("template_id"), body.get("touser"), body.get("data")
            if self.templates and template_id not in self.templates:
                return 200, {"errcode": 40037, "errmsg": "invalid template_id"}
            if not isinstance(data, dict) or not data:
                return 200, {"errcode": 47003, "errmsg": "argument invalid! data is empty"}
            if self.templates and set(data) != self.templates[template_id]:
                return 200, {"errcode": 47003, "errmsg": f"argument invalid! data keys {sorted(data)}"}
            for key, item in data.items():
                problem = value_problem(key, item.get("value") if isinstance(item, dict) else None)
                if problem:
                    return 200, {"errcode": 47003, "errmsg": f"argument invalid! data.{key}.value {problem}"}
            left = self.credits.get((openid, template_id), self.default_credits)
            if left == 0:
                return 200, {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
            if left > 0:
                self.credits[(openid, template_id)] = left - 1
            message = {"touser": openid, "template_id": template_id, "page": body.get("page"),
                       "data": {key: item["value"] for key, item in data.items()},
                       "miniprogram_state": body.get("miniprogram_state"), "lang": body.get("lang")}
            self.messages.append(message)
        if self.echo:
            print(json.dumps(message, ensure_ascii=False), flush=True)
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": len(self.messages)}

    def start(self, port: int = 0) -> "FakeWechatMessages":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                url = urlparse(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                except ValueError:
                    self._send(200, {"errcode": 47001, "errmsg": "data format error"})
                    return
                if url.path == "/cgi-bin/stable_token":
                    self._send(200, fake.stable_token(body))
                elif url.path == "/cgi-bin/message/subscribe/send":
                    self._send(*fake.send(query.get("access_token", ""), body))
                else:
                    self._send(404, {"errcode": 404, "errmsg": "not found"})

            def do_GET(self):
                if urlparse(self.path).path == "/fake/messages":
                    self._send(200, {"messages": fake.messages})
                else:
                    self._send(404, {"errcode": 404, "errmsg": "not found"})

            def _send(self, status: int, answer: dict) -> None:
                body = json.dumps(answer, ensure_ascii=False).encode() if status == 200 or answer else b"<html>503</html>"
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18801)
    parser.add_argument("--appid", default="wx-demo-appid")
    parser.add_argument("--secret", default="wx-demo-secret")
    parser.add_argument("--credits", type=int, default=-1, help="messages each user allows per template (-1: unlimited)")
    args = parser.parse_args()
    fake = FakeWechatMessages(appid=args.appid, secret=args.secret, default_credits=args.credits, echo=True).start(args.port)
    print(f"fake WeChat messages on {fake.base_url} (appid {args.appid}); messages print here and at {fake.base_url}/fake/messages", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
