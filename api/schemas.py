"""Shapes shared by several routers."""

from datetime import datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import BeforeValidator

from auction.money import MAX_FEN


def _not_true_or_false(value):
    # Python's bool is an int, so pydantic would take JSON's true as 1 fen.
    if isinstance(value, bool):
        raise ValueError("an amount in fen, not true or false")
    return value


# An amount a client sends: whole fen, at least 1, at most MAX_FEN.
# (The constraints before the validator: the other way round, the OpenAPI
# document shows them as "ge"/"le" instead of "minimum"/"maximum".)
FenIn = Annotated[int, Field(ge=1, le=MAX_FEN, description="fen"), BeforeValidator(_not_true_or_false)]


class ErrorOut(Schema):
    code: str
    message: str
    detail: dict


class ImageOut(Schema):
    url: str
    width: int
    height: int


class UserOut(Schema):
    id: int
    nickname: str
    avatar_url: str


class ListParams(Schema):
    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000)


class LotSummaryOut(Schema):
    id: int
    special_id: int
    title: str
    cover: ImageOut | None
    status: str
    start_price: int = Field(description="fen")
    current_price: int = Field(description="fen; 0 before any bid")
    bid_count: int
    ends_at: datetime


def paginated(queryset, params: ListParams, present) -> dict:
    """``{"items": [...], "count": N}`` for ``?limit=&offset=``."""
    items = [present(item) for item in queryset[params.offset : params.offset + params.limit]]
    return {"items": items, "count": queryset.count()}


class PaymentParamsOut(Schema):
    timeStamp: str  # noqa: N815  (wx.requestPayment's names)
    nonceStr: str  # noqa: N815
    package: str
    signType: str  # noqa: N815
    paySign: str  # noqa: N815


class PaymentOut(Schema):
    out_trade_no: str
    purpose: str
    amount: int = Field(description="fen")
    status: str
    gateway: str
    params: PaymentParamsOut | None = Field(description="Hand to wx.requestPayment; null once paid or closed.")
