from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Router, Schema

from api import presenters, throttling
from api.schemas import ErrorOut, ImageOut, LotSummaryOut
from api.security import optional_user
from auction import selectors
from auction.errors import NotFound
from auction.services.settlement import lots_settle_due

router = Router(tags=["catalog"])


class LotMyOut(Schema):
    deposit_status: str | None
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


@router.get("/{int:lot_id}", response={200: LotDetailOut, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut}, throttle=[throttling.anonymous_reads],
            summary="A lot (拍品)")
def lot(request: HttpRequest, lot_id: int):
    user = optional_user(request)
    lot, now = _published_lot(lot_id), timezone.now()
    lots_settle_due([lot], now=now)
    return presenters.lot_detail(request, lot, now, user)
