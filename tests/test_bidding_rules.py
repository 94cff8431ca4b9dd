"""Bidding rules (DESIGN.md, Rules) with their contract error codes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.increments import DEFAULT_LADDER_YUAN, highest_price_outbid_by, increment_after
from auction.models import AuthToken, AutoBid, Bid, Lot, User
from auction.money import MAX_FEN
from auction.services.bidding import auto_bid_set, bid_place
from auction.services.tokens import token_revoke
from tests.conftest import ApiClient, assert_error
from tests.factories import LotFactory, SpecialFactory
from tests.market import bid, bidder, pay_deposit

pytestmark = pytest.mark.django_db


@pytest.fixture
def lot():
    return LotFactory(start_price=100_000, deposit=50_000)


def _with_deposit(client, lot, nickname=""):
    api = bidder(client, nickname)
    pay_deposit(api, lot_id=lot.pk)
    return api


def test_the_first_bid_is_at_least_the_start_price(client, lot):
    a = _with_deposit(client, lot)
    body = assert_error(bid(a, lot.pk, 99_900), 409, "bid_too_low")
    assert body["detail"]["next_min_bid"] == 100_000
    assert bid(a, lot.pk, 100_000).status_code == 201


@pytest.mark.parametrize(
    ("current", "step"),
    [(50_000, 5_000), (99_900, 5_000), (100_000, 10_000), (499_900, 10_000), (500_000, 20_000), (1_000_000, 50_000),
     (5_000_000, 100_000), (10_000_000, 200_000), (50_000_000, 500_000), (100_000_000, 1_000_000)],
)
def test_later_bids_climb_the_default_ladder(client, current, step):
    lot = LotFactory(start_price=1, deposit=0, current_price=current, bid_count=1, leader=bidder(client).user)
    b = bidder(client)
    body = assert_error(bid(b, lot.pk, current + step - 1), 409, "bid_too_low")
    assert body["detail"]["next_min_bid"] == current + step
    assert bid(b, lot.pk, current + step).status_code == 201


@pytest.mark.parametrize("fixed", [0, 3_000])
def test_a_price_outbids_exactly_the_current_prices_up_to_its_highest_one(fixed):
    # A bid read before rivals landed may still land over them when it outbids
    # the price now there: that must be the ladder's own answer at every price.
    bounds = [yuan * 100 for yuan, _ in DEFAULT_LADDER_YUAN]
    prices = sorted({p + d for p in [0, 7_777, *bounds, 123_456_789] for d in (-200_000, -10_001, -1, 0, 1, 9_999, 50_000)
                     if p + d >= 0})
    for price in prices:
        highest = highest_price_outbid_by(price, fixed_increment=fixed)
        for current in prices:
            outbids = price >= current + increment_after(current, fixed_increment=fixed)
            assert outbids == (current <= highest), (price, current, highest)


def test_a_fixed_increment_replaces_the_ladder(client):
    lot = LotFactory(start_price=10_000, deposit=0, increment=3_000)
    a, b = bidder(client), bidder(client)
    bid(a, lot.pk, 10_000)
    assert_error(bid(b, lot.pk, 12_999), 409, "bid_too_low")
    assert bid(b, lot.pk, 13_000).status_code == 201


def test_a_deposit_is_required_unless_the_lot_asks_none(client, lot):
    a = bidder(client)
    assert_error(bid(a, lot.pk, 100_000), 409, "deposit_required")
    created = a.post("/deposits", {"lot_id": lot.pk})
    assert created.status_code == 201
    assert_error(bid(a, lot.pk, 100_000), 409, "deposit_required")  # pending is not held
    free = LotFactory(deposit=0)
    assert bid(a, free.pk, free.start_price).status_code == 201


def test_a_special_wide_deposit_covers_every_lot_of_the_special(client):
    special = SpecialFactory(deposit=200_000)
    first, second = LotFactory(special=special), LotFactory(special=special, position=1)
    other = LotFactory()
    a = bidder(client)
    pay_deposit(a, special_id=special.pk)
    assert bid(a, first.pk, first.start_price).status_code == 201
    assert bid(a, second.pk, second.start_price).status_code == 201
    assert_error(bid(a, other.pk, other.start_price), 409, "deposit_required")
    assert_error(a.post("/deposits", {"lot_id": first.pk}), 409, "deposit_exists")


def test_a_bidder_may_not_outbid_their_own_lead(client, lot):
    a = _with_deposit(client, lot)
    bid(a, lot.pk, 100_000)
    assert_error(bid(a, lot.pk, 120_000), 409, "already_leading")


def test_bids_before_the_start_or_after_the_end_are_refused(client):
    later = SpecialFactory(preview_at=timezone.now() - timedelta(hours=1), starts_at=timezone.now() + timedelta(hours=1), ends_at=timezone.now() + timedelta(hours=2))
    upcoming = LotFactory(special=later, deposit=0)
    a = bidder(client)
    assert_error(bid(a, upcoming.pk, upcoming.start_price), 409, "lot_not_open")
    ended = LotFactory(deposit=0)
    Lot.objects.filter(pk=ended.pk).update(ends_at=timezone.now() - timedelta(milliseconds=1))
    assert_error(bid(a, ended.pk, ended.start_price), 409, "lot_not_open")


def test_a_bid_one_millisecond_after_the_end_is_refused_without_any_job(user):
    lot = LotFactory(deposit=0)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(milliseconds=1))
    from auction.errors import LotNotOpen

    with pytest.raises(LotNotOpen):
        bid_place(lot_id=lot.pk, user=user, price=lot.start_price)
    assert not Bid.objects.exists()


@pytest.mark.parametrize("price", [0, -1, "abc", 10**13, 1.5, None, True, False])
def test_absurd_prices_are_validation_errors(client, lot, price):
    a = _with_deposit(client, lot)
    assert_error(a.post(f"/lots/{lot.pk}/bids", {"price": price}), 422, "validation_error")


def test_the_api_document_gives_a_price_its_bounds(api):
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    for schema, field in (("BidIn", "price"), ("AutoBidIn", "max_price")):
        assert schemas[schema]["properties"][field] | {"title": ""} == {
            "type": "integer", "minimum": 1, "maximum": MAX_FEN, "description": "fen", "title": ""}


def test_bidding_needs_a_token_and_a_real_lot(api, client, lot):
    assert_error(api.post(f"/lots/{lot.pk}/bids", {"price": 100_000}), 401, "unauthenticated")
    assert_error(bidder(client).post("/lots/999999/bids", {"price": 100_000}), 404, "not_found")


def test_a_lot_id_past_any_row_is_not_found(client):
    a = bidder(client)
    for too_large in (2**63, 10**30):
        assert_error(bid(a, too_large, 100_000), 404, "not_found")
        assert_error(a.put(f"/lots/{too_large}/auto-bid", {"max_price": 100_000}), 404, "not_found")
    assert_error(ApiClient(client, token="no-such-token").post(f"/lots/{10**30}/bids", {"price": 100_000}), 401, "unauthenticated")


def test_the_bid_checks_its_token_in_the_lot_read_and_refuses_every_dead_one(client, lot):
    # The bid endpoint looks its token up inside its read of the lot: the same
    # refusals as everywhere else, before anything about the lot.
    a, b, c = _with_deposit(client, lot), _with_deposit(client, lot), _with_deposit(client, lot)
    unknown = ApiClient(client, token="no-such-token")
    for dead in (unknown, a, b, c):
        if dead is a:
            token_revoke(raw_token=a.token)
        if dead is b:
            User.objects.filter(pk=b.user.pk).update(is_active=False)
        if dead is c:
            AuthToken.objects.filter(user=c.user).update(expires_at=timezone.now())
        assert_error(bid(dead, lot.pk, 100_000), 401, "unauthenticated")
        assert_error(bid(dead, 999_999, 100_000), 401, "unauthenticated")
    assert not Bid.objects.exists()
    assert bid(_with_deposit(client, lot), lot.pk, 100_000).status_code == 201


def test_a_bid_in_the_last_five_minutes_extends_the_lot(client):
    special = SpecialFactory(extension_seconds=300)
    lot = LotFactory(special=special, deposit=0)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() + timedelta(seconds=60))
    a, b = bidder(client), bidder(client)
    before = timezone.now()
    bid(a, lot.pk, lot.start_price)
    lot.refresh_from_db()
    assert before + timedelta(seconds=299) <= lot.ends_at <= timezone.now() + timedelta(seconds=300)
    first_extension = lot.ends_at
    body = bid(b, lot.pk, lot.next_min_bid()).json()
    lot.refresh_from_db()
    assert lot.ends_at >= first_extension  # repeats without limit
    assert body["lot"]["ends_at"]


def test_a_bid_well_before_the_end_does_not_extend(client):
    lot = LotFactory(deposit=0)
    ends_at = lot.ends_at
    bid(bidder(client), lot.pk, lot.start_price)
    lot.refresh_from_db()
    assert lot.ends_at == ends_at


def test_anti_sniping_off_when_the_window_is_zero(client):
    special = SpecialFactory(extension_seconds=0)
    lot = LotFactory(special=special, deposit=0)
    ends_at = timezone.now() + timedelta(seconds=30)
    Lot.objects.filter(pk=lot.pk).update(ends_at=ends_at)
    bid(bidder(client), lot.pk, lot.start_price)
    lot.refresh_from_db()
    assert lot.ends_at == ends_at


def test_staggered_ends_put_lot_k_k_intervals_after_the_special(client):
    special = SpecialFactory(stagger_seconds=60)
    lots = [LotFactory(special=special, position=k) for k in range(3)]
    assert [lot.ends_at - special.ends_at for lot in lots] == [timedelta(0), timedelta(seconds=60), timedelta(seconds=120)]


def test_the_bid_list_shows_bids_newest_first_masked(client):
    lot = LotFactory(deposit=0)
    bid(bidder(client, "王五"), lot.pk, lot.start_price)
    bid(bidder(client, "赵六"), lot.pk, lot.start_price + 10_000)
    items = bidder(client).get(f"/lots/{lot.pk}/bids").json()["items"]
    assert [(item["bidder"], item["price"]) for item in items] == [("赵**", lot.start_price + 10_000), ("王**", lot.start_price)]


# Proxy bids (代理出价) -----------------------------------------------------------


def test_setting_a_proxy_while_not_leading_bids_at_once(client, lot):
    a = _with_deposit(client, lot)
    response = a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    assert response.status_code == 200, response.content
    assert response.json()["max_price"] == 300_000
    assert response.json()["lot"]["current_price"] == 100_000
    assert a.get(f"/lots/{lot.pk}").json()["my"] == {"deposit_status": "held", "leading": True, "auto_bid_max": 300_000, "barred": False}


def test_a_rival_bid_is_answered_in_the_same_response(client, lot):
    a, b = _with_deposit(client, lot), _with_deposit(client, lot)
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    body = bid(b, lot.pk, 150_000).json()
    # A answers one step above B: 150,000 + 10,000
    assert body["lot"]["current_price"] == 160_000
    lot.refresh_from_db()
    assert lot.leader_id == a.user.pk


def test_a_proxy_stops_at_its_maximum(client, lot):
    a, b = _with_deposit(client, lot), _with_deposit(client, lot)
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 200_000})
    bid(b, lot.pk, 250_000)
    lot.refresh_from_db()
    assert (lot.leader_id, lot.current_price) == (b.user.pk, 250_000)


def test_two_proxies_fight_and_the_higher_wins_one_step_above_the_other(client, lot):
    a, b = _with_deposit(client, lot), _with_deposit(client, lot)
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    b.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 500_000})
    lot.refresh_from_db()
    assert (lot.leader_id, lot.current_price) == (b.user.pk, 310_000)
    prices = list(Bid.objects.filter(lot=lot).order_by("id").values_list("price", flat=True))
    assert prices == sorted(prices) and len(set(prices)) == len(prices)
    assert lot.bid_count == len(prices)


def test_at_equal_maximums_the_earlier_one_leads(client, lot):
    a, b = _with_deposit(client, lot), _with_deposit(client, lot)
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    b.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    lot.refresh_from_db()
    assert (lot.leader_id, lot.current_price) == (a.user.pk, 300_000)


def test_at_equal_maximums_a_later_proxy_only_pushes_the_earlier_to_its_maximum(client, lot):
    a, b, c = _with_deposit(client, lot), _with_deposit(client, lot), _with_deposit(client, lot)
    auto_bid_set(lot_id=lot.pk, user=a.user, max_price=300_000)  # earlier, leads at 100,000
    bid(c, lot.pk, 110_000)  # A answers 120,000
    auto_bid_set(lot_id=lot.pk, user=b.user, max_price=300_000)
    lot.refresh_from_db()
    assert (lot.leader_id, lot.current_price) == (a.user.pk, 300_000)


def test_a_proxy_below_the_next_minimum_is_refused(client, lot):
    a, b = _with_deposit(client, lot), _with_deposit(client, lot)
    bid(b, lot.pk, 100_000)
    body = assert_error(a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 105_000}), 409, "bid_too_low")
    assert body["detail"]["next_min_bid"] == 110_000


def test_withdrawing_a_proxy_keeps_its_bids(client, lot):
    a, b = _with_deposit(client, lot), _with_deposit(client, lot)
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    assert a.delete(f"/lots/{lot.pk}/auto-bid").status_code == 204
    assert not AutoBid.objects.filter(user=a.user).exists()
    bid(b, lot.pk, 110_000)
    lot.refresh_from_db()
    assert lot.leader_id == b.user.pk
    assert Bid.objects.filter(lot=lot, user=a.user).count() == 1


def test_proxies_need_a_deposit_and_an_open_lot(client, lot):
    a = bidder(client)
    assert_error(a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000}), 409, "deposit_required")
    assert_error(a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": -3}), 422, "validation_error")
    assert_error(a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": True}), 422, "validation_error")
