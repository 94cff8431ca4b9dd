"""Staff sockets (the admin's Market tab): an admin session's socket is told how many
watch its lot, summed across the ASGI processes; nobody else ever is.

Real uvicorn processes and real WebSocket clients (tests/live_stack.py). On the
services (Redis) the watchers sit on two processes and the staff socket sees
their sum; on the embedded default (one ASGI process, as ``make run``) one.
"""

import os
import uuid

import pytest
from django.conf import settings as django_settings
from django.test import Client

from auction.models import User
from auction.services.tokens import token_issue
from tests.factories import LotFactory
from tests.live_stack import login
from tests.test_live_cluster import live_stack  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)

SERVICES = bool(os.environ.get("REDIS_URL"))


def admin_session(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def browser_headers(stack, process: int, session_key: str, origin: str | None = None) -> dict[str, str]:
    """What a browser sends from the admin's page: its session cookie and its own origin."""
    return {"Cookie": f"{django_settings.SESSION_COOKIE_NAME}={session_key}",
            "Origin": origin or stack.live_urls[process]}


def counts(watcher, lot_id: int) -> list[int]:
    return [m["count"] for m in watcher.of_type("watchers") if m["lot_id"] == lot_id]


def test_staff_sockets_see_watcher_counts_and_prices_and_no_other_socket_does(live_stack):  # noqa: F811
    processes = 2 if SERVICES else 1
    stack = live_stack(live_processes=processes, jobs=False, LIVE_WATCHERS_SECONDS="0.5")
    other = processes - 1  # the process the other watchers use (the same one on the embedded default)
    lot = LotFactory(deposit=0)
    admin = User.objects.create_superuser(username=f"admin-{uuid.uuid4().hex[:8]}", password="pw-admin-1")
    nobody = User.objects.create_user(username=f"plain-{uuid.uuid4().hex[:8]}", password="pw-plain-1")
    bidder_api, bidder_token = login(stack, "阿甲")

    # given a staff socket on the first process, opened from the admin's page
    staff = stack.watcher("staff", 0, headers=browser_headers(stack, 0, admin_session(admin)))
    staff.send(op="watch", lot_ids=[lot.pk])
    staff.wait_for("the snapshot", lambda m: m["type"] == "snapshot", stack=stack)
    staff.wait_for("no watchers yet", lambda m: m["type"] == "watchers" and m["count"] == 0, stack=stack)
    assert staff.messages.index(staff.of_type("snapshot")[0]) < staff.messages.index(staff.of_type("watchers")[0])

    # when sockets that must not get staff data watch the lot, on both processes
    refused = [
        stack.watcher("anonymous 1", 0),
        stack.watcher("anonymous 2", other),
        stack.watcher("bidder", other, token=bidder_token),
        # an admin's own bearer token is a bidder's view: staff only comes from the admin session
        stack.watcher("admin's bearer token", other, token=token_issue(user=admin)),
        stack.watcher("forged session", other, headers=browser_headers(stack, other, "x" * 32)),
        stack.watcher("a session without admin access", 0, headers=browser_headers(stack, 0, admin_session(nobody))),
        # the admin's cookie, sent by a page of another site (cross-site WebSocket hijacking)
        stack.watcher("another site's page", other,
                      headers=browser_headers(stack, other, admin_session(admin), origin="https://evil.example")),
        stack.watcher("no origin", other, headers={"Cookie": f"sessionid={admin_session(admin)}"}),
    ]
    for watcher in refused:
        watcher.send(op="watch", lot_ids=[lot.pk])
        watcher.wait_for("a snapshot", lambda m: m["type"] == "snapshot", stack=stack)

    # then the staff socket is told all of them, summed across processes (staff sockets not counted)
    staff.wait_for("8 watchers", lambda m: m["type"] == "watchers" and m["count"] == len(refused), stack=stack)
    # and a second staff socket, on the other process, sees the same sum
    staff_2 = stack.watcher("staff 2", other, headers=browser_headers(stack, other, admin_session(admin)))
    staff_2.send(op="watch", lot_ids=[lot.pk])
    staff_2.wait_for("8 watchers", lambda m: m["type"] == "watchers" and m["count"] == len(refused), stack=stack)

    # when a bid is placed over HTTP: staff see the price like everyone
    placed = bidder_api.post(f"/lots/{lot.pk}/bids", json={"price": lot.start_price})
    assert placed.status_code == 201, placed.text
    for watcher in (staff, staff_2):
        watcher.wait_for("the bid", lambda m: m["type"] == "lot" and m["lot"]["current_price"] == lot.start_price,
                         stack=stack)

    # when two watchers leave: the count follows, once, coalesced
    refused[0].close()
    refused[1].close()
    staff.wait_for("6 watchers", lambda m: m["type"] == "watchers" and m["count"] == len(refused) - 2, stack=stack)
    staff.pump(1.5)
    assert counts(staff, lot.pk)[-1] == len(refused) - 2
    # a count is sent only when it changed (each one differs from the one before)
    sent = counts(staff, lot.pk)
    assert all(a != b for a, b in zip(sent, sent[1:], strict=False)), sent

    # and no other socket ever got a count, though each saw the bid
    for watcher in refused[2:]:
        watcher.wait_for("the bid", lambda m: m["type"] == "lot", stack=stack)
        watcher.pump(1.0)
    for watcher in refused:
        assert not watcher.of_type("watchers"), watcher.name
    assert sum(stack.health(process)["staff_sockets"] for process in range(processes)) == 2
    stack.check_alive()

