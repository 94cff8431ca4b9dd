"""Pages made the way an editor makes them: saved as a revision, then published."""

from datetime import timedelta

from django.utils import timezone

from cms.models import LotPage, LotPageImage, SpecialPage
from cms.site import ensure_auction_index


def publish(page):
    revision = page.save_revision()
    revision.publish()
    page.refresh_from_db()
    return page


def special_page(*, publish_now: bool = True, **fields) -> SpecialPage:
    now = timezone.now()
    values = {
        "title": "春季拍卖会",
        "preview_at": now - timedelta(hours=2),
        "starts_at": now + timedelta(hours=1),
        "ends_at": now + timedelta(hours=3),
        "deposit": 0,
    }
    values.update(fields)
    page = ensure_auction_index().add_child(instance=SpecialPage(live=False, **values))
    return publish(page) if publish_now else page


def lot_page(special: SpecialPage, *, images=(), publish_now: bool = True, **fields) -> LotPage:
    values = {"title": "青花瓷瓶", "start_price": 100_000, "deposit": 50_000}
    values.update(fields)
    page = LotPage(live=False, **values)
    page.gallery_images = [LotPageImage(image=image, sort_order=index) for index, image in enumerate(images)]
    page = special.add_child(instance=page)
    return publish(page) if publish_now else page
