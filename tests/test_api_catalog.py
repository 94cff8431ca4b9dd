"""The public catalog through the HTTP API (CONTRACT.md, Catalog)."""

from datetime import timedelta

import pytest
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auction.models import LotImage
from tests.conftest import assert_error
from tests.factories import BidFactory, ImageFactory, LotFactory, SpecialFactory, UserFactory

pytestmark = pytest.mark.django_db


def _special_at(phase: str, **fields):
    now = timezone.now()
    times = {
        "upcoming": (now + timedelta(days=1), now + timedelta(days=2), now + timedelta(days=3)),
        "preview": (now - timedelta(hours=1), now + timedelta(days=1), now + timedelta(days=2)),
        "bidding": (now - timedelta(hours=2), now - timedelta(hours=1), now + timedelta(hours=1)),
        "ended": (now - timedelta(days=3), now - timedelta(days=2), now - timedelta(days=1)),
    }[phase]
    values = {"title": phase, "preview_at": times[0], "starts_at": times[1], "ends_at": times[2]}
    values.update(fields)
    return SpecialFactory(**values)


def test_specials_list_shows_each_phase_and_filters_by_status(api):
    for phase in ("upcoming", "preview", "bidding", "ended"):
        special = _special_at(phase)
        LotFactory(special=special)
    SpecialFactory(title="hidden", is_published=False)

    everything = api.get("/specials").json()
    assert everything["count"] == 4
    assert {item["title"]: item["status"] for item in everything["items"]} == {
        "upcoming": "upcoming", "preview": "preview", "bidding": "bidding", "ended": "ended",
    }
    for phase in ("upcoming", "preview", "bidding", "ended"):
        filtered = api.get("/specials", {"status": phase}).json()
        assert [item["title"] for item in filtered["items"]] == [phase]


def test_a_special_stays_bidding_while_an_extended_lot_is_still_open(api):
    special = _special_at("bidding", ends_at=timezone.now() - timedelta(minutes=1))
    LotFactory(special=special, ends_at=timezone.now() + timedelta(minutes=4))
    body = api.get(f"/specials/{special.pk}").json()
    assert body["status"] == "bidding"
    assert [item["title"] for item in api.get("/specials", {"status": "bidding"}).json()["items"]] == ["bidding"]


def test_special_fields_are_the_contract(api):
    special = _special_at("preview", deposit=200_000, cover=ImageFactory())
    LotFactory(special=special)
    LotFactory(special=special, is_published=False)
    item = api.get("/specials").json()["items"][0]
    assert set(item) == {"id", "title", "cover", "status", "preview_at", "starts_at", "ends_at", "deposit", "lot_count"}
    assert item["deposit"] == 200_000 and item["lot_count"] == 1
    assert item["starts_at"].endswith("+08:00")
    assert set(item["cover"]) == {"url", "width", "height"}
    assert item["cover"]["url"].startswith("http://testserver/media/")
    assert (item["cover"]["width"], item["cover"]["height"]) == (750, 500)


def test_lists_take_limit_and_offset(api):
    for _ in range(5):
        _special_at("bidding")
    page = api.get("/specials", {"limit": 2, "offset": 3}).json()
    assert page["count"] == 5 and len(page["items"]) == 2
    assert_error(api.get("/specials", {"limit": 0}), 422, "validation_error")
    assert_error(api.get("/specials", {"limit": -1}), 422, "validation_error")
    assert_error(api.get("/specials", {"offset": "x"}), 422, "validation_error")
    assert_error(api.get("/specials", {"status": "nonsense"}), 422, "validation_error")


def test_special_detail_lists_its_published_lots_in_order(api):
    special = _special_at("bidding", description="<p>瓷器专场</p>")
    second = LotFactory(special=special, position=1, title="second")
    first = LotFactory(special=special, position=0, title="first")
    LotFactory(special=special, position=2, is_published=False)
    body = api.get(f"/specials/{special.pk}").json()
    assert body["description"] == "<p>瓷器专场</p>"
    assert [lot["id"] for lot in body["lots"]] == [first.pk, second.pk]
    assert set(body["lots"][0]) == {
        "id", "special_id", "title", "cover", "status", "start_price", "current_price", "bid_count", "ends_at",
    }
    assert body["lots"][0]["current_price"] == 0 and body["lots"][0]["status"] == "bidding"


def test_unknown_or_unpublished_things_are_not_found(api):
    hidden = SpecialFactory(is_published=False)
    hidden_lot = LotFactory(special=hidden)
    assert_error(api.get(f"/specials/{hidden.pk}"), 404, "not_found")
    assert_error(api.get("/specials/999999"), 404, "not_found")
    assert_error(api.get(f"/lots/{hidden_lot.pk}"), 404, "not_found")
    assert_error(api.get(f"/lots/{hidden_lot.pk}/bids"), 404, "not_found")
    assert_error(api.get("/specials/abc"), 404, "not_found")
    assert_error(api.get("/no/such/path"), 404, "not_found")


