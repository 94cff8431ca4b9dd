"""A demo catalog for a fresh install: three specials, one in each phase a bidder meets,
and a coupon centre (cms.demo_coupons).

Everything is made the way an editor makes it (pages saved as a revision, then
published), so the market rows come from the same publishing path as in
production and the demo shows nothing the admin could not have produced.
"""

import colorsys
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from io import BytesIO

from django.conf import settings
from django.core.files.images import ImageFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageDraw, ImageFont
from wagtail.images import get_image_model

from auction import selectors
from auction.models import Bid, Coupon, Lot, Order, Special, SpecialStatus, User
from auction.money import FEN_PER_YUAN, format_yuan
from auction.services.accounts import user_from_openid
from auction.services.market_rows import market_rows_update
from auction.services.overdue import order_expire
from auction.services.settlement import lot_settle
from cms.demo_coupons import demo_coupons_seed, demo_coupons_summary
from cms.models import LotPage, LotPageImage, SpecialPage
from cms.site import ensure_auction_index

IMAGE_SIZE = (1200, 900)
BIDDERS = (("demo-alice", "林小雅"), ("demo-bob", "周博文"), ("demo-carol", "陈可欣"))


def yuan(amount: int) -> int:
    """Prices below read as an auction house quotes them; the pages hold fen."""
    return amount * FEN_PER_YUAN


@dataclass(frozen=True)
class DemoLot:
    title: str
    description: str
    start_price: int
    image_count: int
    reserve_price: int = 0
    deposit: int = 0
    increment: int = 0
    buy_now_price: int = 0


@dataclass(frozen=True)
class DemoSpecial:
    code: str  # ASCII: Pillow's default font has no CJK glyphs
    kind: str  # the shape drawn on its pictures
    hue: float
    title: str
    description: str
    # Offsets from now, so the demo is in the right phase whenever it is seeded.
    preview_in: timedelta
    starts_in: timedelta
    ends_in: timedelta
    lots: tuple[DemoLot, ...]
    deposit: int = 0
    extension_seconds: int = 300
    stagger_seconds: int = 0
    buyer_premium_rate: int = 0  # basis points


