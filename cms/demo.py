"""A demo catalog for a fresh install: three specials, one in each phase a bidder meets,
and a coupon centre (cms.demo_coupons), from the data in cms.demo_catalog with
pictures drawn by cms.demo_pictures.

Everything is made the way an editor makes it (pages saved as a revision, then
published), so the market rows come from the same publishing path as in
production and the demo shows nothing the admin could not have produced.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO

from django.conf import settings
from django.core.files.images import ImageFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from wagtail.images import get_image_model

from auction import selectors
from auction.models import Bid, Coupon, Lot, Order, Special, SpecialStatus, User
from auction.money import format_yuan
from auction.services.accounts import user_from_openid
from auction.services.market_rows import market_rows_update
from auction.services.overdue import order_expire
from auction.services.settlement import lot_settle
from cms.demo_catalog import BIDDERS, CATALOG, DemoSpecial, yuan
from cms.demo_coupons import demo_coupons_seed, demo_coupons_summary
from cms.demo_pictures import demo_picture
from cms.models import LotPage, LotPageImage, SpecialPage
from cms.site import ensure_auction_index


@dataclass
class DemoResult:
    special_pages: list[SpecialPage] = field(default_factory=list)
    lot_count: int = 0
    image_count: int = 0
    bidders: list[User] = field(default_factory=list)
    coupons: list[Coupon] = field(default_factory=list)
    defaulted: Lot | None = None


def catalog_is_empty() -> bool:
    return not SpecialPage.objects.exists()


def demo_seed(*, now: datetime | None = None) -> DemoResult | None:
    """Seed the demo into an empty catalog; None when there is a catalog already."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    with transaction.atomic():
        # Checked inside the transaction so two `make run`s cannot both seed.
        if not catalog_is_empty():
            return None
        result = DemoResult()
        index = ensure_auction_index()
        for special in CATALOG:
            _seed_special(index, special, now, result)
        result.bidders = [user_from_openid(openid=openid, nickname=nickname) for openid, nickname in BIDDERS]
        result.defaulted = _seed_default(result, now=now)
        # The coupon centre: one of its coupons is for the special in bidding.
        bidding = next(number for number, special in enumerate(CATALOG) if special.starts_in <= timedelta(0) < special.ends_in)
        bidding_special = Special.objects.get(page_id=result.special_pages[bidding].pk)
        result.coupons = demo_coupons_seed(now=now, bidding_special=bidding_special, bidders=result.bidders)
    return result


def _seed_default(result: DemoResult, *, now: datetime) -> Lot:
    """The ended special's first lot was won by the last demo bidder, who never
    paid: a defaulted lot (逾期未付) for ops to re-auction. Played out through the
    same services as a real sale: settlement at the end, then the overdue."""
    ended = Special.objects.get(page_id=result.special_pages[-1].pk)
    lot = Lot.objects.filter(special=ended).order_by("position", "id").first()
    winner = result.bidders[-1]
    price = max(lot.start_price, lot.reserve_price) + yuan(1_000)
    Bid.objects.create(lot=lot, user=winner, price=price, is_auto=False, created_at=lot.ends_at - timedelta(minutes=3))
    market_rows_update(Lot.objects.filter(pk=lot.pk), current_price=price, leader=winner, bid_count=1)
    order = lot_settle(lot_id=lot.pk)
    Order.objects.filter(pk=order.pk).update(pay_deadline=now - timedelta(minutes=1))
    order_expire(order_id=order.pk)
    return Lot.objects.get(pk=lot.pk)


def _publish(page):
    page.save_revision().publish()
    page.refresh_from_db()
    return page


