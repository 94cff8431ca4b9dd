from datetime import datetime

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from pydantic import model_validator

from api import presenters, throttling
from api.idempotency import OPENAPI as IDEMPOTENCY_KEY
from api.schemas import ErrorOut, IdIn, ListParams, PaymentOut, paginated
from auction.models import DepositScope, DepositStatus
from auction.services.deposits import deposit_request, deposits_for_user
from auction.services.payments import payment_prepare

router = Router(tags=["deposits"])


class DepositIn(Schema):
    lot_id: IdIn | None = None
    special_id: IdIn | None = None

    @model_validator(mode="after")
    def one_target(self):
        if (self.lot_id is None) == (self.special_id is None):
            raise ValueError("give exactly one of lot_id or special_id")
        return self


class DepositOut(Schema):
    id: int
    scope: DepositScope
    lot_id: int | None
    special_id: int
    amount: int = Field(description="fen")
    status: DepositStatus
    created_at: datetime


class DepositCreatedOut(Schema):
    deposit: DepositOut
    payment: PaymentOut


class DepositListOut(Schema):
    items: list[DepositOut]
    count: int


class DepositFilter(ListParams):
    status: DepositStatus | None = None


@router.post(
    "",
    response={200: DepositCreatedOut, 201: DepositCreatedOut, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    throttle=[throttling.deposits],
    summary="Pay a deposit (保证金) for a lot or a whole special",
    openapi_extra=IDEMPOTENCY_KEY,
)
def deposit_create(request: HttpRequest, payload: DepositIn):
    deposit, payment, created = deposit_request(user=request.auth, lot_id=payload.lot_id, special_id=payload.special_id)
    payment_prepare(payment=payment)
    return Status(201 if created else 200, {"deposit": presenters.deposit(deposit), "payment": presenters.payment(payment)})


@router.get("", response={200: DepositListOut, 401: ErrorOut, 422: ErrorOut}, summary="My deposits")
def deposit_list(request: HttpRequest, filters: Query[DepositFilter]):
    return paginated(deposits_for_user(user=request.auth, status=filters.status), filters, presenters.deposit)
