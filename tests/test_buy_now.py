"""一口价: POST /lots/{id}/buy-now ends the lot at once, sold to the caller at the buy-now price."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.errors import AlreadyLeading, BidTooLow, BuyNowUnavailable, LotNotOpen
from auction.models import Bid, Deposit, Event, Lot, Order
from auction.services.bidding import bid_place
from auction.services.buy_now import buy_now
from auction.services.settlement import lot_settle
from tests.conftest import assert_error
from tests.factories import LotFactory, SpecialFactory, UserFactory
from tests.market import bid, bidder, hammer, pay_deposit
from tests.test_races import _bidders
from tests.threads import run_threads


def _lot(**fields) -> Lot:
    values = {"start_price": 100_000, "deposit": 50_000, "buy_now_price": 300_000}
    values.update(fields)
    return LotFactory(**values)


@pytest.mark.django_db
def test_buy_now_sells_the_lot_at_once_with_premium_and_releases_the_others(client):
    lot = _lot(special=SpecialFactory(buyer_premium_rate=1000))
    buyer, rival = bidder(client, "买家"), bidder(client, "对手")
    pay_deposit(buyer, lot_id=lot.pk)
    pay_deposit(rival, lot_id=lot.pk)
    assert bid(rival, lot.pk, 150_000).status_code == 201

    response = buyer.post(f"/lots/{lot.pk}/buy-now")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["order"]["price"], body["order"]["premium"], body["order"]["deposit_credit"]) == (300_000, 30_000, 50_000)
    assert body["order"]["amount_due"] == 280_000
    lot.refresh_from_db()
    assert (lot.status, lot.current_price, lot.leader_id) == ("sold", 300_000, buyer.user.pk)
    assert buyer.get(f"/lots/{lot.pk}").json()["status"] == "sold"
    assert Order.objects.get(lot=lot).user == buyer.user
    assert Deposit.objects.get(user=rival.user).status in ("refunding", "refunded")
    assert Event.objects.filter(kind="lot.bought_now", lot=lot, user=buyer.user, amount=300_000).exists()
    # the end changes nothing more, and bids are refused
    assert lot_settle(lot_id=lot.pk) is None
    assert_error(bid(rival, lot.pk, 400_000), 409, "lot_not_open")


@pytest.mark.django_db
def test_buy_now_needs_a_price_below_it_a_deposit_and_an_open_lot(client):
    me = bidder(client)
    without = _lot(buy_now_price=0)
    assert_error(me.post(f"/lots/{without.pk}/buy-now"), 409, "deposit_required")
    pay_deposit(me, lot_id=without.pk)
    assert_error(me.post(f"/lots/{without.pk}/buy-now"), 409, "buy_now_unavailable")

    reached = _lot(buy_now_price=200_000)
    rival = bidder(client)
    pay_deposit(rival, lot_id=reached.pk)
    pay_deposit(me, lot_id=reached.pk)
    assert bid(rival, reached.pk, 200_000).status_code == 201
    assert_error(me.post(f"/lots/{reached.pk}/buy-now"), 409, "buy_now_unavailable")

    ended = _lot()
    pay_deposit(me, lot_id=ended.pk)
    hammer(ended)
    assert_error(me.post(f"/lots/{ended.pk}/buy-now"), 409, "lot_not_open")
    not_yet = _lot(special=SpecialFactory(preview_at=timezone.now() - timedelta(hours=1), starts_at=timezone.now() + timedelta(hours=1),
                                          ends_at=timezone.now() + timedelta(hours=2)))
    assert_error(me.post(f"/lots/{not_yet.pk}/buy-now"), 409, "lot_not_open")
    assert Order.objects.count() == 0


@pytest.mark.django_db
def test_buy_now_with_an_idempotency_key_answers_the_retry_the_same(client):
    lot = _lot()
    me = bidder(client)
    pay_deposit(me, lot_id=lot.pk)
    first = me.post(f"/lots/{lot.pk}/buy-now", headers={"Idempotency-Key": "buy-1"})
    again = me.post(f"/lots/{lot.pk}/buy-now", headers={"Idempotency-Key": "buy-1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["order"]["order_no"] == again.json()["order"]["order_no"]
    assert Order.objects.count() == 1


# --- races: real threads, each with its own connection ------------------------------

RACERS = 12


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_buy_nows_bids_and_the_end_racing_leave_exactly_one_winner():
    lot = _lot(start_price=10_000, deposit=1_000, buy_now_price=60_000)
    users = _bidders(lot, RACERS)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() + timedelta(seconds=2))

    def race(index: int):
        outcomes = []
        deadline = timezone.now() + timedelta(seconds=4)
        while timezone.now() < deadline and not outcomes[-1:] == ["ended"]:
            try:
                if index % 3 == 0:
                    buy_now(lot_id=lot.pk, user=users[index])
                    outcomes.append("bought")
                else:
                    current = Lot.objects.only("current_price", "bid_count", "start_price", "increment").get(pk=lot.pk)
                    bid_place(lot_id=lot.pk, user=users[index], price=current.next_min_bid())
                    outcomes.append("bid")
            except (BidTooLow, AlreadyLeading, BuyNowUnavailable):
                outcomes.append("refused")
            except LotNotOpen:
                outcomes.append("ended")
        if index == 1:
            lot_settle(lot_id=lot.pk)  # the end's job, racing the rest
        return outcomes

    results = run_threads(RACERS, race)
    assert not [r for r in results if isinstance(r, BaseException)], results
    lot_settle(lot_id=lot.pk) if timezone.now() >= Lot.objects.get(pk=lot.pk).ends_at else None
    lot.refresh_from_db()
    bought = sum(r.count("bought") for r in results)
    assert bought <= 1
    orders = list(Order.objects.filter(lot=lot))
    assert len(orders) == (1 if lot.status == "sold" else 0)
    if bought:
        assert (lot.status, lot.current_price) == ("sold", 60_000)
        assert orders[0].user_id == lot.leader_id and orders[0].price == 60_000
    # no bid landed after the buy-now or above it, and the leader holds the best bid
    best = Bid.objects.filter(lot=lot).order_by("-price").first()
    assert best.user_id == lot.leader_id and best.price == lot.current_price <= 60_000
    assert Bid.objects.filter(lot=lot).count() == lot.bid_count
    assert Deposit.objects.filter(lot=lot, status="held").exclude(user_id=lot.leader_id).count() == 0 or lot.status == "bidding"


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_many_buy_nows_at_once_sell_once():
    lot = _lot(start_price=10_000, deposit=1_000, buy_now_price=60_000)
    users = _bidders(lot, RACERS)

    def race(index: int) -> str:
        try:
            buy_now(lot_id=lot.pk, user=users[index])
            return "bought"
        except LotNotOpen:
            return "ended"

    results = run_threads(RACERS, race)
    assert sorted(results) == ["bought"] + ["ended"] * (RACERS - 1), results
    order = Order.objects.get(lot=lot)
    assert order.user_id == Lot.objects.get(pk=lot.pk).leader_id
    assert UserFactory._meta.model.objects.filter(orders__lot=lot).count() == 1
