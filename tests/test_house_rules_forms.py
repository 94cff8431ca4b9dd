"""The house rules' editor fields and import columns: percent and yuan typed by people, checked like every term."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from wagtail.test.utils.form_data import nested_form_data, rich_text

from auction.models import Lot, Special
from cms.models import LotPage, SpecialPage
from tests.pages import special_page
from tests.test_editor_admin import _local, _lot_form, editor  # noqa: F401  (the fixture)
from tests.test_import_catalog import HEADER, refused_import, run_import, write_csv

pytestmark = pytest.mark.django_db


def _special_form(**fields) -> dict:
    now = timezone.now()
    data = {
        "title": "冬拍", "slug": "winter", "description": rich_text(""),
        "preview_at": _local(now + timedelta(days=1)),
        "starts_at": _local(now + timedelta(days=2)),
        "ends_at": _local(now + timedelta(days=3)),
        "deposit": "0", "extension_seconds": "300", "stagger_seconds": "0",
        "buyer_premium_rate": "12.50", "extension_cap_seconds": "600",
        "action-publish": "action-publish",
    }
    data.update(fields)
    return nested_form_data(data)


def test_an_editor_types_the_premium_in_percent_and_the_market_stores_basis_points(editor):  # noqa: F811
    index = special_page().get_parent()
    response = editor.post(reverse("wagtailadmin_pages:add", args=("cms", "specialpage", index.pk)), _special_form())
    assert response.status_code == 302, response.content[:2000]
    page = SpecialPage.objects.get(slug="winter")
    special = Special.objects.get(page_id=page.pk)
    assert (special.buyer_premium_rate, special.extension_cap_seconds) == (1250, 600)
    edit = editor.get(reverse("wagtailadmin_pages:edit", args=(page.pk,)))
    assert b'value="12.50"' in edit.content


@pytest.mark.parametrize("percent", ["12.345", "100.5", "-1"])
def test_a_premium_with_three_decimals_or_out_of_range_is_refused(editor, percent):  # noqa: F811
    index = special_page().get_parent()
    response = editor.post(
        reverse("wagtailadmin_pages:add", args=("cms", "specialpage", index.pk)), _special_form(buyer_premium_rate=percent)
    )
    assert response.status_code == 200
    assert "buyer_premium_rate" in response.context["form"].errors
    assert not SpecialPage.objects.filter(slug="winter").exists()


def test_a_buy_now_price_not_above_the_start_and_reserve_is_refused(editor):  # noqa: F811
    special = special_page()
    url = reverse("wagtailadmin_pages:add", args=("cms", "lotpage", special.pk))
    response = editor.post(url, _lot_form(reserve_price="2000", buy_now_price="2000"))
    assert response.status_code == 200
    assert "必须高于起拍价和保留价" in " ".join(response.context["form"].errors["buy_now_price"])

    response = editor.post(url, _lot_form(reserve_price="2000", buy_now_price="3000.50"))
    assert response.status_code == 302
    assert Lot.objects.get(page_id=LotPage.objects.get(slug="song-bowl").pk).buy_now_price == 300_050


RULES_HEADER = HEADER.replace("extension_seconds,", "extension_seconds,buyer_premium_percent,extension_cap_seconds,").replace(
    "increment,", "increment,buy_now_price,"
)
SPRING = "春季拍卖会,2030-04-28 10:00,2030-05-01T10:00:00+08:00,2030-05-01 20:00,5000,"


def test_the_import_reads_premium_cap_and_buy_now_columns(tmp_path):
    path = write_csv(tmp_path, SPRING + ",15.5,900,青花瓷瓶,1200,,,,8000,,", header=RULES_HEADER)
    run_import(path)
    lot = Lot.objects.select_related("special").get()
    assert (lot.special.buyer_premium_rate, lot.special.extension_cap_seconds, lot.buy_now_price) == (1550, 900, 800_000)


def test_the_import_refuses_bad_new_columns_by_row(tmp_path, english):
    path = write_csv(
        tmp_path, SPRING + ",15.555,,青花瓷瓶,1200,,,,8000,,", SPRING + ",15.555,,粉彩盘,1200,1500,,,1500,,", header=RULES_HEADER
    )
    errors = refused_import(path)
    assert errors[0] == "row 2: buyer_premium_percent: a percentage has at most two decimals"
    assert any(line.startswith("row 3: buy_now_price: The buy-now price (¥1,500) must be above") for line in errors)
    assert Lot.objects.count() == 0


def test_the_old_columns_alone_still_import_with_no_premium(tmp_path):
    path = write_csv(tmp_path, SPRING + ",青花瓷瓶,1200,,,,,")
    run_import(path)
    lot = Lot.objects.select_related("special").get()
    assert (lot.special.buyer_premium_rate, lot.buy_now_price) == (0, 0)
