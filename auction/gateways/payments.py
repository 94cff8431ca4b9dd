"""The payment gateway interface; ``sandbox`` is the embedded default, ``wechat`` production.

A gateway only talks to the outside world. What a success or a refund means
for deposits and orders is decided once, in ``auction.services.payments``,
whichever gateway (or the sandbox's "user paid" button) reported it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class GatewayError(Exception):
    """The gateway could not be asked or refused the call; retrying may help."""


@dataclass(frozen=True)
class PaymentState:
    # "paid", "open" (not paid yet), "closed" or "refunded", in the gateway's eyes
    status: str
    transaction_id: str = ""
    amount: int | None = None
    paid_at: datetime | None = None


class PaidAtGateway(GatewayError):
    """Asked to close a payment that the payer has already paid: the gateway
    reports it, and applying that success is the caller's decision (a
    gateway never reaches into deposits or orders)."""

    def __init__(self, state: PaymentState) -> None:
        self.state = state
        super().__init__(f"paid at the gateway (transaction {state.transaction_id or 'unknown'})")


@dataclass(frozen=True)
class RefundState:
    # "processing", "succeeded" or "failed"
    status: str
    gateway_refund_id: str = ""


class PaymentGateway(Protocol):
    name: str

    def create(self, payment) -> dict:
        """Register the payment; return the client params for wx.requestPayment."""

    def query(self, payment) -> PaymentState: ...

    def close(self, payment) -> None:
        """Stop the payment from being paid; closing a closed payment is fine.
        ``PaidAtGateway`` when it cannot be closed because it was paid."""

    def refund(self, refund) -> RefundState:
        """Ask for the refund; the same ``out_refund_no`` twice refunds once."""

    def refund_query(self, refund) -> RefundState: ...


GATEWAYS = {
    "sandbox": "auction.gateways.sandbox.SandboxGateway",
    "wechat": "auction.gateways.wechatpay.WechatPayGateway",
}


def gateway_for(name: str | None = None) -> PaymentGateway:
    name = name or settings.AUCTION_PAYMENT_GATEWAY
    if name not in GATEWAYS:
        raise GatewayError(f"unknown payment gateway {name!r}")
    return import_string(GATEWAYS[name])()
