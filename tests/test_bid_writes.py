"""How a bid is written: checked against the lot's row as read, written only
if that row has not moved since, read again when it has; never lost, never
twice. Races are staged here at the exact moment between the read and the
write; tests/test_races.py runs them for real in threads."""

import pytest
from django.db import connection
from django.utils import timezone

from auction.errors import BidTooLow
from auction.models import Bid, Lot
from auction.services import bidding
from auction.services.bidding import auto_bid_set, bid_place
from auction.services.market_rows import market_read
from tests.factories import BidFactory, LotFactory, UserFactory
from tests.pages import lot_page, publish, special_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot():
    # No deposit asked: these tests are about the write, not the deposit rule.
    return LotFactory(start_price=100_000, deposit=0, increment=10_000)


def rival_moves_after_reads(monkeypatch, move, times: int = 1) -> list:
    """Run ``move()`` right after the bidder's next ``times`` reads of the lot,
    before its write: the race, staged at its narrowest point."""
    moved = []
    rival_moving = []

    def read_then_rival_moves(**kwargs):
        read = market_read(**kwargs)
        if len(moved) < times and not rival_moving:  # the rival's own reads stage nothing
            rival_moving.append(True)
            moved.append(move())
            rival_moving.clear()
        return read

    monkeypatch.setattr(bidding, "market_read", read_then_rival_moves)
    return moved


def test_a_lower_rival_landing_first_sends_the_bid_back_to_read_and_it_lands(monkeypatch, lot):
    # given: after B reads the lot, A's lower bid lands first
    a, b = UserFactory(), UserFactory()
    rival_moves_after_reads(monkeypatch, lambda: bid_place(lot_id=lot.pk, user=a, price=100_000))

    # when
    result = bid_place(lot_id=lot.pk, user=b, price=120_000)

    # then: B's write found the row moved, read again, and landed on top of A's
    lot.refresh_from_db()
    assert [(x.user_id, x.price) for x in Bid.objects.filter(lot=lot).order_by("id")] == [(a.pk, 100_000), (b.pk, 120_000)]
    assert (lot.current_price, lot.leader_id, lot.bid_count, lot.version) == (120_000, b.pk, 2, 2)
    assert (result.lot.bid_count, result.lot.version, result.bid.pk) == (2, 2, Bid.objects.get(price=120_000).pk)


def test_a_higher_rival_landing_first_makes_the_bid_too_low(monkeypatch, lot):
    a, b = UserFactory(), UserFactory()
    rival_moves_after_reads(monkeypatch, lambda: bid_place(lot_id=lot.pk, user=a, price=150_000))

    with pytest.raises(BidTooLow) as refused:
        bid_place(lot_id=lot.pk, user=b, price=120_000)

    assert refused.value.detail["next_min_bid"] == 160_000
    assert list(Bid.objects.filter(lot=lot).values_list("user_id", "price")) == [(a.pk, 150_000)]
    lot.refresh_from_db()
    assert (lot.current_price, lot.leader_id, lot.bid_count) == (150_000, a.pk, 1)


def test_a_proxy_set_between_the_read_and_the_write_answers_the_bid(monkeypatch, lot):
    # given: C leads; after B reads the lot (no proxies then), C sets a proxy,
    # which bids nothing yet (C leads) but must answer B
    b, c = UserFactory(), UserFactory()
    bid_place(lot_id=lot.pk, user=c, price=100_000)
    rival_moves_after_reads(monkeypatch, lambda: auto_bid_set(lot_id=lot.pk, user=c, max_price=200_000))

    # when
    result = bid_place(lot_id=lot.pk, user=b, price=110_000)

    # then: the proxy answered in the same transaction
    assert [(x.user_id, x.price, x.is_auto) for x in result.answers] == [(c.pk, 120_000, True)]
    lot.refresh_from_db()
    assert (lot.current_price, lot.leader_id, lot.bid_count) == (120_000, c.pk, 3)


def test_a_bid_that_keeps_losing_the_race_queues_for_the_lock_and_lands(monkeypatch, lot):
    # given: after each of B's reads a rival's lower bid lands first
    b = UserFactory()
    rivals = iter(range(bidding.OPTIMISTIC_ATTEMPTS))

    def lower_rival_bids():
        return bid_place(lot_id=lot.pk, user=UserFactory(), price=100_000 + 10_000 * next(rivals))

    rival_moves_after_reads(monkeypatch, lower_rival_bids, times=bidding.OPTIMISTIC_ATTEMPTS)

    # when
    result = bid_place(lot_id=lot.pk, user=b, price=500_000)

    # then: every rival's bid and B's, in order, each once
    prices = list(Bid.objects.filter(lot=lot).order_by("id").values_list("price", flat=True))
    assert prices == [100_000 + 10_000 * k for k in range(bidding.OPTIMISTIC_ATTEMPTS)] + [500_000]
    lot.refresh_from_db()
    assert (lot.leader_id, lot.bid_count, result.lot.bid_count) == (b.pk, len(prices), len(prices))


def test_a_leader_bidding_again_is_refused_from_the_read_without_the_lock(monkeypatch, lot):
    a = UserFactory()
    bid_place(lot_id=lot.pk, user=a, price=100_000)

    def no_lock(read):
        raise AssertionError("a refusal takes no lock")

    monkeypatch.setattr(bidding, "_open_market", no_lock)
    with pytest.raises(bidding.AlreadyLeading):
        bid_place(lot_id=lot.pk, user=a, price=110_000)
    assert Bid.objects.filter(lot=lot).count() == 1


def test_editing_terms_or_unpublishing_moves_the_version_so_bids_read_again():
    special = special_page()
    page = lot_page(special, start_price=100_000)
    versions = [Lot.objects.get(page_id=page.pk).version]
    page.start_price = 200_000
    publish(page)
    versions.append(Lot.objects.get(page_id=page.pk).version)
    page.unpublish()
    versions.append(Lot.objects.get(page_id=page.pk).version)
    assert versions[0] < versions[1] < versions[2]


@pytest.mark.django_db(transaction=True)
def test_a_write_over_a_moved_row_writes_nothing(lot):
    # Outside any transaction: on MySQL, the one-round-trip write.
    market, _ = _market_with_bid(lot, UserFactory(), 100_000)
    Lot.objects.filter(pk=lot.pk).update(version=1)

    assert market.save(read_version=0) is False
    assert not Bid.objects.exists()
    assert Lot.objects.get(pk=lot.pk).bid_count == 0


@pytest.mark.django_db(transaction=True)
def test_a_write_that_meets_a_duplicate_bid_rolls_back_whole_and_leaves_the_connection_clean(lot):
    # given: a bid row already at the price about to be written (a request sent twice)
    b = UserFactory()
    BidFactory(lot=lot, user=b, price=100_000)
    market, _ = _market_with_bid(lot, b, 100_000)

    # when
    written = market.save(read_version=0)

    # then: nothing of it stays, and the connection is not left inside a transaction
    assert written is False
    assert not connection.in_atomic_block
    lot.refresh_from_db()
    assert (lot.version, lot.bid_count, lot.leader_id) == (0, 0, None)
    assert Bid.objects.filter(lot=lot).count() == 1
    assert bid_place(lot_id=lot.pk, user=UserFactory(), price=110_000).lot.bid_count == 1


def _market_with_bid(lot, user, price) -> tuple[bidding.Market, Bid]:
    read = market_read(lot_id=lot.pk, bidder=user.pk)
    market = bidding.Market(lot=read.lot, special=read.special, now=timezone.now())
    return market, market.place(user.pk, price, auto=False)
