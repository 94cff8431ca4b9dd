from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from api import presenters, throttling
from api.idempotency import OPENAPI as IDEMPOTENCY_KEY
from api.schemas import ErrorOut, IdIn, ImageOut, ListParams, PaymentOut, TextIn, paginated
from auction.models import FulfilmentStatus, OrderStatus
from auction.services.fulfilment import order_confirm_receipt
from auction.services.orders import order_for_user, order_pay, order_quote, orders_for_user
from auction.services.payments import payment_prepare

router = Router(tags=["orders"])


class OrderLotOut(Schema):
    id: int
    title: str
    cover: ImageOut | None


class FulfilmentOut(Schema):
    status: FulfilmentStatus
    carrier: str = Field(description="empty until shipped")
    tracking_no: str = Field(description="empty until shipped")
    shipped_at: datetime | None
    received_at: datetime | None


class OrderOut(Schema):
    order_no: str
    lot: OrderLotOut
    status: OrderStatus
    price: int = Field(description="fen")
    premium: int = Field(description="fen: the buyer's premium (佣金), rate × price rounded half up")
    deposit_credit: int = Field(description="fen")
    coupon_discount: int = Field(description="fen")
    amount_due: int = Field(description="fen")
    pay_deadline: datetime
    created_at: datetime
    paid_at: datetime | None
    fulfilment: FulfilmentOut | None = Field(description="null until paid")


class OrderListOut(Schema):
    items: list[OrderOut]
    count: int


class OrderFilter(ListParams):
    status: OrderStatus | None = None


class QuoteIn(Schema):
    user_coupon_id: IdIn | None = None


class QuoteOut(Schema):
    price: int
    premium: int
    deposit_credit: int
    coupon_discount: int
    amount_due: int


class AddressIn(Schema):
    name: TextIn = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=5, max_length=32, pattern=r"^[0-9+\- ]+$")
    region: TextIn = Field(min_length=1, max_length=128)
    detail: TextIn = Field(min_length=1, max_length=255)


class PayIn(QuoteIn):
    address: AddressIn


class PayOut(Schema):
    order: OrderOut
    payment: PaymentOut | None


ORDER_NO = r"^[0-9A-Za-z]{1,32}$"


@router.get("", response={200: OrderListOut, 401: ErrorOut, 422: ErrorOut}, summary="My orders")
def order_list(request: HttpRequest, filters: Query[OrderFilter]):
    orders = orders_for_user(user=request.auth, status=filters.status)
    return paginated(orders, filters, lambda order: presenters.order(request, order))


@router.get("/{order_no}", response={200: OrderOut, 401: ErrorOut, 404: ErrorOut}, summary="An order")
def order_detail(request: HttpRequest, order_no: str):
    return presenters.order(request, order_for_user(order_no=order_no, user=request.auth))


@router.post("/{order_no}/quote", response={200: QuoteOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut},
             throttle=[throttling.quotes], summary="What paying would cost; changes nothing")
def order_quote_view(request: HttpRequest, order_no: str, payload: QuoteIn):
    return order_quote(order_no=order_no, user=request.auth, user_coupon_id=payload.user_coupon_id).__dict__


@router.post("/{order_no}/pay", response={200: PayOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut},
             throttle=[throttling.pays], summary="Pay an order", openapi_extra=IDEMPOTENCY_KEY)
def order_pay_view(request: HttpRequest, order_no: str, payload: PayIn):
    order, payment = order_pay(
        order_no=order_no, user=request.auth, address=payload.address.dict(), user_coupon_id=payload.user_coupon_id
    )
    if payment is not None:
        payment_prepare(payment=payment)
    return {"order": presenters.order(request, order), "payment": presenters.payment(payment) if payment else None}


@router.post("/{order_no}/confirm-receipt", response={200: OrderOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut}, summary="Confirm the lot was received")
def order_confirm_receipt_view(request: HttpRequest, order_no: str):
    return presenters.order(request, order_confirm_receipt(order_no=order_no, user=request.auth))
