from django.conf import settings
from django.http import HttpRequest
from ninja import Router

from api import presenters
from api.schemas import ErrorOut, PaymentOut
from auction.errors import SandboxOff
from auction.services.payments import payment_apply_success, payment_for_user

router = Router(tags=["payments"])


@router.get("/{out_trade_no}", response={200: PaymentOut, 401: ErrorOut, 404: ErrorOut}, summary="A payment, to poll after paying")
def payment_detail(request: HttpRequest, out_trade_no: str):
    return presenters.payment(payment_for_user(out_trade_no=out_trade_no, user=request.auth))


@router.post(
    "/sandbox/{out_trade_no}/succeed",
    response={200: PaymentOut, 401: ErrorOut, 404: ErrorOut},
    summary="Stand in for the user paying (sandbox only)",
)
def sandbox_succeed(request: HttpRequest, out_trade_no: str):
    """The same path a verified WeChat notification takes."""
    if not settings.AUCTION_SANDBOX:
        raise SandboxOff()
    payment = payment_for_user(out_trade_no=out_trade_no, user=request.auth)
    if payment.gateway != "sandbox":
        raise SandboxOff()
    payment = payment_apply_success(
        out_trade_no=payment.out_trade_no, transaction_id=f"sandbox-{payment.out_trade_no}", amount=payment.amount, actor="user"
    )
    return presenters.payment(payment)
