"""The hub's fan-out costs: every due lot in one read, a message handed to each socket inline."""

import asyncio
import json
import time

import pytest

from live import reads
from live.hub import Hub, LotFeed
from live.reads import Origin
from tests.factories import BidFactory, LotFactory, SpecialFactory, UserFactory


@pytest.mark.django_db(transaction=True)  # reads close old connections, as a request would
def test_one_read_brings_each_lots_new_bids_newest_first(monkeypatch):
    # given two lots of one special, the first with three bids and the second with one
    special = SpecialFactory()
    first, second = LotFactory(special=special), LotFactory(special=special)
    user = UserFactory(nickname="张三丰")
    old = BidFactory(lot=first, user=user, price=100_000)
    newer = [BidFactory(lot=first, user=user, price=101_000 + step * 1000) for step in range(2)]
    only = BidFactory(lot=second, user=user, price=200_000)
    # when both are read at once, the first after its oldest bid
    changes = reads.lot_changes({first.pk: old.pk, second.pk: 0})
    # then each lot has the bids after what it asked for, newest first
    assert [row["id"] for row in changes[first.pk]["bids"]] == [newer[1].pk, newer[0].pk]
    assert changes[first.pk]["newest_bid_id"] == newer[1].pk
    assert [row["id"] for row in changes[second.pk]["bids"]] == [only.pk]
    assert changes[second.pk]["bids"][0]["bidder"] != "张三丰"  # masked as on HTTP
    # and with a cap of one bid per message, the shared limit (2) is hit: each lot is
    # read on its own, so no lot loses its newest bid to another's burst
    monkeypatch.setattr(reads, "MAX_BIDS_PER_MESSAGE", 1)
    capped = reads.lot_changes({first.pk: 0, second.pk: 0})
    assert [row["id"] for row in capped[first.pk]["bids"]] == [newer[1].pk]
    assert [row["id"] for row in capped[second.pk]["bids"]] == [only.pk]


class FakeSocket:
    user_id = None
    origin = Origin(scheme="http", host="testserver")
    client_ip = "127.0.0.1"
    last_heard = 0.0

    def __init__(self, hold: asyncio.Event | None = None):
        self.hold = hold
        self.texts: list[str] = []
        self.received_at: list[float] = []

    async def send_text(self, text: str) -> None:
        if self.hold is not None:
            await self.hold.wait()  # a client whose buffer is full
        self.texts.append(text)
        self.received_at.append(time.monotonic())

    async def close_idle(self) -> None:
        pass


def test_a_socket_that_cannot_take_a_message_holds_up_no_other():
    async def scenario() -> None:
        hub = Hub()
        hold = asyncio.Event()
        slow, fast = FakeSocket(hold), [FakeSocket() for _ in range(3)]
        # when a message goes to all four
        await hub._send_all([slow, *fast], "m1")
        # then the others have it at once, without a task each, and the slow one not yet
        assert [socket.texts for socket in fast] == [["m1"]] * 3
        assert slow.texts == [] and hub.messages_sent == 3
        # and once the slow one drains it gets the message too, and it is counted
        hold.set()
        for _ in range(5):
            await asyncio.sleep(0)
        assert slow.texts == ["m1"] and hub.messages_sent == 4

    asyncio.run(scenario())


def test_changes_to_many_lots_in_a_busy_spell_are_read_in_one_read(settings):
    settings.LIVE_READS_PER_SECOND = 20
    settings.LIVE_MESSAGES_PER_SECOND = 5

    async def scenario() -> None:
        hub = Hub()
        reads_made: list[dict] = []

        async def read(after: dict) -> dict:
            reads_made.append(dict(after))
            return {lot_id: {"lot": {"id": lot_id, "cover": None}, "version": 2, "bids": [], "newest_bid_id": 0}
                    for lot_id in after}

        hub._read_lots = read
        watchers = {lot_id: FakeSocket() for lot_id in (11, 12, 13)}
        for lot_id, socket in watchers.items():
            hub.feeds[lot_id] = LotFeed(watchers={socket}, newest_bid_id=0, version=1)
        hub._last_read = time.monotonic()  # a read has just gone out: what follows gathers
        # when three lots change in a row
        for lot_id in watchers:
            hub.deliver(f"lot:{lot_id}", {"committed_at": time.time()})
        await asyncio.wait_for(hub._reader, timeout=5)
        # then one read took all three, and each lot's watcher has its lot's message
        assert reads_made == [{11: 0, 12: 0, 13: 0}]
        for lot_id, socket in watchers.items():
            (text,) = socket.texts
            message = json.loads(text)
            assert (message["type"], message["lot"]["id"], message["version"], message["previous_version"]) == (
                "lot", lot_id, 2, 1)

    asyncio.run(scenario())


def test_a_burst_on_one_lot_is_at_most_five_messages_in_any_second_and_a_lone_change_goes_at_once(settings):
    settings.LIVE_READS_PER_SECOND = 100
    settings.LIVE_MESSAGES_PER_SECOND = 5

    async def scenario() -> None:
        hub = Hub()
        database = {"version": 1, "bids": []}  # the lot as committed: each bid moves its version by one

        async def read(after: dict) -> dict:
            (newest_seen,) = after.values()
            bids = [bid for bid in database["bids"] if bid["id"] > newest_seen]
            return {7: {"lot": {"id": 7, "cover": None, "current_price": 1000 * database["version"]},
                        "version": database["version"], "bids": bids[::-1],
                        "newest_bid_id": database["bids"][-1]["id"] if database["bids"] else 0}}

        hub._read_lots = read
        socket = FakeSocket()
        hub.feeds[7] = LotFeed(watchers={socket}, newest_bid_id=0, version=1)

        def bid() -> None:
            database["version"] += 1
            database["bids"].append({"id": database["version"], "price": 1000 * database["version"]})
            hub.deliver("lot:7", {"committed_at": time.time()})

        # when one bid comes to a quiet lot, and another 50 ms later
        bid()
        await asyncio.sleep(0.05)
        bid()
        await asyncio.sleep(0.05)
        # then each is shown at once, on its own (the limit is five in a second, not one each 200 ms)
        assert [json.loads(text)["version"] for text in socket.texts] == [2, 3]
        # when 60 more come over 1.2 s, one each 20 ms
        for _ in range(60):
            bid()
            await asyncio.sleep(0.02)
        await asyncio.wait_for(hub._reader, timeout=5)
        # then no second holds more than five messages
        times = socket.received_at
        assert all(times[index + 5] - times[index] >= 1.0 for index in range(len(times) - 5))
        # and every bid was carried once, in order, and the last message shows the last state
        messages = [json.loads(text) for text in socket.texts]
        assert [bid["id"] for message in messages for bid in reversed(message["bids"])] == list(range(2, 64))
        assert [message["version"] for message in messages] == sorted({message["version"] for message in messages})
        assert messages[-1]["version"] == 63 and messages[-1]["lot"]["current_price"] == 63_000
        assert len(messages) < 62  # coalesced: far fewer messages than bids

    asyncio.run(scenario())
