"""Cheap polling: ``GET /lots/{id}`` answers with an ETag; If-None-Match -> 304 while nothing changed."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import LotFactory
from tests.market import bid, bidder, pay_deposit

pytestmark = pytest.mark.django_db


def test_an_unchanged_lot_is_304_with_one_query_and_200_after_a_bid(api, client):
    # given a lot polled once
    lot = LotFactory()
    first = api.get(f"/lots/{lot.pk}")
    assert first.status_code == 200
    etag = first["ETag"]
    assert etag.startswith('W/"')
    # when polled again with its tag: 304, no body, one query (the lot's row and its special's, by key)
    with CaptureQueriesContext(connection) as queries:
        again = api.get(f"/lots/{lot.pk}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    # The anonymous-read limit counts in the shared cache: on the embedded
    # default that is the cache table, not the market; the market is read once.
    market = [query["sql"] for query in queries if "django_cache" not in query["sql"]]
    assert len(market) == 1, market
    # when someone bids: the same tag is a 200 with the new price and a new tag
    buyer = bidder(client, "贝乙")
    pay_deposit(buyer, lot_id=lot.pk)
    assert bid(buyer, lot.pk, 100_000).status_code == 201
    after = api.get(f"/lots/{lot.pk}", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.json()["current_price"] == 100_000
    assert after["ETag"] != etag
    assert api.get(f"/lots/{lot.pk}", headers={"If-None-Match": after["ETag"]}).status_code == 304


def test_the_tag_follows_the_callers_own_view(api, client):
    # given a bidder and an anonymous poller of the same lot
    lot = LotFactory()
    buyer = bidder(client, "贝乙")
    anonymous_tag = api.get(f"/lots/{lot.pk}")["ETag"]
    mine_before = buyer.get(f"/lots/{lot.pk}")["ETag"]
    assert mine_before != anonymous_tag
    # when the bidder's deposit is paid (no bid, the lot's version stays)
    pay_deposit(buyer, lot_id=lot.pk)
    # then the bidder's view changed, the anonymous one did not
    mine = buyer.get(f"/lots/{lot.pk}", headers={"If-None-Match": mine_before})
    assert mine.status_code == 200 and mine.json()["my"]["deposit_status"] == "held"
    assert api.get(f"/lots/{lot.pk}", headers={"If-None-Match": anonymous_tag}).status_code == 304


def test_an_edited_description_changes_the_tag(api):
    lot = LotFactory()
    etag = api.get(f"/lots/{lot.pk}")["ETag"]
    lot.description = "<p>Now with provenance.</p>"
    lot.save(update_fields=["description", "updated_at"])
    edited = api.get(f"/lots/{lot.pk}", headers={"If-None-Match": etag})
    assert edited.status_code == 200 and "provenance" in edited.json()["description"]


def test_a_missing_lot_is_still_404_with_a_tag_sent(api):
    from tests.conftest import assert_error

    assert_error(api.get("/lots/999999", headers={"If-None-Match": 'W/"999999-0-x"'}), 404, "not_found")
