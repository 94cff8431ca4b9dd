"""Shapes shared by several routers."""

from datetime import datetime
from typing import Annotated

from ninja import Field, Schema
from pydantic import Strict

from auction.models import LotStatus, PaymentPurpose, PaymentStatus
from auction.money import MAX_FEN

# Numbers a client sends are JSON integers and nothing else (CONTRACT.md,
# Conventions): strict, because pydantic would otherwise take "100", " 100 ",
# 100.0, 1e5 and true (a bool is an int in Python: lot 1, 1 fen) as integers.
# (The constraints before Strict: the OpenAPI document still shows
# "type": "integer" with "minimum"/"maximum".)

# An amount: whole fen, at least 1, at most MAX_FEN.
FenIn = Annotated[int, Field(ge=1, le=MAX_FEN, description="fen"), Strict()]
# A row's id (lot, special, user coupon...): what a BigAutoField holds.
MAX_ID = 2**63 - 1
IdIn = Annotated[int, Field(ge=1, le=MAX_ID), Strict()]

# Text a person typed (a nickname, an address): no C0 or C1 controls (\x00
# included) and no bidi embeddings, overrides or isolates, which can make a
# name or an address read differently from what it is. A pattern, so the
# OpenAPI document says it too; a field with a stricter pattern of its own
# (an openid, a phone number) is a plain str with that one instead.
PLAIN_TEXT = "^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*$"
TextIn = Annotated[str, Field(pattern=PLAIN_TEXT)]


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
    # The model's choices, so the OpenAPI document names every value (CONTRACT "Status values").
    status: LotStatus
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
    purpose: PaymentPurpose
    amount: int = Field(description="fen")
    status: PaymentStatus
    gateway: str
    params: PaymentParamsOut | None = Field(description="Hand to wx.requestPayment; null once paid or closed.")
