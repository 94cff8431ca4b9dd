from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router

from api import presenters
from api.coupons import UserCouponListOut
from api.schemas import ErrorOut, ListParams, UserOut
from auction.models import UserCouponStatus
from auction.services.coupons import claimed_counts, user_coupons

router = Router(tags=["me"])


class UserCouponFilter(ListParams):
    status: UserCouponStatus | None = None


@router.get("", response={200: UserOut, 401: ErrorOut}, summary="The logged-in user")
def me(request: HttpRequest):
    return request.auth


@router.get("/coupons", response={200: UserCouponListOut, 401: ErrorOut, 422: ErrorOut}, summary="My coupons (我的优惠券)")
def my_coupons(request: HttpRequest, filters: Query[UserCouponFilter]):
    now = timezone.now()
    coupons = user_coupons(user=request.auth, now=now, status=filters.status)
    page = list(coupons[filters.offset : filters.offset + filters.limit])
    counts = claimed_counts(user=request.auth, coupon_ids=[row.coupon_id for row in page])
    return {
        "items": [presenters.user_coupon(row, now, claimed_by_me=counts.get(row.coupon_id, 0)) for row in page],
        "count": coupons.count(),
    }
