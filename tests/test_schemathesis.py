"""Schemathesis over /api/v1/openapi.json, against the real server (issue 12, item 10).

Every operation of the document, with a sandbox login's token, fed data that
fits its schema and data that does not, over HTTP to the server this
configuration runs in production's shape (runserver on the embedded default,
gunicorn on MariaDB + Redis; DJANGO_DEBUG=0): no answer may be a 5xx, and
every answer must be one the document lists for that operation, with the
declared content type, headers and body schema.

Bounded: ``SCHEMATHESIS_MAX_EXAMPLES`` (default 20) examples per operation and
kind of data, derandomized so a CI run is repeatable (set
``SCHEMATHESIS_SEED_RANDOM=1`` to explore). Prints how many requests got
which status.
"""

import collections
import os
import signal
import sys
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import requests
import schemathesis
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from wagtail.models import Collection

from auction.models import Order, Payment
from tests.factories import CouponFactory, ImageFactory, LotFactory, SpecialFactory
from tests.fakes.wechat_login import FakeWechat
from tests.test_e2e_cluster import ENV_DROPPED, Stack, _free_port, _spawn, _test_database_url, _wait_for

pytestmark = pytest.mark.django_db(transaction=True)

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "20"))
DERANDOMIZE = os.environ.get("SCHEMATHESIS_SEED_RANDOM", "") != "1"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Not negative_data_rejection: it counts an unknown query parameter as invalid
# input, and the contract ignores unknown fields. What it guards (wrong types
# refused) is tests/test_api_edges.py's; it found bodies like `true` accepted.
ADDRESS = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}


@pytest.fixture
def wechat():
    fake = FakeWechat().start()
    yield fake
    fake.stop()


