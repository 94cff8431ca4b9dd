"""How a bid is written: checked against the lot's row as read, written only
if that row has not moved since, or moved only by other bids that it still
outbids; read again otherwise; never lost, never twice. Races are staged here
at the exact moment between the read and the write; tests/test_races.py runs
them for real in threads."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from auction.errors import BidTooLow
from auction.models import Bid, Lot
from auction.services import bidding
from auction.services.bidding import auto_bid_set, bid_place
from auction.services.market_rows import market_read
from tests.factories import BidFactory, LotFactory, SpecialFactory, UserFactory
from tests.pages import lot_page, publish, special_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot():
    # No deposit asked: these tests are about the write, not the deposit rule.
    return LotFactory(start_price=100_000, deposit=0, increment=10_000)


class Reads(list):
    """The bidder's reads of the lot, one entry each."""


def rival_moves_after_reads(monkeypatch, move, times: int = 1) -> Reads:
    """Run ``move()`` right after the bidder's next ``times`` reads of the lot,
    before its write: the race, staged at its narrowest point."""
    moved = []
    rival_moving = []
    reads = Reads()

    def read_then_rival_moves(**kwargs):
        read = market_read(**kwargs)
        if rival_moving:
            return read  # the rival's own reads stage nothing
        reads.append(read)
        if len(moved) < times:
            rival_moving.append(True)
            moved.append(move())
            rival_moving.clear()
        return read

    monkeypatch.setattr(bidding, "market_read", read_then_rival_moves)
    return reads


def not_a_bid_moves_the_row(lot):
    # What an editor's publish, a proxy set or a settlement does to the market
    # row besides its own columns: the version moves, the bid count does not.
    return lambda: Lot.objects.filter(pk=lot.pk).update(version=F("version") + 1)


def test_a_lower_rival_landing_first_does_not_stop_a_bid_that_still_outbids_it(monkeypatch, lot):
    # given: after B reads the lot, A's lower bid lands first
    a, b = UserFactory(), UserFactory()
    reads = rival_moves_after_reads(monkeypatch, lambda: bid_place(lot_id=lot.pk, user=a, price=100_000))

    # when
    result = bid_place(lot_id=lot.pk, user=b, price=120_000)

    # then: B's bid landed on top of A's, from its one read
    lot.refresh_from_db()
    assert [(x.user_id, x.price) for x in Bid.objects.filter(lot=lot).order_by("id")] == [(a.pk, 100_000), (b.pk, 120_000)]
    assert (lot.current_price, lot.leader_id, lot.bid_count, lot.version) == (120_000, b.pk, 2, 2)
    assert (result.lot.bid_count, result.lot.version, result.bid.pk) == (2, 2, Bid.objects.get(price=120_000).pk)
    assert len(reads) == 1


def test_a_rival_bid_less_than_a_step_below_sends_the_bid_back_to_read_and_it_is_too_low(monkeypatch, lot):
    # given: after B reads the lot, A bids 115,000; B's 120,000 is no longer a full step (10,000) above
    a, b = UserFactory(), UserFactory()
    rival_moves_after_reads(monkeypatch, lambda: bid_place(lot_id=lot.pk, user=a, price=115_000))

    with pytest.raises(BidTooLow) as refused:
        bid_place(lot_id=lot.pk, user=b, price=120_000)

    assert refused.value.detail["next_min_bid"] == 125_000
    assert list(Bid.objects.filter(lot=lot).values_list("price", flat=True)) == [115_000]


def test_the_same_bidder_bidding_twice_at_once_is_refused_the_second_time(monkeypatch, lot):
    # given: after B's second bid reads the lot, B's first bid lands
    b = UserFactory()
    rival_moves_after_reads(monkeypatch, lambda: bid_place(lot_id=lot.pk, user=b, price=100_000))

    with pytest.raises(bidding.AlreadyLeading):
        bid_place(lot_id=lot.pk, user=b, price=150_000)

    assert list(Bid.objects.filter(lot=lot).values_list("price", flat=True)) == [100_000]


def test_a_write_that_is_not_a_bid_sends_the_bid_back_to_read_and_it_lands(monkeypatch, lot):
    b = UserFactory()
    reads = rival_moves_after_reads(monkeypatch, not_a_bid_moves_the_row(lot))

    result = bid_place(lot_id=lot.pk, user=b, price=100_000)

    assert len(reads) == 2
    lot.refresh_from_db()
    assert (lot.current_price, lot.leader_id, lot.bid_count, lot.version) == (100_000, b.pk, 1, 2)
    assert (result.lot.bid_count, result.lot.version) == (1, 2)