def _seed_special(index, special: DemoSpecial, now: datetime, result: DemoResult) -> None:
    cover_picture = demo_picture(kind=special.kind, hue=special.hue, headline=special.code, caption="DEMO SPECIAL")
    cover = _wagtail_image(f"{special.title} 封面", cover_picture, f"{special.code.lower()[:4]}cv.jpg")
    page = index.add_child(
        instance=SpecialPage(
            live=False,
            title=special.title,
            cover=cover,
            description=special.description,
            preview_at=now + special.preview_in,
            starts_at=now + special.starts_in,
            ends_at=now + special.ends_in,
            deposit=special.deposit,
            extension_seconds=special.extension_seconds,
            stagger_seconds=special.stagger_seconds,
            buyer_premium_rate=special.buyer_premium_rate,
        )
    )
    page = _publish(page)
    result.special_pages.append(page)
    result.image_count += 1
    for number, lot in enumerate(special.lots, start=1):
        hue = (special.hue + 0.07 * number) % 1.0
        images = [
            _wagtail_image(
                f"{lot.title} 图{view + 1}",
                demo_picture(
                    kind=special.kind, hue=hue, headline=f"LOT {number:02d}",
                    caption=f"DEMO {special.code} {view + 1}/{lot.image_count}", view=view,
                ),
                # Wagtail cuts long names short in rendition file names.
                f"{special.code.lower()[:4]}{number:02d}{view + 1}.jpg",
            )
            for view in range(lot.image_count)
        ]
        lot_page = LotPage(
            live=False,
            title=lot.title,
            description=lot.description,
            start_price=lot.start_price,
            reserve_price=lot.reserve_price,
            deposit=lot.deposit,
            increment=lot.increment,
            buy_now_price=lot.buy_now_price,
        )
        lot_page.gallery_images = [
            LotPageImage(image=image, sort_order=order, caption=image.title) for order, image in enumerate(images)
        ]
        _publish(page.add_child(instance=lot_page))
        result.lot_count += 1
        result.image_count += len(images)


def _wagtail_image(title: str, data: bytes, filename: str):
    # The admin's upload form fills size and hash; without them Wagtail's
    # duplicate detection would not recognise these files.
    image = get_image_model()(
        title=title,
        file=ImageFile(BytesIO(data), name=filename),
        file_size=len(data),
        file_hash=hashlib.sha1(data).hexdigest(),
    )
    image.save()
    return image


def demo_summary(result: DemoResult, *, now: datetime | None = None) -> list[str]:
    """What was seeded, as the API shows it, and how to start trying it."""
    now = now or timezone.now()
    page_ids = [page.pk for page in result.special_pages]
    rows = selectors.specials_list(now=now).filter(page_id__in=page_ids)
    specials = sorted(rows, key=lambda row: page_ids.index(row.page_id))
    lines = [_("demo: seeded %(specials)s specials, %(lots)s lots, %(images)s images, %(bidders)s bidders") % {
        "specials": len(specials), "lots": result.lot_count, "images": result.image_count, "bidders": len(result.bidders)}]
    for special in specials:
        status = special.status_at(now, closes_at=special.closes_at)
        deposit = _(", special deposit %(amount)s") % {"amount": format_yuan(special.deposit)} if special.deposit else ""
        ends = timezone.localtime(special.ends_at).strftime("%Y-%m-%d %H:%M")
        lines.append("  " + _("special %(id)s %(status)s %(title)s (%(lots)s lots, ends %(ends)s%(deposit)s)") % {
            "id": f"{special.pk:<4}", "status": f"{SpecialStatus(status).label:<8}", "title": special.title,
            "lots": special.lot_count, "ends": ends, "deposit": deposit})
    lines.extend(demo_coupons_summary(result.coupons))
    if result.defaulted:
        lines.append("  " + _(
            "defaulted lot %(id)s (%(title)s): re-auction it in the admin, "
            "Market > Re-auction (二拍) > Re-auction, pick the preview special, Re-auction"
        ) % {"id": result.defaulted.pk, "title": result.defaulted.title})
    lines.append("  " + _("bidders: %(bidders)s") % {"bidders": ", ".join(f"{user.openid} ({user.nickname})" for user in result.bidders)})
    lines.append(_("Try:"))
    api_base = settings.WAGTAILADMIN_BASE_URL.rstrip("/") + "/api/v1"
    lines.append(f"  curl {api_base}/specials")
    if specials:
        lines.append(f"  curl {api_base}/specials/{specials[0].pk}")
    login = f'{{"openid":"{BIDDERS[0][0]}"}}'
    lines.append(f"  curl -X POST {api_base}/auth/sandbox -H 'Content-Type: application/json' -d '{login}'")
    lines.append(f"  curl {api_base}/coupons                 " + _("(the coupon centre; README: claim and pay with one)"))
    return lines
