"""The live room end to end: real WebSocket clients on two ASGI processes, bids
over HTTP on a third, settlement by the job cluster (CONTRACT "Live updates").

Runs on the embedded default (SQLite, the LiveChange log) and on the services
(MariaDB, Redis pub/sub, gunicorn taking the bids) like test_e2e_cluster.
"""

import uuid
from datetime import datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from auction import signals
from auction.models import Bid, Lot, Order, Special
from auction.services.live import live_lot_changed
from tests.factories import LotFactory, SpecialFactory
from tests.live_stack import login, pay_deposit, start_live_stack

pytestmark = pytest.mark.django_db(transaction=True)

EXTENSION_SECONDS = 3


@pytest.fixture
def live_stack(transactional_db, tmp_path, settings):
    # Pub/sub channels are global to a Redis server: this run's are its own.
    settings.LIVE_CHANNEL_PREFIX = f"test-{uuid.uuid4().hex[:10]}"
    stacks = []

    def start(**kwargs):
        stack = start_live_stack(tmp_path, **kwargs)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.stop()
        print(stack.tails())


def lot_messages(watcher, lot_id: int) -> list[dict]:
    return [m for m in watcher.messages if m["type"] == "lot" and m["lot"]["id"] == lot_id]


def editor_moves_the_end(lot: Lot, ends_at: datetime) -> None:
    """As publishing a revision does before bidding opens: the end moves, its job is rescheduled, watchers told."""
    with transaction.atomic():
        Lot.objects.filter(pk=lot.pk).update(ends_at=ends_at, version=F("version") + 1)
        signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=ends_at)
        live_lot_changed(lot_id=lot.pk)


def test_watchers_on_two_processes_follow_bids_a_proxy_an_extension_and_the_settlement(live_stack):
    stack = live_stack()
    # given a lot open for a while, with a 3 s anti-sniping window
    special = SpecialFactory(ends_at=timezone.now() + timedelta(seconds=45), extension_seconds=EXTENSION_SECONDS)
    lot = LotFactory(special=special, start_price=100_000, deposit=50_000)
    signals.special_times_changed.send(sender=Special, special_id=special.pk)
    signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)
    a, token_a = login(stack, "阿甲")
    b, token_b = login(stack, "贝乙")
    # and A on the first ASGI process, B and an anonymous watcher on the second
    watcher_a = stack.watcher("A", 0, token_a)
    watcher_b = stack.watcher("B", 1, token_b)
    anonymous = stack.watcher("anonymous", 1)
    late = stack.watcher("late", 0)
    for watcher in (watcher_a, watcher_b, anonymous, late):
        watcher.send(op="watch", lot_ids=[lot.pk])
        watcher.wait_for("a snapshot", lambda m: m["type"] == "snapshot", stack=stack)
    assert anonymous.of_type("snapshot")[0]["lot"]["my"] is None
    assert watcher_a.of_type("snapshot")[0]["lot"]["my"] == {"deposit_status": None, "leading": False, "auto_bid_max": None, "barred": False}

    # when A and B pay deposits: each sees their own deposit held, nobody else's
    deposit_a = pay_deposit(a, lot.pk)
    pay_deposit(b, lot.pk)
    held = watcher_a.wait_for(
        "A's deposit held", lambda m: m["type"] == "deposit" and m["deposit"]["status"] == "held", stack=stack
    )
    assert held["deposit"]["id"] == deposit_a["id"]

    # when B sets a proxy up to 1,300 yuan: it bids the start price at once
    proxy = b.put(f"/lots/{lot.pk}/auto-bid", json={"max_price": 130_000})
    assert proxy.status_code == 200, proxy.text
    late.wait_for("the first bid", lambda m: m["type"] == "lot" and m["lot"]["current_price"] == 100_000, stack=stack)
    late.close()  # it misses what follows
    # when A bids 1,100: the proxy answers 1,200 in the same transaction
    answered = a.post(f"/lots/{lot.pk}/bids", json={"price": 110_000})
    assert answered.status_code == 201 and answered.json()["lot"]["current_price"] == 120_000, answered.text
    for watcher in (watcher_a, watcher_b, anonymous):
        watcher.wait_for("the proxy's answer", lambda m: m["type"] == "lot" and m["lot"]["current_price"] == 120_000,
                         stack=stack)
    watcher_a.wait_for("A outbid by the proxy", lambda m: m["type"] == "outbid", stack=stack)

    # when an editor moves the end into the anti-sniping window, and A bids 1,300 in it
    moved_end = timezone.now() + timedelta(seconds=EXTENSION_SECONDS - 0.5)
    editor_moves_the_end(lot, moved_end)
    sniped = a.post(f"/lots/{lot.pk}/bids", json={"price": 130_000})
    assert sniped.status_code == 201, sniped.text
    extended_end = datetime.fromisoformat(sniped.json()["lot"]["ends_at"])
    assert extended_end > moved_end
    watcher_b.wait_for("B outbid at 1,300", lambda m: m["type"] == "outbid" and m["price"] == 130_000, stack=stack)
    for watcher in (watcher_a, watcher_b, anonymous):
        watcher.wait_for(
            "the extension", lambda m: m["type"] == "lot" and datetime.fromisoformat(m["lot"]["ends_at"]) == extended_end,
            stack=stack,
        )

    # when the late watcher comes back: a snapshot shows what it missed
    late = stack.watcher("late again", 0)
    late.send(op="watch", lot_ids=[lot.pk])
    again = late.wait_for("a fresh snapshot", lambda m: m["type"] == "snapshot", stack=stack)
    assert again["lot"]["current_price"] == 130_000 and again["lot"]["bid_count"] == 4

    # then the job cluster settles the lot after the extended end, and every watcher sees it
    for watcher in (watcher_a, watcher_b, anonymous, late):
        watcher.wait_for("the settlement", lambda m: m["type"] == "lot" and m["lot"]["status"] == "sold",
                         timeout=EXTENSION_SECONDS + 30, stack=stack)
    order = Order.objects.get(lot=lot)
    won = watcher_a.wait_for("A's win", lambda m: m["type"] == "won", stack=stack)
    assert won["lot_id"] == lot.pk and won["order_no"] == order.order_no
    watcher_a.wait_for("A's order", lambda m: m["type"] == "order" and m["order"]["order_no"] == order.order_no,
                       stack=stack)
    watcher_b.pump(0.5)
    anonymous.pump(0.5)

    # then each watcher saw the states in version order, every bid carried, and the last state is the final one
    all_bids = set(Bid.objects.filter(lot=lot).values_list("id", flat=True))
    for watcher in (watcher_a, watcher_b, anonymous):
        messages = lot_messages(watcher, lot.pk)
        versions = [m["version"] for m in messages]
        assert versions == sorted(versions), (watcher.name, versions)
        assert messages[-1]["lot"]["status"] == "sold" and messages[-1]["lot"]["current_price"] == 130_000
        carried = {bid["id"] for m in messages for bid in m["bids"]}
        assert carried == all_bids, (watcher.name, carried, all_bids)
        prices = {bid["price"] for m in messages for bid in m["bids"]}
        assert prices == {100_000, 110_000, 120_000, 130_000}
        assert all("my" not in m["lot"] for m in messages)
        assert all(m["committed_at"] for m in messages if m["bids"])

    # personal events reach only their owner
    assert [m["price"] for m in watcher_a.of_type("outbid")] == [120_000]
    assert [m["price"] for m in watcher_b.of_type("outbid")] == [130_000]
    assert not watcher_b.of_type("won") and not watcher_b.of_type("order")
    for watcher in (anonymous, late):
        assert not [m for m in watcher.messages if m["type"] in ("outbid", "won", "deposit", "order")]
    assert all(m["deposit"]["id"] == deposit_a["id"] for m in watcher_a.of_type("deposit"))

    # and each ASGI process says what it holds
    assert stack.health(0)["source_healthy"] is True
    stack.check_alive()


