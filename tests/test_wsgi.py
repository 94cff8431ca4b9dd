"""The WSGI application gunicorn serves: the API on its lean handler, the site on the full one."""

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from project.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    # As Django's test client does: the handler would otherwise close the
    # connection that holds the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def serve(path: str, *, method: str = "GET", body: dict | None = None) -> tuple[int, dict, bytes]:
    """One request through the real WSGI callable, as gunicorn would make it."""
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "testserver",
        "SERVER_PORT": "80", "HTTP_HOST": "testserver", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data)), "CONTENT_TYPE": "application/json",
        "wsgi.errors": io.StringIO(),
    }
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

    content = b"".join(application(environ, start_response))
    return answer["status"], answer["headers"], content


def test_the_api_answers_without_cookie_machinery():
    status, headers, content = serve("/api/v1/specials")
    assert status == 200 and "items" in json.loads(content)
    assert "X-Frame-Options" not in headers and "Cookie" not in headers.get("Vary", "")


def test_the_api_keeps_its_contract_errors_on_the_lean_handler():
    status, _, content = serve("/api/v1/no-such-thing")
    assert status == 404 and json.loads(content)["code"] == "not_found"
    status, _, content = serve("/api/v1/lots/1/bids", method="POST", body={"price": 100})
    assert status == 401 and json.loads(content)["code"] == "unauthenticated"


def test_api_answers_carry_their_length_and_a_trailing_slash_is_a_contract_404():
    status, headers, content = serve("/api/v1/specials")
    assert status == 200 and int(headers["Content-Length"]) == len(content)
    status, headers, content = serve("/api/v1/specials/")
    assert status == 404 and json.loads(content)["code"] == "not_found"
    assert int(headers["Content-Length"]) == len(content)
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_site_keeps_sessions_csrf_and_frame_options():
    status, headers, _ = serve("/admin/login/")
    assert status == 200
    assert headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in headers.get("Set-Cookie", "") or "Cookie" in headers.get("Vary", "")
