"""auction/db.py: what the hand-written SQL of the bid path builds its rows with."""

import pytest

from auction.db import loaded
from auction.models import Lot
from tests.factories import LotFactory

pytestmark = pytest.mark.django_db


def test_a_loaded_row_holds_what_was_read_and_fetches_the_rest_on_first_access(django_assert_num_queries):
    lot = LotFactory(title="青花瓷", current_price=120_000)

    row = loaded(Lot, id=lot.pk, current_price=120_000, bid_count=0)

    with django_assert_num_queries(0):
        assert (row.pk, row.current_price, row.bid_count) == (lot.pk, 120_000, 0)
    assert row.get_deferred_fields() >= {"title", "special_id"}
    with django_assert_num_queries(1):
        assert row.title == "青花瓷"
    assert not row._state.adding


def test_a_loaded_row_saves_only_its_own_fields_as_an_update():
    lot = LotFactory(title="青花瓷", current_price=0)

    row = loaded(Lot, id=lot.pk, current_price=130_000)
    row.save(update_fields=["current_price"])

    lot.refresh_from_db()
    assert (lot.title, lot.current_price) == ("青花瓷", 130_000)
    assert Lot.objects.count() == 1
