"""Editors in the Wagtail admin: yuan in, fen stored, clear refusals, preview."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

from auction.models import Lot, Special
from cms.models import LotPage, SpecialPage
from tests.pages import lot_page, special_page

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client, django_user_model):
    admin = django_user_model.objects.create_superuser("editor", "editor@example.com", "pw-editor-123")
    client.force_login(admin)
    return client


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _lot_form(**fields) -> dict:
    data = {
        "title": "宋代青瓷碗",
        "slug": "song-bowl",
        "description": rich_text("<p>品相完好</p>"),
        "start_price": "1200.50",
        "reserve_price": "0",
        "deposit": "500",
        "increment": "0",
        "buy_now_price": "0",
        "gallery_images": inline_formset([]),
        "action-publish": "action-publish",
    }
    data.update(fields)
    return nested_form_data(data)


def test_an_editor_types_yuan_and_the_market_stores_fen(editor):
    special = special_page()
    url = reverse("wagtailadmin_pages:add", args=("cms", "lotpage", special.pk))
    response = editor.post(url, _lot_form())
    assert response.status_code == 302, response.content[:2000]
    page = LotPage.objects.get(slug="song-bowl")
    assert page.live and page.start_price == 120_050
    lot = Lot.objects.get(page_id=page.pk)
    assert (lot.start_price, lot.deposit, lot.special.page_id) == (120_050, 50_000, special.pk)

    edit = editor.get(reverse("wagtailadmin_pages:edit", args=(page.pk,)))
    assert b'value="1200.50"' in edit.content


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"reserve_price": "1000"}, "reserve_price", "不能低于起拍价"),
        ({"start_price": "12.345"}, "start_price", ""),
        ({"deposit": "-5"}, "deposit", ""),
        ({"start_price": "0"}, "start_price", "必须大于 0"),
    ],
)
def test_bad_terms_are_refused_with_a_clear_message(editor, fields, field, message):
    special = special_page()
    url = reverse("wagtailadmin_pages:add", args=("cms", "lotpage", special.pk))
    response = editor.post(url, _lot_form(**fields))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert not LotPage.objects.filter(slug="song-bowl").exists() and not Lot.objects.exists()


def test_special_times_out_of_order_are_refused_in_the_form(editor):
    index = special_page().get_parent()
    now = timezone.now()
    url = reverse("wagtailadmin_pages:add", args=("cms", "specialpage", index.pk))
    response = editor.post(url, nested_form_data({
        "title": "冬拍", "slug": "winter", "description": rich_text(""),
        "preview_at": _local(now + timedelta(days=2)),
        "starts_at": _local(now + timedelta(days=1)),
        "ends_at": _local(now + timedelta(days=3)),
        "deposit": "0", "extension_seconds": "300", "stagger_seconds": "0", "buyer_premium_rate": "0", "extension_cap_seconds": "0",
        "action-publish": "action-publish",
    }))
    assert response.status_code == 200
    assert "preview_at" in response.context["form"].errors
    assert not SpecialPage.objects.filter(slug="winter").exists()


def test_frozen_terms_are_read_only_with_the_reason_and_text_still_saves(editor):
    # given: a lot whose special opened bidding five minutes ago, with no bid yet
    special = special_page()
    page = lot_page(special, start_price=100_000)
    Special.objects.filter(page_id=special.pk).update(starts_at=timezone.now() - timedelta(minutes=5))
    url = reverse("wagtailadmin_pages:edit", args=(page.pk,))
    # when: the editor opens the page
    shown = editor.get(url)
    # then: every term is disabled, its help text says why, and it does not claim bids that do not exist
    form = shown.context["form"]
    for name in ("start_price", "reserve_price", "deposit", "increment", "buy_now_price"):
        assert form.fields[name].disabled, name
    reason = str(form.fields["start_price"].help_text)
    assert "开拍" in reason and "已冻结" in reason and "已有出价" not in reason and "随时可能出价" in reason
    assert reason in shown.content.decode()
    assert 'name="start_price"' in shown.content.decode() and 'value="1000.00"' in shown.content.decode()

    # when: a request posts another start price with a corrected title
    accepted = editor.post(url, _lot_form(slug=page.slug, title="更正后的标题", start_price="900"))
    # then: nothing is refused; the text is published and the price stays the market's
    assert accepted.status_code == 302
    lot = Lot.objects.get(page_id=page.pk)
    assert (lot.title, lot.start_price) == ("更正后的标题", 100_000)
    assert LotPage.objects.get(pk=page.pk).start_price == 100_000

    # once someone has bid, the reason says so
    Lot.objects.filter(page_id=page.pk).update(bid_count=1)
    assert "已有出价" in str(editor.get(url).context["form"].fields["start_price"].help_text)


def test_a_special_shows_its_frozen_times_and_premium_read_only(editor):
    special = special_page()
    lot_page(special)
    Special.objects.filter(page_id=special.pk).update(starts_at=timezone.now() - timedelta(minutes=5))
    form = editor.get(reverse("wagtailadmin_pages:edit", args=(special.pk,))).context["form"]
    for name in ("preview_at", "starts_at", "ends_at", "deposit", "extension_seconds", "buyer_premium_rate"):
        assert form.fields[name].disabled and "已冻结" in str(form.fields[name].help_text), name
    assert not form.fields["title"].disabled


def test_terms_stay_editable_before_bidding_opens(editor):
    page = lot_page(special_page())
    form = editor.get(reverse("wagtailadmin_pages:edit", args=(page.pk,))).context["form"]
    assert not form.fields["start_price"].disabled


def test_saving_a_draft_leaves_the_market_alone_and_preview_renders_it(editor):
    special = special_page()
    page = lot_page(special, title="原标题")
    url = reverse("wagtailadmin_pages:edit", args=(page.pk,))
    data = _lot_form(slug=page.slug, title="草稿标题")
    del data["action-publish"]
    assert editor.post(url, data).status_code == 302
    assert Lot.objects.get(page_id=page.pk).title == "原标题"

    preview_url = reverse("wagtailadmin_pages:preview_on_edit", args=(page.pk,))
    assert editor.post(preview_url, data).json()["is_valid"] is True
    preview = editor.get(preview_url)
    assert preview.status_code == 200 and "草稿标题" in preview.content.decode()
