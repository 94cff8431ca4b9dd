"""The coupon centre through the API: what can be claimed, claiming, my coupons, expiry.

Coupons on orders and payments are in tests/test_coupon_orders.py; races in
tests/test_coupon_races.py.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.models import Coupon, Event, UserCoupon
from tests.conftest import assert_error
from tests.factories import CouponFactory, SpecialFactory
from tests.market import bidder, sweep

pytestmark = pytest.mark.django_db

COUPON_FIELDS = {
    "id", "title", "amount", "min_amount", "special_id", "claim_starts_at", "claim_ends_at", "valid_from",
    "valid_until", "valid_days", "remaining", "per_user_limit", "claimed_by_me",
}


def claim(api, coupon: Coupon):
    return api.post(f"/coupons/{coupon.pk}/claim")


def claimed(api, coupon: Coupon) -> dict:
    response = claim(api, coupon)
    assert response.status_code == 201, response.content
    return response.json()


# --- the coupon centre ------------------------------------------------------------


def test_the_centre_lists_what_can_be_claimed_now_with_remaining(client, api):
    # given
    now = timezone.now()
    open_now = CouponFactory(title="全场券", total=5)
    special = SpecialFactory()
    for_special = CouponFactory(title="专场券", special=special, min_amount=200_000)
    sold_out = CouponFactory(title="已抢光", total=1)
    claimed(bidder(client), sold_out)
    CouponFactory(title="未开始", claim_starts_at=now + timedelta(hours=1))
    CouponFactory(title="已结束", claim_starts_at=now - timedelta(days=2), claim_ends_at=now - timedelta(days=1))
    CouponFactory(title="已停用", enabled=False)
    CouponFactory(title="已过期", valid_days=None, valid_from=now - timedelta(days=3), valid_until=now - timedelta(minutes=1))
    # when
    body = api.get("/coupons").json()
    # then
    assert body["count"] == 3
    by_title = {item["title"]: item for item in body["items"]}
    assert set(by_title) == {"全场券", "专场券", "已抢光"}
    assert set(by_title["全场券"]) == COUPON_FIELDS
    assert by_title["全场券"]["remaining"] == 5 and by_title["已抢光"]["remaining"] == 0
    assert by_title["专场券"]["special_id"] == special.pk and by_title["专场券"]["min_amount"] == 200_000
    assert by_title["全场券"]["amount"] == open_now.amount and by_title["全场券"]["claimed_by_me"] is None
    assert by_title["全场券"]["claim_ends_at"].endswith("+08:00")
    assert by_title["全场券"]["valid_days"] == 7 and by_title["全场券"]["valid_from"] is None
    assert by_title["专场券"]["id"] == for_special.pk
    page = api.get("/coupons", {"limit": 1, "offset": 2}).json()
    assert page["count"] == 3 and len(page["items"]) == 1


def test_with_a_token_the_centre_says_how_many_i_hold(client):
    coupon = CouponFactory(per_user_limit=3)
    me, other = bidder(client), bidder(client)
    claimed(me, coupon)
    claimed(me, coupon)
    claimed(other, coupon)
    [item] = me.get("/coupons").json()["items"]
    assert (item["claimed_by_me"], item["remaining"]) == (2, 97)
    assert_error(me.get("/coupons", headers={"Authorization": "Bearer stale"}), 401, "unauthenticated")


# --- claiming --------------------------------------------------------------------------


def test_a_claim_gives_a_user_coupon_valid_for_n_days_from_now(client):
    coupon = CouponFactory(valid_days=7, amount=5_000)
    me = bidder(client)
    before = timezone.now()

    body = claimed(me, coupon)

    assert set(body) >= {"id", "coupon", "status", "valid_from", "valid_until"}
    assert body["status"] == "unused" and body["order_no"] is None
    assert set(body["coupon"]) == COUPON_FIELDS
    assert body["coupon"]["id"] == coupon.pk and body["coupon"]["remaining"] == 99 and body["coupon"]["claimed_by_me"] == 1
    row = UserCoupon.objects.get(pk=body["id"])
    assert before <= row.valid_from <= timezone.now() and row.valid_until == row.valid_from + timedelta(days=7)
    assert body["valid_until"].endswith("+08:00")
    assert Coupon.objects.get(pk=coupon.pk).issued == 1
    assert Event.objects.filter(kind="coupon.claimed", user_coupon=row, coupon=coupon, actor="user").count() == 1


def test_a_coupon_with_fixed_dates_gives_those_dates(client):
    now = timezone.now()
    start, end = now + timedelta(days=1), now + timedelta(days=10)
    coupon = CouponFactory(valid_days=None, valid_from=start, valid_until=end)
    row = UserCoupon.objects.get(pk=claimed(bidder(client), coupon)["id"])
    assert (row.valid_from, row.valid_until) == (start, end)


def test_claiming_outside_the_window_or_a_disabled_coupon_is_not_claimable(client):
    now = timezone.now()
    me = bidder(client)
    early = CouponFactory(claim_starts_at=now + timedelta(minutes=5))
    late = CouponFactory(claim_starts_at=now - timedelta(days=2), claim_ends_at=now - timedelta(seconds=1))
    disabled = CouponFactory(enabled=False)
    lapsed = CouponFactory(valid_days=None, valid_from=now - timedelta(days=2), valid_until=now - timedelta(seconds=1))
    for coupon in (early, late, disabled, lapsed):
        assert_error(claim(me, coupon), 409, "coupon_not_claimable")
    assert not UserCoupon.objects.exists()
    assert set(Coupon.objects.values_list("issued", flat=True)) == {0}


def test_claiming_needs_a_token_and_an_existing_coupon(client, api):
    coupon = CouponFactory()
    assert_error(claim(api, coupon), 401, "unauthenticated")
    assert_error(bidder(client).post("/coupons/999999/claim"), 404, "not_found")


def test_the_last_one_goes_and_then_the_coupon_is_sold_out(client):
    coupon = CouponFactory(total=2)
    first, second, third = bidder(client), bidder(client), bidder(client)
    claimed(first, coupon)
    claimed(second, coupon)
    body = assert_error(claim(third, coupon), 409, "coupon_sold_out")
    assert body["message"]
    coupon.refresh_from_db()
    assert coupon.issued == coupon.total == UserCoupon.objects.filter(coupon=coupon).count() == 2


def test_a_user_claims_up_to_the_per_user_limit(client):
    coupon = CouponFactory(per_user_limit=2)
    me = bidder(client)
    numbers = [UserCoupon.objects.get(pk=claimed(me, coupon)["id"]).claim_number for _ in range(2)]
    assert numbers == [1, 2]
    body = assert_error(claim(me, coupon), 409, "coupon_limit_reached")
    assert body["detail"] == {"per_user_limit": 2}
    assert Coupon.objects.get(pk=coupon.pk).issued == 2
    claimed(bidder(client), coupon)  # the limit is per user


def test_the_limit_is_told_before_sold_out_to_someone_who_holds_one(client):
    coupon = CouponFactory(total=1)
    me = bidder(client)
    claimed(me, coupon)
    assert_error(claim(me, coupon), 409, "coupon_limit_reached")
    assert_error(claim(bidder(client), coupon), 409, "coupon_sold_out")


# --- my coupons and expiry -------------------------------------------------------


def test_my_coupons_are_mine_only_and_filter_by_status(client):
    me, other = bidder(client), bidder(client)
    first, second = CouponFactory(), CouponFactory()
    mine = [claimed(me, first)["id"], claimed(me, second)["id"]]
    claimed(other, first)

    body = me.get("/me/coupons").json()

    assert body["count"] == 2 and [item["id"] for item in body["items"]] == mine[::-1]
    assert me.get("/me/coupons", {"status": "unused"}).json()["count"] == 2
    assert me.get("/me/coupons", {"status": "used"}).json()["count"] == 0
    assert me.get("/me/coupons", {"limit": 1}).json()["count"] == 2
    assert_error(me.get("/me/coupons", {"status": "weird"}), 422, "validation_error")
    assert_error(client.get("/api/v1/me/coupons"), 401, "unauthenticated")


def test_a_coupon_past_its_validity_shows_expired_everywhere_before_and_after_the_sweep(client):
    # given: one coupon whose validity has just ended, one still valid
    me = bidder(client)
    lapsed_id = claimed(me, CouponFactory())["id"]
    valid_id = claimed(me, CouponFactory())["id"]
    UserCoupon.objects.filter(pk=lapsed_id).update(valid_until=timezone.now() - timedelta(seconds=1))

    def shown() -> dict:
        items = me.get("/me/coupons").json()["items"]
        expired = {item["id"] for item in me.get("/me/coupons", {"status": "expired"}).json()["items"]}
        unused = {item["id"] for item in me.get("/me/coupons", {"status": "unused"}).json()["items"]}
        return {"statuses": {item["id"]: item["status"] for item in items}, "expired": expired, "unused": unused}

    # then: expired at once, before any job
    before = shown()
    assert before == {"statuses": {lapsed_id: "expired", valid_id: "unused"}, "expired": {lapsed_id}, "unused": {valid_id}}
    assert UserCoupon.objects.get(pk=lapsed_id).status == "unused"
    # when the sweep runs, twice
    sweep()
    events = Event.objects.filter(kind="coupon.expired").count()
    sweep()
    # then: the stored status follows; what clients see does not change; the second run did nothing
    assert UserCoupon.objects.get(pk=lapsed_id).status == "expired"
    assert shown() == before
    assert events == Event.objects.filter(kind="coupon.expired").count() == 1


def test_the_openapi_document_describes_the_coupon_endpoints(client):
    document = client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    assert "get" in paths["/api/v1/coupons"] and "post" in paths["/api/v1/coupons/{coupon_id}/claim"]
    assert "get" in paths["/api/v1/me/coupons"]
    schemas = document["components"]["schemas"]
    assert set(schemas["CouponOut"]["properties"]) == COUPON_FIELDS
    assert set(schemas["UserCouponOut"]["properties"]) >= {"id", "coupon", "status", "valid_from", "valid_until"}
    assert schemas["UserCouponStatus"]["enum"] == ["unused", "locked", "used", "expired"]
    assert schemas["CouponOut"]["properties"]["amount"]["type"] == "integer"
    assert "user_coupon_id" in schemas["QuoteIn"]["properties"] and "user_coupon_id" in schemas["PayIn"]["properties"]


def test_a_claim_racing_an_edit_of_the_terms_claims_with_the_new_terms():
    from auction.services.coupons import _claim_once, coupon_claim, coupon_save
    from tests.factories import UserFactory

    # given: a claim read the terms, then an operator changed them
    coupon = CouponFactory(amount=10_000)
    read_by_the_claim = Coupon.objects.get(pk=coupon.pk)
    edited = Coupon.objects.get(pk=coupon.pk)
    edited.amount = 5_000
    coupon_save(coupon=edited, staff="ops")
    # then the stale attempt issues nothing, and the claim reads again
    assert _claim_once(coupon=read_by_the_claim, user=UserFactory(), now=timezone.now()) is None
    assert coupon_claim(coupon_id=coupon.pk, user=UserFactory()).amount == 5_000
    assert Coupon.objects.get(pk=coupon.pk).issued == UserCoupon.objects.count() == 1