@pytest.fixture
def server(transactional_db, tmp_path, wechat):
    """The web server alone (no job cluster), on the test database, WeChat login on
    its local fake; stopped before the flush."""
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in ENV_DROPPED}
    env.update({
        "DATABASE_URL": _test_database_url(),
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "schemathesis-" + uuid.uuid4().hex,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "AUCTION_SANDBOX": "1",
        "AUCTION_PAYMENT_GATEWAY": "sandbox",
        "AUCTION_LOGIN_RATE": "100000/m",
        "WECHAT_APPID": wechat.appid,
        "WECHAT_SECRET": wechat.secret,
        "WECHAT_API_BASE": wechat.base_url,
        "AUCTION_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_MEDIA_ROOT": str(django_settings.MEDIA_ROOT),  # where the factories' images are
        "CACHE_KEY_PREFIX": f"st-{uuid.uuid4().hex[:10]}",
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    })
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
        env["REDIS_CACHE_URL"] = os.environ.get("REDIS_CACHE_URL", os.environ["REDIS_URL"])
    stack = Stack(url=f"http://127.0.0.1:{port}")
    if env["DATABASE_URL"].startswith("mysql"):
        env_web = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"}
        args = [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--no-control-socket", "project.wsgi"]
        stack.procs.append(_spawn("gunicorn", args, env_web, tmp_path, signal.SIGINT))
    else:
        args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        stack.procs.append(_spawn("runserver", args, env, tmp_path, signal.SIGINT))

    def up():
        try:
            with stack.api() as client:
                return all(client.get("/specials").status_code == 200 for _ in range(4))
        except httpx.TransportError:
            return False

    try:
        _wait_for("the web server answering", up, stack, timeout=60)
        yield stack
    finally:
        stack.stop()
        print(stack.tails())  # shown only when the test failed


def seeded(stack: Stack) -> dict:
    """Something real behind every path: a lot in bidding, a deposit, an order, a coupon."""
    if Collection.get_first_root_node() is None:
        # An earlier transactional test's flush took the one a migration made; images need it.
        Collection.add_root(name="Root")
    special = SpecialFactory(cover=ImageFactory())
    lot = LotFactory(special=special, cover=ImageFactory(), start_price=100_000, deposit=50_000)
    with stack.api() as anonymous:
        login = anonymous.post("/auth/sandbox", json={"openid": f"st-{uuid.uuid4().hex[:12]}", "nickname": "阿甲"})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    me = stack.api(token)
    deposit = me.post("/deposits", json={"lot_id": lot.pk})
    assert deposit.status_code == 201, deposit.text
    out_trade_no = deposit.json()["payment"]["out_trade_no"]
    won = LotFactory(special=special, cover=ImageFactory(), start_price=100_000, deposit=0)
    assert me.post(f"/lots/{won.pk}/bids", json={"price": 100_000}).status_code == 201
    from auction.models import Lot
    from auction.services.settlement import lot_settle

    Lot.objects.filter(pk=won.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    lot_settle(lot_id=won.pk)
    order = Order.objects.get(lot=won)
    coupon = CouponFactory()
    assert Payment.objects.filter(out_trade_no=out_trade_no).exists()
    return {
        "token": token,
        "path": {
            "lot_id": lot.pk, "special_id": special.pk, "order_no": order.order_no,
            "out_trade_no": out_trade_no, "coupon_id": coupon.pk,
        },
    }


def test_schemathesis_finds_no_server_error_and_no_schema_violation(server, capsys):
    world = seeded(server)
    document = httpx.get(f"{server.url}/api/v1/openapi.json", trust_env=False, timeout=15).json()
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    session.trust_env = False  # loopback only, whatever proxy the environment names
    headers = {"Authorization": f"Bearer {world['token']}"}
    statuses: collections.Counter = collections.Counter()
    by_operation: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    failures: list[str] = []
    started = time.monotonic()

    def logout_headers() -> dict[str, str]:
        login = session.post(f"{server.url}/api/v1/auth/sandbox", json={"openid": "schemathesis-logout"}, timeout=15)
        return {"Authorization": f"Bearer {login.json()['token']}"} if login.status_code == 200 else headers

    def run(operation, strategy, label: str) -> None:
        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
            phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
        )
        def exercise(case):
            # Logging out ends the token it is sent with: that operation gets a
            # fresh one of another user each time, so the rest keep theirs.
            sent = logout_headers() if operation.path.endswith("/auth/logout") else headers
            response = case.call(base_url=server.url, session=session, headers=sent, timeout=30)
            # A new connection for each request: runserver sends a response's headers and body
            # in two writes, and on a kept-alive connection the body waits for the client's
            # delayed ACK (~40 ms a request, most of this test's time; gunicorn closes anyway).
            session.close()
            statuses[response.status_code] += 1
            by_operation[operation.label][response.status_code] += 1
            case.validate_response(response, checks=CHECKS, headers=sent)

        try:
            exercise()
        except Unsatisfiable:
            pass  # nothing of that kind to generate (a path id fixed, no other parameter to break)
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001  (every operation is tried; all are reported; schemathesis' FailureGroup is a BaseExceptionGroup)
            failures.append(f"--- {operation.label} ({label}) ---\n{error}")

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in sorted(operations, key=lambda operation: operation.path.endswith("/auth/logout")):
        known = {name: value for name, value in world["path"].items() if f"{{{name}}}" in operation.path}
        run(operation, operation.as_strategy(schemathesis.GenerationMode.POSITIVE), "positive")
        run(operation, operation.as_strategy(schemathesis.GenerationMode.NEGATIVE), "negative")
        if known:
            run(operation, operation.as_strategy(schemathesis.GenerationMode.POSITIVE, path_parameters=known), "positive, real ids")
            run(operation, operation.as_strategy(schemathesis.GenerationMode.NEGATIVE, path_parameters=known), "negative, real ids")

    server.check_alive()
    summary = [
        f"schemathesis: {sum(statuses.values())} requests over {len(by_operation)} operations in {time.monotonic() - started:.0f} s; "
        f"status -> count: {dict(sorted(statuses.items()))}",
        *(f"  {label}: {dict(sorted(counts.items()))}" for label, counts in sorted(by_operation.items())),
    ]
    with capsys.disabled():
        print("\n" + "\n".join(summary))
    assert not failures, "\n\n".join(failures)
    assert not any(status >= 500 for status in statuses)
