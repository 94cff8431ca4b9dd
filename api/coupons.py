"""The coupon centre (优惠券): what can be claimed now, and claiming one."""

from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from api import presenters, throttling
from api.idempotency import OPENAPI as IDEMPOTENCY_KEY
from api.schemas import ErrorOut, ListParams
from api.security import TokenAuth, optional_user
from auction.models import UserCouponStatus
from auction.services.coupons import claimed_counts, coupon_claim, coupons_claimable

router = Router(tags=["coupons"])


class CouponOut(Schema):
    id: int
    title: str
    amount: int = Field(description="fen off the order")
    min_amount: int = Field(description="fen: the order's price must be at least this; 0: no minimum")
    special_id: int | None = Field(description="Only for orders of lots in this special; null: any order")
    claim_starts_at: datetime
    claim_ends_at: datetime
    valid_from: datetime | None = Field(description="Fixed validity; null when valid for valid_days after claiming")
    valid_until: datetime | None = Field(description="Fixed validity; null when valid for valid_days after claiming")
    valid_days: int | None = Field(description="Valid for this many days after claiming; null with fixed dates")
    remaining: int = Field(description="How many can still be claimed; 0: sold out (已抢光)")
    per_user_limit: int
    claimed_by_me: int | None = Field(description="How many of it the caller holds; null without a token")


class CouponListOut(Schema):
    items: list[CouponOut]
    count: int


class UserCouponOut(Schema):
    id: int
    coupon: CouponOut = Field(description="The coupon with the terms it was claimed with")
    status: UserCouponStatus
    valid_from: datetime
    valid_until: datetime
    claimed_at: datetime
    order_no: str | None = Field(description="The order it is locked by or was used on")


class UserCouponListOut(Schema):
    items: list[UserCouponOut]
    count: int


@router.get("", response={200: CouponListOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut}, throttle=[throttling.anonymous_reads],
            summary="Coupons to claim now (领券中心)")
def coupon_list(request: HttpRequest, params: Query[ListParams]):
    user = optional_user(request)
    coupons = coupons_claimable(now=timezone.now())
    page = list(coupons[params.offset : params.offset + params.limit])
    held = claimed_counts(user=user, coupon_ids=[row.pk for row in page]) if user else {}
    return {
        "items": [presenters.coupon(row, claimed_by_me=held.get(row.pk, 0) if user else None) for row in page],
        "count": coupons.count(),
    }


@router.post(
    "/{int:coupon_id}/claim",
    # 422: an Idempotency-Key that is malformed or was used for another request.
    response={201: UserCouponOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    auth=TokenAuth(),
    throttle=[throttling.coupon_claims],
    summary="Claim a coupon (领取)",
    openapi_extra=IDEMPOTENCY_KEY,
)
def coupon_claim_view(request: HttpRequest, coupon_id: int):
    user_coupon = coupon_claim(coupon_id=coupon_id, user=request.auth)
    # Claim numbers run 1..n, so the new one's number is how many the caller holds.
    return Status(201, presenters.user_coupon(user_coupon, timezone.now(), claimed_by_me=user_coupon.claim_number))
