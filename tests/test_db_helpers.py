"""auction/db.py: what the hand-written SQL of the bid path builds its rows with."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection

from auction.db import datetime_from_db, datetime_to_db, loaded
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


@pytest.mark.parametrize("moment", [
    datetime(2026, 12, 1, 20, 30, 5, 123456, tzinfo=ZoneInfo("Asia/Shanghai")),
    datetime(2026, 12, 1, 0, 0, 0, tzinfo=UTC),  # no microseconds: Django writes none either
    datetime(2026, 1, 1, 7, 59, 59, 1, tzinfo=ZoneInfo("Asia/Shanghai")),  # the day before, in UTC
])
def test_datetimes_go_to_the_database_as_djangos_own_adapter_writes_them(moment):
    assert datetime_to_db(moment) == connection.ops.adapt_datetimefield_value(moment)


def test_a_datetime_read_by_hand_is_the_instant_the_orm_reads():
    moment = datetime(2026, 12, 1, 20, 30, 5, 123456, tzinfo=ZoneInfo("Asia/Shanghai"))
    lot = LotFactory(ends_at=moment)

    with connection.cursor() as cursor:
        cursor.execute("SELECT ends_at FROM auction_lot WHERE id = %s", [lot.pk])
        raw = cursor.fetchone()[0]

    assert datetime_from_db(raw) == Lot.objects.get(pk=lot.pk).ends_at == moment
    assert datetime_from_db(raw).utcoffset() == timedelta(0)


def test_the_database_keeps_datetimes_in_utc_which_the_hand_written_conversions_assume():
    assert settings.USE_TZ
    assert settings.DATABASES["default"].get("TIME_ZONE") is None
    assert connection.timezone == UTC
