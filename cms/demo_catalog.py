"""The demo catalog: three specials, one in each phase a bidder meets, their
lots and the demo bidders, as data for cms.demo to publish.

Prices read as an auction house quotes them (``yuan(80_000)``); the pages hold fen.
"""

from dataclasses import dataclass
from datetime import timedelta

from auction.money import FEN_PER_YUAN

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
