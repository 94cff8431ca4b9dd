from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from api import presenters, throttling
from api.idempotency import OPENAPI as IDEMPOTENCY_KEY
from api.orders import OrderOut
from api.schemas import ErrorOut, FenIn, ListParams, LotSummaryOut, paginated
from api.security import TokenAuth, TokenKeyAuth, optional_user
from auction import selectors
from auction.errors import DomainError, NotFound
from auction.services.bidding import auto_bid_set, auto_bid_withdraw, bid_place
from auction.services.buy_now import buy_now
from project import metrics

router = Router(tags=["bids"])


class BidIn(Schema):
    price: FenIn


class PlacedBidOut(Schema):
    id: int
    price: int
    created_at: datetime


class LotAfterBidOut(LotSummaryOut):
    next_min_bid: int


class BidPlacedOut(Schema):
    bid: PlacedBidOut
    lot: LotAfterBidOut


class AutoBidIn(Schema):
    max_price: FenIn


class AutoBidOut(Schema):
    max_price: int
    lot: LotAfterBidOut


BID_ERRORS = {401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut}


class BidOut(Schema):
    id: int
    price: int = Field(description="fen")
    bidder: str = Field(description="A masked nickname, e.g. 张**")
    created_at: datetime


class BidListOut(Schema):
    items: list[BidOut]
    count: int


@router.get("/{int:lot_id}/bids", response={200: BidListOut, 401: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
            throttle=[throttling.anonymous_reads], summary="Bids, newest first")
def bids(request: HttpRequest, lot_id: int, params: Query[ListParams]):
    optional_user(request)
    if not selectors.lot_is_visible(lot_id=lot_id):
        raise NotFound()
    return paginated(
        selectors.lot_bids(lot_id=lot_id),
        params,
        lambda bid: {
            "id": bid.pk,
            "price": bid.price,
            "bidder": selectors.mask_nickname(bid.user.nickname),
            "created_at": presenters.local(bid.created_at),
        },
    )


# The direct route (api/bid_route.py) checks the same limit itself.
@router.post("/{int:lot_id}/bids", response={201: BidPlacedOut, **BID_ERRORS}, auth=TokenKeyAuth(), throttle=[throttling.bids],
             summary="Bid (出价)", openapi_extra=IDEMPOTENCY_KEY)
def bid_create(request: HttpRequest, lot_id: int, payload: BidIn):
    try:
        result = bid_place(lot_id=lot_id, user=request.auth, price=payload.price)
    except DomainError as refusal:
        metrics.bid_refused(refusal.code)
        raise
    bid = result.bid
    return Status(201, {
        "bid": {"id": bid.pk, "price": bid.price, "created_at": presenters.local(bid.created_at)},
        "lot": presenters.lot_after_bid(request, result.lot, timezone.now()),
    })


@router.put("/{int:lot_id}/auto-bid", response={200: AutoBidOut, **BID_ERRORS}, auth=TokenAuth(), throttle=[throttling.auto_bids],
            summary="Set a proxy bid (代理出价)")
def auto_bid_put(request: HttpRequest, lot_id: int, payload: AutoBidIn):
    auto_bid, lot = auto_bid_set(lot_id=lot_id, user=request.auth, max_price=payload.max_price)
    return {"max_price": auto_bid.max_price, "lot": presenters.lot_after_bid(request, lot, timezone.now())}


@router.delete("/{int:lot_id}/auto-bid", response={204: None, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut}, auth=TokenAuth(),
               throttle=[throttling.auto_bids], summary="Withdraw the proxy bid")
def auto_bid_delete(request: HttpRequest, lot_id: int):
    auto_bid_withdraw(lot_id=lot_id, user=request.auth)
    return Status(204, None)


class BoughtNowOut(Schema):
    order: OrderOut
    lot: LotAfterBidOut


@router.post("/{int:lot_id}/buy-now", response={201: BoughtNowOut, **BID_ERRORS}, auth=TokenAuth(), throttle=[throttling.bids],
             summary="Buy now (一口价): the lot ends at once, sold to the caller", openapi_extra=IDEMPOTENCY_KEY)
def buy_now_create(request: HttpRequest, lot_id: int):
    result = buy_now(lot_id=lot_id, user=request.auth)
    return Status(201, {
        "order": presenters.order(request, result.order),
        "lot": presenters.lot_after_bid(request, result.lot, timezone.now()),
    })