def test_the_socket_protocol_ping_errors_limits_and_the_idle_close(live_stack, settings):
    stack = live_stack(live_processes=1, jobs=False, LIVE_IDLE_SECONDS="2", LIVE_MAX_LOTS_PER_SOCKET="3",
                       LIVE_MAX_SOCKETS_PER_IP="3")
    lots = [LotFactory() for _ in range(4)]
    watcher = stack.watcher("one", 0)
    # ping answers pong with the server's time
    watcher.send(op="ping")
    pong = watcher.wait_for("pong", lambda m: m["type"] == "pong")
    assert datetime.fromisoformat(pong["server_time"]).tzinfo is not None
    # a bad message answers an error, and the socket stays open
    watcher.socket.send("not json")
    watcher.send(op="bid", lot_ids=[lots[0].pk])
    watcher.send(op="watch", lot_ids=["1"])
    watcher.wait_for("three errors", lambda m: len(watcher.of_type("error")) == 3)
    assert {m["code"] for m in watcher.of_type("error")} == {"validation_error"}
    # at most 3 lots per socket here (50 by default)
    watcher.send(op="watch", lot_ids=[lot.pk for lot in lots])
    watcher.wait_for("the limit refused", lambda m: len(watcher.of_type("error")) == 4)
    watcher.send(op="watch", lot_ids=[lot.pk for lot in lots[:2]] + [999_999_999])
    watcher.wait_for("snapshots", lambda m: len(watcher.of_type("snapshot")) == 2)
    watcher.wait_for("an unknown lot", lambda m: m["type"] == "error" and m["code"] == "not_found")
    watcher.send(op="ping")
    watcher.wait_for("still open", lambda m: len(watcher.of_type("pong")) == 2)
    # a bad token is refused as on HTTP
    refused = stack.watcher("bad token", 0, token="nope")
    refused.wait_for("unauthenticated", lambda m: m["type"] == "error" and m["code"] == "unauthenticated")
    refused.pump(2)
    assert refused.closed and refused.socket.close_code == 4401
    # per-IP cap: 3 sockets here (the refused one never counted)
    watcher.close()
    more = [stack.watcher(f"more {n}", 0) for n in range(4)]
    more[-1].wait_for("throttled", lambda m: m["type"] == "error" and m["code"] == "throttled")
    more[-1].pump(2)
    assert more[-1].closed and more[-1].socket.close_code == 4429
    # silent for 2 s: closed
    quiet = more[0]
    quiet.wait_for("the idle close", lambda m: m["type"] == "error" and m["code"] == "idle", timeout=10)
    quiet.pump(2)
    assert quiet.closed and quiet.socket.close_code == 4408
    assert stack.health(0)["sockets"] <= 2
