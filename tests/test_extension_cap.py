"""Anti-sniping cap (optional per special): extensions never move a lot past its original end plus the cap."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.models import Lot, Special
from tests.factories import LotFactory, SpecialFactory
from tests.market import bid, bidder

pytestmark = pytest.mark.django_db


def _closing_lot(**special_fields) -> Lot:
    """A lot whose original end (the special's) is a minute away."""
    special = SpecialFactory(ends_at=timezone.now() + timedelta(seconds=60), **special_fields)
    return LotFactory(special=special, deposit=0)


def test_extensions_stop_at_the_original_end_plus_the_cap(client):
    lot = _closing_lot(extension_seconds=300, extension_cap_seconds=120)
    original = lot.ends_at
    a, b = bidder(client), bidder(client)
    assert bid(a, lot.pk, lot.start_price).status_code == 201
    lot.refresh_from_db()
    assert lot.ends_at == original + timedelta(seconds=120)  # not now + 300 s
    response = bid(b, lot.pk, lot.next_min_bid())
    assert response.status_code == 201
    lot.refresh_from_db()
    assert lot.ends_at == original + timedelta(seconds=120)


def test_a_cap_of_0_leaves_extensions_unlimited(client):
    lot = _closing_lot(extension_seconds=300, extension_cap_seconds=0)
    before = timezone.now()
    assert bid(bidder(client), lot.pk, lot.start_price).status_code == 201
    lot.refresh_from_db()
    assert lot.ends_at >= before + timedelta(seconds=299)


def test_the_cap_counts_from_a_staggered_lots_own_original_end(client):
    special = SpecialFactory(ends_at=timezone.now() - timedelta(seconds=30), stagger_seconds=60, extension_seconds=300,
                             extension_cap_seconds=90)
    lot = LotFactory(special=special, position=1, deposit=0)  # ends 30 s from now
    assert bid(bidder(client), lot.pk, lot.start_price).status_code == 201
    lot.refresh_from_db()
    assert lot.ends_at == Special.objects.get(pk=special.pk).lot_ends_at(1) + timedelta(seconds=90)