CATALOG = (
    DemoSpecial(
        code="PORCELAIN",
        kind="vase",
        hue=0.60,
        title="清雅 · 明清瓷器专场",
        description=(
            "<p>甄选明清两代官窑与民窑瓷器，涵盖青花、粉彩、五彩与颜色釉。"
            "预展期间欢迎预约上手鉴赏，每件拍品附尺寸与品相说明。</p>"
        ),
        preview_in=timedelta(hours=-1),
        starts_in=timedelta(days=2),
        ends_in=timedelta(days=3),
        stagger_seconds=60,
        lots=(
            DemoLot(
                "清乾隆 青花缠枝莲纹赏瓶",
                "<p>高 38.5 cm。青花发色浓艳，缠枝莲纹繁密有序，底书“大清乾隆年制”六字三行篆书款。</p>",
                start_price=yuan(80_000), reserve_price=yuan(120_000), deposit=yuan(10_000), image_count=3,
            ),
            DemoLot(
                "清雍正 粉彩过枝桃纹盘",
                "<p>直径 20.8 cm。桃枝自外壁过至内壁，粉彩晕染柔和，为雍正粉彩典型之作。</p>",
                start_price=yuan(45_000), deposit=yuan(5_000), image_count=2,
            ),
            DemoLot(
                "明嘉靖 五彩鱼藻纹罐",
                "<p>高 22 cm。红鱼游弋于水藻之间，矾红、黄、绿诸彩浓烈，嘉靖五彩风格鲜明。</p>",
                start_price=yuan(150_000), reserve_price=yuan(200_000), deposit=yuan(20_000), image_count=2,
            ),
            DemoLot(
                "清康熙 郎窑红釉观音尊",
                "<p>高 26 cm。釉色鲜红如初凝牛血，口沿露灯草边，“脱口垂足郎不流”。</p>",
                start_price=yuan(30_000), deposit=yuan(3_000), image_count=1,
            ),
        ),
    ),
    DemoSpecial(
        code="PAINTING",
        kind="scroll",
        hue=0.08,
        title="墨韵 · 近现代书画小品专场",
        description=(
            "<p>近现代书画小品，尺幅精巧，适合初入收藏的藏家。本场逐件结拍：首件结束后每隔一分钟结拍一件；"
            "结束前五分钟内出价，该件自动延时五分钟。缴纳专场保证金即可竞拍本场全部拍品。"
            "成交价另加 10% 佣金；标有一口价的拍品可直接以一口价买下。</p>"
        ),
        buyer_premium_rate=1000,
        preview_in=timedelta(days=-2),
        starts_in=timedelta(hours=-1),
        # Short, so a newcomer can deposit, bid and watch lots end one by one
        # within minutes of `make run` (rm -rf var/ for a fresh demo).
        ends_in=timedelta(minutes=10),
        deposit=yuan(2_000),
        stagger_seconds=60,
        lots=(
            DemoLot(
                "近代 设色纸本《荷塘清趣》立轴",
                "<p>68 × 34 cm。荷叶以泼墨写出，花瓣淡设胭脂，题“荷塘清趣”，钤印二方。</p>",
                start_price=yuan(3_000), deposit=yuan(500), image_count=2,
            ),
            DemoLot(
                "民国 金笺《溪山访友图》扇面",
                "<p>18 × 52 cm。小青绿山水，笔致松秀，附旧锦盒。每口固定加价 ¥100。</p>",
                start_price=yuan(1_200), increment=yuan(100), image_count=1,
            ),
            DemoLot(
                "当代 行书七言联",
                "<p>136 × 34 cm × 2。行笔流畅，墨色浓淡相宜，有上款。</p>",
                start_price=yuan(8_000), reserve_price=yuan(10_000), deposit=yuan(1_000), image_count=2,
                buy_now_price=yuan(20_000),
            ),
            DemoLot(
                "近代 《墨梅图》镜心",
                "<p>45 × 45 cm。老干新枝，圈瓣点蕊，题“疏影横斜”。</p>",
                start_price=yuan(5_000), deposit=yuan(800), image_count=3,
            ),
            DemoLot(
                "清 佚名《岁朝清供》册页十开",
                "<p>每开 24 × 30 cm。瓶花、蔬果、文玩各具意趣，设色清丽，保存完好。</p>",
                start_price=yuan(12_000), reserve_price=yuan(15_000), deposit=yuan(2_000), image_count=2,
            ),
        ),
    ),
    DemoSpecial(
        code="JADE",
        kind="disc",
        hue=0.40,
        title="温润 · 古玉雅玩专场",
        description="<p>汇集高古玉与明清玉器，兼及文房雅玩。每件拍品均经玉器专家目鉴，附鉴定意见。</p>",
        preview_in=timedelta(days=-5),
        starts_in=timedelta(days=-3),
        ends_in=timedelta(days=-1),
        lots=(
            DemoLot(
                "清 和田白玉籽料福寿佩",
                "<p>5.8 × 4.2 cm。籽料带皮，雕蝙蝠与寿桃，寓意福寿双全。</p>",
                start_price=yuan(20_000), reserve_price=yuan(25_000), deposit=yuan(3_000), image_count=2,
            ),
            DemoLot(
                "汉 青玉谷纹璧",
                "<p>直径 12.5 cm。谷纹排列规整，局部沁色自然，包浆温润。</p>",
                start_price=yuan(60_000), deposit=yuan(8_000), image_count=3,
            ),
            DemoLot(
                "清 翡翠素面扳指",
                "<p>直径 3.1 cm。种水细腻，色泽淡绿均匀，无裂无绺。</p>",
                start_price=yuan(9_000), deposit=yuan(1_000), image_count=1,
            ),
        ),
    ),
)


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
    cover_picture = _picture(kind=special.kind, hue=special.hue, headline=special.code, caption="DEMO SPECIAL")
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
                _picture(
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


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _picture(*, kind: str, hue: float, headline: str, caption: str, view: int = 0) -> bytes:
    """A stand-in photograph: a gradient, the object's silhouette, an ASCII label."""
    width, height = IMAGE_SIZE
    background, floor = _rgb(hue, 0.25, 0.95), _rgb(hue, 0.70, 0.40)
    gradients = (
        Image.linear_gradient("L"),
        Image.linear_gradient("L").rotate(90),
        Image.radial_gradient("L"),
    )
    mask = gradients[view % len(gradients)].resize(IMAGE_SIZE)
    picture = Image.composite(Image.new("RGB", IMAGE_SIZE, floor), Image.new("RGB", IMAGE_SIZE, background), mask)
    draw = ImageDraw.Draw(picture)
    scale = (1.0, 1.25, 0.8)[view % 3]
    center = (width // 2 + 80, height // 2 - 30)
    _SHAPES[kind](draw, center, scale, hue)
    draw.text((60, height - 190), headline, fill=(255, 255, 255), font=_font(72))
    draw.text((62, height - 95), caption, fill=(255, 255, 255), font=_font(32))
    buffer = BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _box(center: tuple[int, int], scale: float, left: int, top: int, right: int, bottom: int) -> tuple[int, ...]:
    x, y = center
    return (x + round(left * scale), y + round(top * scale), x + round(right * scale), y + round(bottom * scale))


def _draw_vase(draw: ImageDraw.ImageDraw, center: tuple[int, int], scale: float, hue: float) -> None:
    body, pattern = _rgb(hue, 0.10, 0.97), _rgb(hue, 0.80, 0.55)
    draw.ellipse(_box(center, scale, -180, -120, 180, 220), fill=body)
    draw.rectangle(_box(center, scale, -60, -260, 60, -90), fill=body)
    draw.ellipse(_box(center, scale, -100, -290, 100, -240), fill=body)
    for offset in (-40, 40, 120):
        band = _box(center, scale, -150, offset - 60, 150, offset + 60)
        draw.arc(band, 0, 180, fill=pattern, width=max(4, round(8 * scale)))
    draw.rectangle(_box(center, scale, -90, 205, 90, 235), fill=pattern)


def _draw_scroll(draw: ImageDraw.ImageDraw, center: tuple[int, int], scale: float, hue: float) -> None:
    paper, ink, rod = (242, 234, 214), (40, 40, 40), _rgb(hue, 0.6, 0.35)
    draw.rectangle(_box(center, scale, -170, -300, 170, 300), fill=paper)
    draw.rectangle(_box(center, scale, -195, -320, 195, -295), fill=rod)
    draw.rectangle(_box(center, scale, -195, 295, 195, 320), fill=rod)
    x, y = center
    mountains = [(-150, 180), (-90, 20), (-30, 120), (40, -60), (110, 100), (150, 180)]
    draw.polygon([(x + round(dx * scale), y + round(dy * scale)) for dx, dy in mountains], fill=ink)
    draw.rectangle(_box(center, scale, 100, -260, 140, -220), fill=(178, 34, 34))


def _draw_disc(draw: ImageDraw.ImageDraw, center: tuple[int, int], scale: float, hue: float) -> None:
    jade, grain = _rgb(hue, 0.35, 0.80), _rgb(hue, 0.55, 0.55)
    draw.ellipse(_box(center, scale, -260, -260, 260, 260), fill=jade)
    draw.ellipse(_box(center, scale, -70, -70, 70, 70), fill=_rgb(hue, 0.25, 0.95))
    for ring in (130, 200):
        for step in range(0, 360, 15):
            angle = math.radians(step)
            dx, dy = round(ring * math.cos(angle)), round(ring * math.sin(angle))
            draw.ellipse(_box(center, scale, dx - 9, dy - 9, dx + 9, dy + 9), fill=grain)


_SHAPES = {"vase": _draw_vase, "scroll": _draw_scroll, "disc": _draw_disc}


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
