"""An editor publishes a special and a lot in the Wagtail admin; the API shows them.

The whole journey runs for real: ``runserver`` on its own SQLite database,
headless Chromium typing into the admin, httpx reading ``/api/v1``.
"""

import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from PIL import Image

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

SHANGHAI = ZoneInfo("Asia/Shanghai")
WIDGET_FORMAT = "%Y-%m-%d %H:%M"  # Wagtail's default WAGTAIL_DATETIME_FORMAT
EXPLORER_URL = re.compile(r"/admin/pages/\d+/$")


def png_bytes(width: int = 800, height: int = 600) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (180, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def log_in(page, server) -> None:
    page.goto(f"{server.url}/admin/login/")
    page.fill('input[name="username"]', server.username)
    page.fill('input[name="password"]', server.password)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{server.url}/admin/")


def add_child_of(page, server, parent_title: str, page_type: str) -> None:
    """Open the explorer of ``parent_title`` (a row of the current listing), then "add child page"."""
    edit_link = page.locator("tbody tr", has_text=parent_title).locator('a[href$="/edit/"]').first
    parent_id = re.search(r"/admin/pages/(\d+)/edit/$", edit_link.get_attribute("href")).group(1)
    page.goto(f"{server.url}/admin/pages/{parent_id}/")
    page.locator('#w-slim-header-buttons a[href$="/add_subpage/"]').click()
    # With one allowed child type Wagtail skips the type chooser.
    page.wait_for_url(re.compile(rf"/admin/pages/(add/cms/[a-z]+/{parent_id}|{parent_id}/add_subpage)/$"))
    if "/add_subpage/" in page.url:
        page.locator(f'a[href*="/add/cms/{page_type}/"]').click()
    page.wait_for_url(re.compile(rf"/admin/pages/add/cms/{page_type}/{parent_id}/$"))


def type_datetime(page, name: str, value: datetime) -> None:
    field = page.locator(f'input[name="{name}"]')
    field.fill(value.strftime(WIDGET_FORMAT))
    field.press("Tab")  # closes the date-time picker, which re-validates the typed text
    assert field.input_value() == value.strftime(WIDGET_FORMAT)


def click_publish(page) -> None:
    """The footer's "Publish" sits in the dropdown under "Save draft"."""
    page.locator("footer .w-dropdown-button [data-w-dropdown-target=toggle]").click()
    page.locator('footer button[name="action-publish"]').click()


def upload_gallery_image(page, *, file_name: str, title: str) -> None:
    page.locator("#id_gallery_images-OPEN_MODAL").click()
    modal = page.locator(".modal")
    modal.locator('[role="tab"][href="#tab-upload"]').click()
    stem = file_name.rsplit(".", 1)[0]
    modal.locator('input[name="image-chooser-upload-file"]').set_input_files(
        {"name": file_name, "mimeType": "image/png", "buffer": png_bytes()}
    )
    title_input = modal.locator('input[name="image-chooser-upload-title"]')
    # Wagtail copies the file name into the title after a moment; type ours after that.
    expect(title_input).to_have_value(stem)
    title_input.fill(title)
    modal.locator("form[data-chooser-modal-creation-form] button[type=submit]").click()
    # In a MultipleChooserPanel an upload is chosen at once: the modal closes with one new item.
    modal.wait_for(state="hidden")
    expect(page.locator('input[name="gallery_images-TOTAL_FORMS"]')).to_have_value("1")


@pytest.fixture
def api(auction_server):
    with httpx.Client(base_url=f"{auction_server.url}/api/v1", trust_env=False, timeout=10) as client:
        yield client


def test_editor_publishes_a_special_and_a_lot_that_the_api_serves(page, auction_server, api):
    server = auction_server
    now = datetime.now(SHANGHAI).replace(second=0, microsecond=0)
    preview_at, starts_at, ends_at = now + timedelta(hours=1), now + timedelta(days=1), now + timedelta(days=2)
    special_title = "浏览器测试 秋季专场"
    lot_title = "浏览器测试 青花瓷瓶"

    # given: an editor in the admin, at the auction index
    log_in(page, server)
    page.goto(f"{server.url}/admin/pages/")

    # when: they add a special with its times and deposit, and publish it
    add_child_of(page, server, "拍卖 Auctions", "specialpage")
    page.fill('input[name="title"]', special_title)
    type_datetime(page, "preview_at", preview_at)
    type_datetime(page, "starts_at", starts_at)
    type_datetime(page, "ends_at", ends_at)
    page.fill('input[name="deposit"]', "2000")
    click_publish(page)
    page.wait_for_url(EXPLORER_URL)
    expect(page.locator("tbody tr", has_text=special_title)).to_be_visible()

    # and: a lot under it with an uploaded image, first with a reserve below the start price
    add_child_of(page, server, special_title, "lotpage")
    add_form_url = page.url
    page.fill('input[name="title"]', lot_title)
    upload_gallery_image(page, file_name="vase.png", title="青花瓷瓶 正面")
    page.fill('input[name="start_price"]', "1200.50")
    page.fill('input[name="reserve_price"]', "1000")
    page.fill('input[name="deposit"]', "300")
    click_publish(page)

    # then: the form comes back with the reason, and nothing is published
    expect(page.get_by_text("不能低于起拍价")).to_be_visible()  # the editor works in zh-hans
    assert page.url == add_form_url
    expect(page.locator('input[name="gallery_images-TOTAL_FORMS"]')).to_have_value("1")
    listed = api.get("/specials").json()
    special = next(item for item in listed["items"] if item["title"] == special_title)
    assert special["lot_count"] == 0

    # when: the editor fixes the reserve and publishes again
    page.fill('input[name="reserve_price"]', "1500")
    click_publish(page)
    page.wait_for_url(EXPLORER_URL)
    expect(page.locator("tbody tr", has_text=lot_title)).to_be_visible()

    # then: the API serves the special with the editor's terms, in fen
    listed = api.get("/specials").json()
    special = next(item for item in listed["items"] if item["title"] == special_title)
    assert special["status"] == "upcoming"
    assert special["deposit"] == 200_000
    assert special["lot_count"] == 1
    assert datetime.fromisoformat(special["preview_at"]) == preview_at
    assert datetime.fromisoformat(special["starts_at"]) == starts_at
    assert datetime.fromisoformat(special["ends_at"]) == ends_at

    detail = api.get(f"/specials/{special['id']}")
    assert detail.status_code == 200, detail.text
    (lot,) = detail.json()["lots"]
    assert lot["title"] == lot_title
    assert lot["start_price"] == 120_050
    assert lot["current_price"] == 0
    cover = lot["cover"]
    assert set(cover) >= {"url", "width", "height"}
    assert cover["width"] > 0 and cover["height"] > 0
    # the cover is a rendition the server really serves (media served by Django in the embedded default)
    assert cover["url"].startswith(f"{server.url}/media/"), cover
    image = api.get(cover["url"])
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/")

    lot_detail = api.get(f"/lots/{lot['id']}")
    assert lot_detail.status_code == 200, lot_detail.text
    body = lot_detail.json()
    assert body["start_price"] == 120_050
    assert body["deposit"] == 30_000
    assert len(body["images"]) == 1
    assert set(body["images"][0]) >= {"url", "width", "height"}
