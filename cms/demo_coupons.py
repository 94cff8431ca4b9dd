"""The demo's coupon centre: one for any order, one for the bidding special, one nearly gone.

Made through ``coupon_save`` and ``coupon_claim`` (as the admin and the API
do), so the issued counts are real claims: the nearly sold-out coupon has two
of its three held by demo bidders, and the next claim takes the last one.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils.translation import gettext as _

from auction.models import Coupon, Special, User
from auction.money import FEN_PER_YUAN, format_yuan
from auction.services.coupons import coupon_claim, coupon_save


@dataclass(frozen=True)
class DemoCoupon:
    title: str
    amount_yuan: int
    min_amount_yuan: int = 0
    total: int = 100
    per_user_limit: int = 1
    for_bidding_special: bool = False
    valid_days: int | None = None  # None: fixed dates, two weeks from seeding
    claimed_by: tuple[int, ...] = ()  # indexes into the demo bidders


COUPONS = (
    DemoCoupon("全场通用 · 满 ¥3,000 减 ¥200", amount_yuan=200, min_amount_yuan=3_000, total=500, valid_days=14),
    DemoCoupon("墨韵专场专享 ¥300", amount_yuan=300, total=100, per_user_limit=2, for_bidding_special=True),
    # Three in all, two already claimed (by 周博文 and 陈可欣): the next claim takes the last.
    DemoCoupon("限量秒杀 · 满 ¥5,000 减 ¥500", amount_yuan=500, min_amount_yuan=5_000, total=3, valid_days=7, claimed_by=(1, 2)),
)


def demo_coupons_seed(*, now: datetime, bidding_special: Special, bidders: list[User]) -> list[Coupon]:
    coupons = []
    for demo in COUPONS:
        fixed = demo.valid_days is None
        coupon = coupon_save(
            coupon=Coupon(
                title=demo.title,
                amount=demo.amount_yuan * FEN_PER_YUAN,
                min_amount=demo.min_amount_yuan * FEN_PER_YUAN,
                special=bidding_special if demo.for_bidding_special else None,
                total=demo.total,
                per_user_limit=demo.per_user_limit,
                claim_starts_at=now - timedelta(days=1),
                claim_ends_at=now + timedelta(days=30),
                valid_from=now - timedelta(hours=1) if fixed else None,
                valid_until=now + timedelta(days=14) if fixed else None,
                valid_days=demo.valid_days,
            ),
            staff="demo",
        )
        for index in demo.claimed_by:
            coupon_claim(coupon_id=coupon.pk, user=bidders[index], now=now)
        coupon.refresh_from_db()
        coupons.append(coupon)
    return coupons


def demo_coupons_summary(coupons: list[Coupon]) -> list[str]:
    lines = []
    for coupon in coupons:
        minimum = _(", order ≥ %(amount)s") % {"amount": format_yuan(coupon.min_amount)} if coupon.min_amount else ""
        scope = _(", special %(id)s only") % {"id": coupon.special_id} if coupon.special_id else ""
        lines.append("  " + _("coupon %(id)s %(title)s (%(amount)s off%(minimum)s%(scope)s; %(remaining)s of %(total)s left)") % {
            "id": f"{coupon.pk:<4}", "title": coupon.title, "amount": format_yuan(coupon.amount), "minimum": minimum, "scope": scope,
            "remaining": coupon.remaining, "total": coupon.total})
    return lines