def test_a_rival_bid_that_moved_the_end_sends_the_bid_back_to_read_and_its_extension_counts_from_there(monkeypatch):
    # given: anti-sniping of 5 minutes, 2 minutes left; after B reads the lot, A's bid moves the end
    special = SpecialFactory(extension_seconds=300)
    lot = LotFactory(special=special, deposit=0, increment=10_000, ends_at=timezone.now() + timedelta(minutes=2))
    a, b = UserFactory(), UserFactory()
    reads = rival_moves_after_reads(monkeypatch, lambda: bid_place(lot_id=lot.pk, user=a, price=100_000))

    result = bid_place(lot_id=lot.pk, user=b, price=120_000)

    # then: B's bid was judged again against the end A's bid set, and moved it on from its own time
    assert len(reads) == 2
    a_bid, b_bid = Bid.objects.filter(lot=lot).order_by("id")
    lot.refresh_from_db()
    assert lot.ends_at == b_bid.created_at + timedelta(minutes=5) == result.lot.ends_at
    assert lot.ends_at > a_bid.created_at + timedelta(minutes=5)


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
    # given: C leads; after each of B's reads the row moves by a write that is not a bid
    b, c = UserFactory(), UserFactory()
    bid_place(lot_id=lot.pk, user=c, price=100_000)
    reads = rival_moves_after_reads(monkeypatch, not_a_bid_moves_the_row(lot), times=bidding.OPTIMISTIC_ATTEMPTS)

    # when
    result = bid_place(lot_id=lot.pk, user=b, price=500_000)

    # then: B's bid landed under the lock, once, after C's
    assert len(reads) == bidding.OPTIMISTIC_ATTEMPTS
    assert list(Bid.objects.filter(lot=lot).order_by("id").values_list("user_id", "price")) == [(c.pk, 100_000), (b.pk, 500_000)]
    lot.refresh_from_db()
    assert (lot.leader_id, lot.bid_count, result.lot.bid_count) == (b.pk, 2, 2)


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
@pytest.mark.parametrize("over_bids", [False, True])
def test_a_write_over_a_row_moved_by_something_else_than_bids_writes_nothing(lot, over_bids):
    # Outside any transaction: on MySQL, the one-round-trip write.
    market, _ = _market_with_bid(lot, UserFactory(), 100_000)
    not_a_bid_moves_the_row(lot)()

    assert market.save(over_bids=over_bids) is False
    assert not Bid.objects.exists()
    assert Lot.objects.get(pk=lot.pk).bid_count == 0


@pytest.mark.django_db(transaction=True)
def test_a_write_over_other_bids_returns_the_counters_they_left(lot):
    # Outside any transaction: on MySQL, the one-round-trip write, whose last statement reads the counters.
    market, bid = _market_with_bid(lot, UserFactory(), 130_000)
    for price in (100_000, 110_000):
        bid_place(lot_id=lot.pk, user=UserFactory(), price=price)

    assert market.save(over_bids=True) is True
    assert (market.lot.bid_count, market.lot.version) == (3, 3)
    assert Bid.objects.get(pk=bid.pk).price == 130_000


def test_a_proxy_set_after_a_bid_read_stops_it_landing_over_bids_even_when_the_proxy_bid_at_once(monkeypatch, lot):
    # given: A leads; after B reads the lot, C sets a proxy that outbids A at once
    a, b, c = UserFactory(), UserFactory(), UserFactory()
    bid_place(lot_id=lot.pk, user=a, price=100_000)
    rival_moves_after_reads(monkeypatch, lambda: auto_bid_set(lot_id=lot.pk, user=c, max_price=300_000))

    # when: B's bid still outbids C's proxy bid (110,000) by a step
    result = bid_place(lot_id=lot.pk, user=b, price=150_000)

    # then: C's proxy answered B, which it could only do under the lock
    assert [(x.user_id, x.price) for x in result.answers] == [(c.pk, 160_000)]
    lot.refresh_from_db()
    assert (lot.current_price, lot.leader_id) == (160_000, c.pk)


@pytest.mark.django_db(transaction=True)
def test_a_write_that_meets_a_duplicate_bid_rolls_back_whole_and_leaves_the_connection_clean(lot):
    # given: a bid row already at the price about to be written (a request sent twice)
    b = UserFactory()
    BidFactory(lot=lot, user=b, price=100_000)
    market, _ = _market_with_bid(lot, b, 100_000)

    # when
    written = market.save()

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


def _version(lot) -> int:
    return Lot.objects.get(pk=lot.pk).version


def test_settlement_overdue_and_a_special_phase_move_the_version(lot):
    from auction.models import Order
    from auction.services.overdue import order_expire
    from auction.services.settlement import lot_settle, special_advance

    # given: a lot of a special still in preview
    now = timezone.now()
    special = SpecialFactory(preview_at=now - timedelta(minutes=2), starts_at=now + timedelta(minutes=1))
    upcoming = LotFactory(special=special, deposit=0)
    before = _version(upcoming)
    # when the special opens, its lots' status and version move together
    special_advance(special_id=special.pk, now=now + timedelta(minutes=2))
    assert Lot.objects.get(pk=upcoming.pk).status == "bidding" and _version(upcoming) > before

    # given: a bid on the lot; when it is settled (sold) ...
    bid_place(lot_id=lot.pk, user=UserFactory(), price=100_000)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    before = _version(lot)
    lot_settle(lot_id=lot.pk)
    assert Lot.objects.get(pk=lot.pk).status == "sold" and _version(lot) > before
    # ... and its order goes overdue (defaulted)
    order = Order.objects.get(lot=lot)
    Order.objects.filter(pk=order.pk).update(pay_deadline=timezone.now() - timedelta(seconds=1))
    before = _version(lot)
    assert order_expire(order_id=order.pk)
    assert Lot.objects.get(pk=lot.pk).status == "defaulted" and _version(lot) > before


def test_a_bid_read_before_settlement_is_not_written_over_it(lot):
    from auction.services.settlement import lot_settle

    # given: a bid read the lot's row, then the lot ended and was settled
    a, b = UserFactory(), UserFactory()
    bid_place(lot_id=lot.pk, user=a, price=100_000)
    read = market_read(lot_id=lot.pk, bidder=b.pk)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    lot_settle(lot_id=lot.pk)
    # when: the bid is written against the row it read
    market = bidding.Market(lot=read.lot, special=read.special, now=timezone.now())
    market.place(b.pk, 110_000, auto=False)
    # then: the version moved, so the write matches no row
    assert market.save() is False
    stored = Lot.objects.get(pk=lot.pk)
    assert (stored.status, stored.leader_id, stored.bid_count) == ("sold", a.pk, 1)
