"""The shipped deploy/nginx.conf refuses what never should reach Django: an
unknown Host (the connection closes, 444), an API body over its limit (413)
and an over-long URL (414), the last two in the contract's JSON.

It runs the real nginx on loopback with the file as shipped, changed only
where a test must (tests/stack.py): a loopback port for 443 and 80 (no TLS),
and a stand-in upstream that counts what reached it.
"""

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.servers import closed_port
from tests.stack import SHIPPED_NGINX_CONF, Nginx, free_port, nginx_binary, nginx_site_for_test

HOST = "auction.example.com"

if nginx_binary() is None:
    if os.environ.get("CI"):
        pytest.fail("nginx is not installed (scripts/system-packages.sh nginx)", pytrace=False)
    pytest.skip("nginx is not installed: scripts/system-packages.sh nginx", allow_module_level=True)


class Upstream:
    """What gunicorn would be: answers 200 and records each request it got."""

    def __init__(self):
        self.seen: list[tuple[str, str, int]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                upstream.seen.append((self.command, self.path, length))
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nginx")
    upstream = Upstream()
    port, redirect_port = free_port(), free_port()
    site = nginx_site_for_test(SHIPPED_NGINX_CONF.read_text(), port=port, redirect_port=redirect_port,
                               web=[f"127.0.0.1:{upstream.port}"], live=[f"127.0.0.1:{closed_port()}"])
    nginx = Nginx(folder, site, port=port)
    try:
        yield {"url": nginx.url, "port": port, "upstream": upstream}
    finally:
        nginx.stop()
        upstream.stop()


def client(front) -> httpx.Client:
    return httpx.Client(base_url=front["url"], headers={"Host": HOST}, trust_env=False, timeout=10)


def assert_contract(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"code", "message", "detail"} and body["code"] == code, body


def test_our_host_reaches_the_app(front):
    with client(front) as http:
        assert http.get("/api/v1/specials").status_code == 200
    assert ("GET", "/api/v1/specials", 0) in front["upstream"].seen


def test_an_unknown_host_is_closed_without_an_answer(front):
    with socket.create_connection(("127.0.0.1", front["port"]), timeout=5) as sock:
        sock.sendall(b"GET /api/v1/specials HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
        assert sock.recv(1024) == b""  # 444: no status line at all
    assert not any(path == "/api/v1/specials" and method == "GET" for method, path, _ in front["upstream"].seen[1:])


def test_an_api_body_over_64k_is_refused_by_nginx_in_the_contracts_shape(front):
    seen = len(front["upstream"].seen)
    with client(front) as http:
        assert_contract(http.post("/api/v1/deposits", content=b"x" * (65 * 1024)), 413, "payload_too_large")
        assert http.post("/api/v1/deposits", content=b"x" * (60 * 1024)).status_code == 200
    assert [length for _, _, length in front["upstream"].seen[seen:]] == [60 * 1024]


def test_admin_uploads_keep_their_25_megabytes(front):
    with client(front) as http:
        assert http.post("/admin/images/multiple/add/", content=b"x" * (2 * 1024 * 1024)).status_code == 200
        assert http.post("/admin/images/multiple/add/", content=b"x" * (26 * 1024 * 1024)).status_code == 413


def test_an_over_long_url_is_a_contract_414(front):
    with client(front) as http:
        assert_contract(http.get("/api/v1/specials?q=" + "a" * 10_000), 414, "uri_too_long")
        assert_contract(http.get("/api/v1/specials", headers={"X-Big": "b" * 10_000}), 400, "bad_request")


def test_the_probes_reach_the_app_from_anywhere(front):
    # given: a balancer on another address of the machine (loopback, but not 127.0.0.1)
    seen = len(front["upstream"].seen)
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=front["url"], headers={"Host": HOST}, trust_env=False, timeout=10, transport=transport) as http:
        # when / then
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200
    assert [path for _, path, _ in front["upstream"].seen[seen:]] == ["/healthz", "/readyz"]


def test_metrics_are_for_the_internal_networks_only(front):
    seen = len(front["upstream"].seen)
    # given: a client whose address is in none of the allowed networks (the
    # loopback range, outside the one loopback address allowed)
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=front["url"], headers={"Host": HOST}, trust_env=False, timeout=10, transport=transport) as http:
        # when / then: refused by nginx, never reaching the app
        assert http.get("/metrics").status_code == 403
        assert http.get("/ws/metrics").status_code == 403
    assert front["upstream"].seen[seen:] == []
    # and from this machine itself, the scrape reaches the workers
    with client(front) as http:
        assert http.get("/metrics").status_code == 200
    assert front["upstream"].seen[seen:] == [("GET", "/metrics", 0)]
