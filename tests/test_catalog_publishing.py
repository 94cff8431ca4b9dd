"""Publishing pages writes the market rows; bids' state is never overwritten."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from auction.models import Lot, Special
from cms.models import LotPageImage
from tests.factories import ImageFactory, UserFactory
from tests.pages import lot_page, publish, special_page

# English wording checked here, as someone who picks English reads it (tests/test_translations.py: Chinese).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def test_publishing_a_special_and_lot_writes_their_market_rows():
    # given
    image = ImageFactory()
    special = special_page(title="秋拍", deposit=200_000, extension_seconds=120, stagger_seconds=60, cover=image)
    # when
    first = lot_page(special, title="第一件", start_price=120_050, reserve_price=150_000, images=[image])
    second = lot_page(special, title="第二件", start_price=50_000)
    # then
    market = Special.objects.get(page_id=special.pk)
    assert (market.title, market.deposit, market.extension_seconds, market.stagger_seconds) == ("秋拍", 200_000, 120, 60)
    assert market.cover_id == image.pk and market.is_published
    lots = {lot.page_id: lot for lot in Lot.objects.filter(special=market)}
    assert lots[first.pk].start_price == 120_050 and lots[first.pk].reserve_price == 150_000
    assert list(lots[first.pk].images.values_list("image_id", flat=True)) == [image.pk]
    assert lots[first.pk].cover_id == image.pk
    assert lots[first.pk].ends_at == market.ends_at
    assert lots[second.pk].position == 1
    assert lots[second.pk].ends_at == market.ends_at + timedelta(seconds=60)


def test_a_draft_changes_nothing_until_it_is_published():
    special = special_page()
    page = lot_page(special, title="原名", start_price=100_000)
    # when: an editor saves a draft
    page.title = "草稿名"
    page.start_price = 999_900
    page.save_revision()
    # then
    lot = Lot.objects.get(page_id=page.pk)
    assert (lot.title, lot.start_price) == ("原名", 100_000)


def test_changing_terms_before_bidding_opens_moves_them_and_the_staggered_ends():
    special = special_page(stagger_seconds=0)
    page = lot_page(special)
    lot_page(special)
    # when
    special.ends_at = special.ends_at + timedelta(hours=1)
    special.stagger_seconds = 30
    publish(special)
    # then
    market = Special.objects.get(page_id=special.pk)
    ends = list(Lot.objects.filter(special=market).order_by("position").values_list("ends_at", flat=True))
    assert ends == [market.ends_at, market.ends_at + timedelta(seconds=30)]
    assert Lot.objects.get(page_id=page.pk).ends_at == market.ends_at


def _open_bidding(special_page_obj):
    """Bidding opened a minute ago, as the clock would have it."""
    Special.objects.filter(page_id=special_page_obj.pk).update(starts_at=timezone.now() - timedelta(minutes=1))


def test_terms_freeze_when_bidding_opens_and_the_editor_is_told_why():
    special = special_page()
    page = lot_page(special, start_price=100_000)
    _open_bidding(special)
    page.start_price = 10_000
    with pytest.raises(ValidationError) as refused:
        page.full_clean()
    assert "start_price" in refused.value.message_dict
    message = refused.value.message_dict["start_price"][0]
    assert "Bidding opened at" in message and "frozen at ¥1,000" in message
    # no one has bid: the refusal does not say bids were made
    assert "bids were made" not in message and "can bid at any moment" in message
    Lot.objects.filter(page_id=page.pk).update(bid_count=3)
    with pytest.raises(ValidationError) as refused:
        page.full_clean()
    assert "bids were made against this term" in refused.value.message_dict["start_price"][0]


def test_text_and_images_stay_editable_after_bidding_opens():
    special = special_page()
    page = lot_page(special)
    _open_bidding(special)
    image = ImageFactory()
    page = page.specific
    page.title = "新标题"
    page.description = "<p>补充说明</p>"
    page.gallery_images = [LotPageImage(image=image)]
    page.full_clean()
    publish(page)
    lot = Lot.objects.get(page_id=page.pk)
    assert lot.title == "新标题" and "补充说明" in lot.description
    assert list(lot.images.values_list("image_id", flat=True)) == [image.pk]


def test_publishing_an_old_revision_never_overwrites_market_state():
    # given: a lot with bids on it, and an older revision with another title
    special = special_page()
    page = lot_page(special, start_price=100_000)
    old_revision = page.latest_revision
    page.title = "改过的名字"
    publish(page)
    _open_bidding(special)
    leader = UserFactory()
    ends_at = timezone.now() + timedelta(minutes=9)
    Lot.objects.filter(page_id=page.pk).update(current_price=180_000, leader=leader, bid_count=7, ends_at=ends_at, status="bidding")
    # when: an editor publishes the old revision
    old_revision.publish()
    # then: content follows the revision; price, leader, count, end time do not
    lot = Lot.objects.get(page_id=page.pk)
    assert lot.title == "青花瓷瓶"
    assert (lot.current_price, lot.leader_id, lot.bid_count, lot.ends_at, lot.status) == (180_000, leader.pk, 7, ends_at, "bidding")


def test_an_old_revision_with_other_terms_is_refused_once_bidding_opened():
    special = special_page()
    page = lot_page(special, start_price=100_000)
    page.start_price = 90_000
    publish(page)
    _open_bidding(special)
    stale = page.revisions.order_by("created_at", "id").first()
    with pytest.raises(ValidationError) as refused:
        stale.publish()
    assert "frozen at ¥900" in refused.value.message_dict["start_price"][0]
    assert Lot.objects.get(page_id=page.pk).start_price == 90_000


def test_special_times_must_be_in_order():
    special = special_page(publish_now=False)
    special.ends_at = special.starts_at - timedelta(minutes=1)
    with pytest.raises(ValidationError) as refused:
        special.full_clean()
    assert "ends_at" in refused.value.message_dict
    special.ends_at = special.starts_at + timedelta(hours=1)
    special.preview_at = special.starts_at + timedelta(minutes=1)
    with pytest.raises(ValidationError) as refused:
        special.full_clean()
    assert "preview_at" in refused.value.message_dict


def test_reserve_below_start_price_is_refused():
    special = special_page()
    page = lot_page(special, publish_now=False, start_price=100_000, reserve_price=50_000)
    with pytest.raises(ValidationError) as refused:
        page.full_clean()
    assert "reserve_price" in refused.value.message_dict


def test_unpublishing_hides_the_lot_and_keeps_its_row():
    special = special_page()
    page = lot_page(special)
    page.unpublish()
    lot = Lot.objects.get(page_id=page.pk)
    assert not lot.is_published


def test_a_lot_published_under_an_unpublished_special_stays_hidden_until_the_special_goes_live():
    special = special_page(publish_now=False)
    page = lot_page(special)
    market = Special.objects.get(page_id=special.pk)
    assert not market.is_published and Lot.objects.get(page_id=page.pk).special == market
    publish(special)
    market.refresh_from_db()
    assert market.is_published
