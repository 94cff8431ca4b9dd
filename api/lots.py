from datetime import datetime

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils import timezone
from ninja import Field, Router, Schema

from api import presenters, throttling
from api.lot_etag import lot_etag, matches
from api.schemas import ErrorOut, ImageOut, LotSummaryOut
from api.security import optional_user
from auction import selectors
from auction.errors import NotFound
from auction.models import DepositStatus
from auction.services.settlement import lots_settle_due

router = Router(tags=["catalog"])


class LotMyOut(Schema):
    deposit_status: DepositStatus | None
    leading: bool
    auto_bid_max: int | None
    barred: bool = Field(description="Barred from this lot (an earlier default), or from every lot until ops lift it")


class LotDetailOut(LotSummaryOut):
    images: list[ImageOut]
    description: str
    deposit: int = Field(description="fen")
    reserve_met: bool
    increment: int = Field(description="fen: the step that applies to the next bid")
    next_min_bid: int = Field(description="fen")
    buyer_premium_rate: int = Field(description="佣金 in basis points of the hammer price (1500 = 15 %); 0: none")
    buy_now_price: int = Field(description="一口价 in fen; 0: none")
    relisted_from: int | None = Field(description="The lot this one re-auctions (二拍), or null")
    server_time: datetime
    my: LotMyOut | None = Field(description="The caller's own view; null without a token.")


def _published_lot(lot_id: int):
    lot = selectors.lot_detail(lot_id=lot_id)
    if lot is None:
        raise NotFound()
    return lot


@router.get(
    "/{int:lot_id}", response={200: LotDetailOut, 304: None, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut},
    throttle=[throttling.anonymous_reads], summary="A lot (拍品)",
    description="Answers with an ETag; send it back in If-None-Match to get 304 and no body while nothing changed.",
)
def lot(request: HttpRequest, lot_id: int, response: HttpResponse):
    user = optional_user(request)
    now = timezone.now()
    etag = lot_etag(lot_id=lot_id, now=now, user=user)
    if etag is None:
        raise NotFound()
    if matches(request.headers.get("If-None-Match", ""), etag):
        not_modified = HttpResponseNotModified()
        not_modified["ETag"] = etag
        return not_modified
    lot = _published_lot(lot_id)
    status_read = lot.status
    lots_settle_due([lot], now=now)
    if lot.status != status_read:
        # Settled by this read: the tag of the state it now shows.
        etag = lot_etag(lot_id=lot_id, now=now, user=user) or etag
    response["ETag"] = etag
    return presenters.lot_detail(request, lot, now, user)