def test_lot_detail_has_terms_images_and_the_server_clock(api):
    lot = LotFactory(start_price=120_050, reserve_price=200_000, deposit=30_000)
    images = [ImageFactory(), ImageFactory()]
    for index, image in enumerate(images):
        LotImage.objects.create(lot=lot, image=image, sort_order=index)
    before = timezone.now()
    body = api.get(f"/lots/{lot.pk}").json()
    assert body["start_price"] == 120_050 and body["deposit"] == 30_000
    assert body["next_min_bid"] == 120_050
    assert body["increment"] == 10_000  # ¥1,200.50 is on the ¥100 step
    assert body["reserve_met"] is False
    assert body["my"] is None
    assert len(body["images"]) == 2 and all(set(image) == {"url", "width", "height"} for image in body["images"])
    assert body["images"][0]["width"] <= 1080 and body["images"][0]["height"] <= 1080
    assert body["server_time"].endswith("+08:00")
    from datetime import datetime

    assert datetime.fromisoformat(body["server_time"]) >= before


def test_lot_detail_after_bids_steps_up_the_ladder(api):
    leader = UserFactory()
    lot = LotFactory(start_price=50_000, reserve_price=0, current_price=99_000, bid_count=3, leader=leader)
    body = api.get(f"/lots/{lot.pk}").json()
    assert body["next_min_bid"] == 99_000 + 5_000
    assert body["reserve_met"] is True


def test_fixed_increment_replaces_the_ladder(api):
    lot = LotFactory(start_price=50_000, increment=1_000, current_price=60_000, bid_count=1, leader=UserFactory())
    assert api.get(f"/lots/{lot.pk}").json()["next_min_bid"] == 61_000


def test_my_view_with_a_token(user_api, user):
    lot = LotFactory(current_price=100_000, bid_count=1, leader=user)
    body = user_api.get(f"/lots/{lot.pk}").json()
    assert body["my"] == {"deposit_status": None, "leading": True, "auto_bid_max": None, "barred": False}


def test_a_bad_token_on_a_public_endpoint_is_unauthenticated(api):
    lot = LotFactory()
    response = api.get(f"/lots/{lot.pk}", headers={"Authorization": "Bearer not-a-token"})
    assert_error(response, 401, "unauthenticated")
    assert_error(api.get("/specials", headers={"Authorization": "Basic abc"}), 401, "unauthenticated")


def test_bids_are_newest_first_with_masked_bidders(api):
    lot = LotFactory()
    zhang = UserFactory(nickname="张三丰")
    li = UserFactory(nickname="李")
    first = BidFactory(lot=lot, user=zhang, price=100_000)
    second = BidFactory(lot=lot, user=li, price=105_000)
    body = api.get(f"/lots/{lot.pk}/bids").json()
    assert body["count"] == 2
    assert [(item["id"], item["price"], item["bidder"]) for item in body["items"]] == [
        (second.pk, 105_000, "李**"),
        (first.pk, 100_000, "张**"),
    ]
    assert set(body["items"][0]) == {"id", "price", "bidder", "created_at"}
    assert "openid" not in str(body) and str(zhang.pk) not in [str(item["bidder"]) for item in body["items"]]


def test_no_bids_yet_is_an_empty_list(api):
    lot = LotFactory()
    assert api.get(f"/lots/{lot.pk}/bids").json() == {"items": [], "count": 0}


def _queries_for_special_with(api, lots: int) -> int:
    special = _special_at("bidding", cover=ImageFactory())
    covers = [ImageFactory(), ImageFactory(), ImageFactory()]
    for position in range(lots):
        LotFactory(special=special, position=position, cover=covers[position % 3])
    api.get(f"/specials/{special.pk}")  # renditions are made once, at publish or first sight
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/specials/{special.pk}")
    assert response.status_code == 200 and len(response.json()["lots"]) == lots
    return len(queries)


def test_a_special_with_200_lots_takes_as_many_queries_as_one_with_2(api):
    small = _queries_for_special_with(api, 2)
    large = _queries_for_special_with(api, 200)
    assert large == small
    # The anonymous read's throttle counter is one more, where the cache is a table (the embedded default).
    assert large <= 6 + isinstance(caches["default"], DatabaseCache)


def test_the_specials_list_takes_a_constant_number_of_queries(api):
    for _ in range(3):
        LotFactory(special=_special_at("bidding", cover=ImageFactory()))
    api.get("/specials")
    with CaptureQueriesContext(connection) as few:
        api.get("/specials")
    for _ in range(20):
        LotFactory(special=_special_at("bidding", cover=ImageFactory()))
    api.get("/specials", {"limit": 100})
    with CaptureQueriesContext(connection) as many:
        assert len(api.get("/specials", {"limit": 100}).json()["items"]) == 23
    assert len(many) == len(few)
