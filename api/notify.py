"""WeChat Pay v3 notifications: no token, raw bytes, WeChat's own answer shape.

WeChat signs the exact bytes it sends, so the body is read raw and never
parsed before the signature holds. It wants 200/204 for "received" and a
4xx/5xx with ``{"code": "FAIL", "message": ...}`` for "send again"; the
contract's ``{code, message, detail}`` is for the mini-program, not for
WeChat, so every answer here is built in place and nothing reaches the API's
exception handlers. A success is applied in the request (one short
transaction under the payment's lock); what follows from it runs as jobs.
"""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router, Schema

from auction.errors import NotFound
from auction.gateways.wechatpay import WechatPayNotConfigured
from auction.gateways.wechatpay_client import NONCE, SERIAL, SIGNATURE, TIMESTAMP
from auction.gateways.wechatpay_notify import (
    NotificationRejected,
    payment_notification_report,
    refund_notification_report,
)
from auction.services.payments import PaymentMismatch, payment_apply_success, refund_apply_result

logger = logging.getLogger(__name__)

router = Router(tags=["payments"])


class WechatFailOut(Schema):
    code: str
    message: str


NOTIFY_RESPONSES = {204: None, 400: WechatFailOut, 401: WechatFailOut, 404: WechatFailOut, 413: WechatFailOut, 500: WechatFailOut, 503: WechatFailOut}


def _fail(status: int, message: str) -> JsonResponse:
    return JsonResponse({"code": "FAIL", "message": message}, status=status, json_dumps_params={"ensure_ascii": False})


def _raw_body(request: HttpRequest) -> bytes:
    try:
        return request.body
    except RequestDataTooBig:
        raise NotificationRejected("too_large", "body too large", status=413) from None


def _is_signed(request: HttpRequest) -> bool:
    return all(request.headers.get(name) for name in (TIMESTAMP, NONCE, SIGNATURE, SERIAL))


def _answer(request: HttpRequest, kind: str, apply) -> HttpResponse:
    if not _is_signed(request):
        # Unverifiable with any keys: refused before the keys are even looked up,
        # so a missing configuration does not turn a stranger's post into a 503.
        return _fail(401, "签名错误 (no signature)")
    try:
        apply(request.headers, _raw_body(request))
    except NotificationRejected as error:
        logger.warning("WeChat Pay %s notification refused: %s", kind, error.reason)
        return _fail(error.status, error.message)
    except NotFound:
        logger.warning("WeChat Pay %s notification for something we do not know", kind)
        return _fail(404, "unknown out_trade_no or out_refund_no")
    except PaymentMismatch:
        # payment_apply_success recorded it (payment.amount_mismatch) for ops.
        return _fail(400, "amount does not match the payment")
    except WechatPayNotConfigured:
        if settings.AUCTION_PAYMENT_GATEWAY != "wechat":
            # No payment of ours went through WeChat Pay: nothing it could tell us.
            logger.warning("WeChat Pay %s notification received, but payments do not go through WeChat Pay", kind)
            return _fail(404, "WeChat Pay is not in use here")
        # Ours, but our keys are missing: WeChat sends it again once ops fix them.
        logger.error("WeChat Pay %s notification received but WeChat Pay is not configured", kind)
        return _fail(503, "not configured")
    except Exception:
        # Our fault, not the sender's: WeChat sends it again later.
        logger.exception("WeChat Pay %s notification failed", kind)
        return _fail(500, "internal error")
    return HttpResponse(status=204)


def _apply_payment(headers, raw_body: bytes) -> None:
    report = payment_notification_report(headers, raw_body)
    payment_apply_success(
        out_trade_no=report.out_trade_no, transaction_id=report.transaction_id, amount=report.amount,
        paid_at=report.paid_at, actor="gateway",
    )


def _apply_refund(headers, raw_body: bytes) -> None:
    report = refund_notification_report(headers, raw_body)
    refund_apply_result(out_refund_no=report.out_refund_no, succeeded=report.succeeded, actor="gateway")


@router.post("/notify", auth=None, response=NOTIFY_RESPONSES, summary="WeChat Pay payment notifications (TRANSACTION.SUCCESS)")
def payment_notify(request: HttpRequest):
    """Verified, decrypted, checked (app, merchant, amount) and applied once; a duplicate answers 204 too."""
    return _answer(request, "payment", _apply_payment)


@router.post("/refund-notify", auth=None, response=NOTIFY_RESPONSES, summary="WeChat Pay refund notifications (REFUND.*)")
def refund_notify(request: HttpRequest):
    """REFUND.SUCCESS finishes the refund; REFUND.ABNORMAL and REFUND.CLOSED mark it failed for ops."""
    return _answer(request, "refund", _apply_refund)
