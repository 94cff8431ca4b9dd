"""A gateway that moves no money, for the embedded default, demos and tests.

The "user paid" step is ``POST /payments/sandbox/{out_trade_no}/succeed``,
which takes the same path as a verified WeChat notification. Refunds are
accepted as "processing" and found "succeeded" when queried, so each one
passes through ``refunding`` as it will with WeChat.
"""

import secrets
import time

from auction.gateways.payments import PaymentState, RefundState


class SandboxGateway:
    name = "sandbox"

    def create(self, payment) -> dict:
        return {
            "timeStamp": str(int(time.time())),
            "nonceStr": secrets.token_hex(16),
            "package": f"prepay_id=sandbox_{payment.out_trade_no}",
            "signType": "RSA",
            "paySign": "sandbox",
        }

    def query(self, payment) -> PaymentState:
        # Nobody pays in the sandbox except through the succeed endpoint,
        # which records the payment itself: our row is the gateway's truth.
        if payment.status == "paid":
            return PaymentState(status="paid", transaction_id=payment.transaction_id or "", amount=payment.amount, paid_at=payment.paid_at)
        return PaymentState(status="closed" if payment.status == "closed" else "open")

    def close(self, payment) -> None:
        return None

    def refund(self, refund) -> RefundState:
        return RefundState(status="processing", gateway_refund_id=f"sandbox_{refund.out_refund_no}")

    def refund_query(self, refund) -> RefundState:
        return RefundState(status="succeeded", gateway_refund_id=refund.gateway_refund_id or f"sandbox_{refund.out_refund_no}")
