"""When a special closes: one rule (auction.selectors.special_closes_at) for the
catalog, deposits, the stored status and the admin panel; they agree when a lot is unpublished."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.errors import LotNotOpen
from auction.models import Special
from auction.selectors import special_closes_at
from auction.services.deposits import deposit_request
from auction.services.settlement import special_advance
from cms.market_panels import special_market
from tests.factories import LotFactory, SpecialFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def special_with_a_hidden_late_lot():
    """The published lot ended a minute ago; an unpublished lot would end in an hour."""
    now = timezone.now()
    special = SpecialFactory(page_id=424242, deposit=10_000, ends_at=now - timedelta(minutes=1))
    LotFactory(special=special, ends_at=now - timedelta(minutes=1))
    LotFactory(special=special, position=1, ends_at=now + timedelta(hours=1), is_published=False)
    return special


def test_an_unpublished_lot_keeps_no_special_open_anywhere(client, special_with_a_hidden_late_lot):
    special = special_with_a_hidden_late_lot
    assert special_closes_at(special) == special.ends_at
    # the catalog
    assert client.get(f"/api/v1/specials/{special.pk}").json()["status"] == "ended"
    ended = client.get("/api/v1/specials", {"status": "ended"}).json()["items"]
    assert [row["id"] for row in ended] == [special.pk]
    assert client.get("/api/v1/specials", {"status": "bidding"}).json()["count"] == 0
    # deposits
    with pytest.raises(LotNotOpen):
        deposit_request(user=UserFactory(), special_id=special.pk)
    # the stored status the jobs keep
    assert special_advance(special_id=special.pk) == "ended"
    assert Special.objects.get(pk=special.pk).status == "ended"
    # the admin's market panel
    market = special_market(page_id=special.page_id)
    assert market["status_label"] == "已结束" and market["closes_at"] == special.ends_at


def test_a_published_lot_moved_past_the_end_keeps_the_special_open_everywhere(client, special_with_a_hidden_late_lot):
    special = special_with_a_hidden_late_lot
    late = special.lots.get(is_published=False)
    special.lots.filter(pk=late.pk).update(is_published=True)
    assert special_closes_at(special) == late.ends_at
    assert client.get(f"/api/v1/specials/{special.pk}").json()["status"] == "bidding"
    deposit, _, created = deposit_request(user=UserFactory(), special_id=special.pk)
    assert created and deposit.status == "pending"
    assert special_advance(special_id=special.pk) == "bidding"
    assert special_market(page_id=special.page_id)["status_label"] == "拍卖中"
