"""WeChat Pay v3 notifications: verify the signature on the raw bytes, check the
timestamp, decrypt the resource, and report what it says (no network call).
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from auction.gateways.wechatpay import (
    MAX_NOTIFICATION_BYTES,
    OUT_REFUND_NO,
    OUT_TRADE_NO,
    REFUND_EVENTS,
    WechatPayConfig,
    config,
    parse_time,
)
from auction.gateways.wechatpay_client import (
    SignatureRejected,
    WechatPayError,
    aead_decrypt,
    signed_verify,
)

logger = logging.getLogger(__name__)

class NotificationRejected(Exception):
    """A notification we will not act on; WeChat gets ``status`` and ``{"code": "FAIL", "message": ...}``."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        self.reason = reason
        self.message = message
        self.status = status
        super().__init__(f"{reason}: {message}")


def notification_verify_and_decrypt(headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None, configuration: WechatPayConfig | None = None) -> dict:
    """Verify the signature over the raw bytes, check freshness, decrypt ``resource``.

    Returns ``{"id", "event_type", "resource_type", "resource"}`` with ``resource``
    decrypted; raises ``NotificationRejected`` otherwise. Nothing is parsed
    before the signature holds.
    """
    cfg = configuration or config()
    if len(raw_body) > MAX_NOTIFICATION_BYTES:
        raise NotificationRejected("too_large", "body too large", status=413)
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    try:
        signed_verify(cfg.credentials.trusted, lowered, raw_body, now=now)
    except SignatureRejected as error:
        raise NotificationRejected(error.reason, "签名错误 (bad signature)", status=401) from None
    try:
        body = json.loads(raw_body)
    except ValueError:
        raise NotificationRejected("bad_json", "body is not JSON") from None
    resource = body.get("resource") if isinstance(body, dict) else None
    if not isinstance(resource, dict) or resource.get("algorithm") != "AEAD_AES_256_GCM":
        raise NotificationRejected("bad_resource", "no AEAD_AES_256_GCM resource")
    parts = {name: resource.get(name, "" if name == "associated_data" else None) for name in ("ciphertext", "nonce", "associated_data")}
    if not all(isinstance(value, str) for value in parts.values()):
        raise NotificationRejected("bad_resource", "resource fields are not strings")
    try:
        plaintext = aead_decrypt(cfg.credentials.apiv3_key, **parts)
    except WechatPayError:
        raise NotificationRejected("undecryptable", "cannot decrypt resource") from None
    try:
        decrypted = json.loads(plaintext)
    except ValueError:
        decrypted = None
    if not isinstance(decrypted, dict):
        raise NotificationRejected("bad_resource", "decrypted resource is not a JSON object")
    event_type = body.get("event_type")
    return {
        "id": str(body.get("id") or ""),
        "event_type": event_type if isinstance(event_type, str) else "",
        "resource_type": str(body.get("resource_type") or ""),
        "resource": decrypted,
    }


def _amount(amounts, name: str) -> int:
    value = amounts.get(name) if isinstance(amounts, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise NotificationRejected("bad_amount", f"amount.{name} missing or not a whole number of fen")
    return value


@dataclass(frozen=True)
class PaymentReport:
    out_trade_no: str
    transaction_id: str
    amount: int
    paid_at: datetime | None


def payment_notification_report(headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None) -> PaymentReport:
    """A verified TRANSACTION.SUCCESS for our app and merchant; the amount is checked
    against the payment by ``payment_apply_success``, under the payment's lock."""
    cfg = config()
    notification = notification_verify_and_decrypt(headers, raw_body, now=now, configuration=cfg)
    if notification["event_type"] != "TRANSACTION.SUCCESS":
        raise NotificationRejected("unexpected_event", f"unexpected event {notification['event_type'][:40]!r}")
    resource = notification["resource"]
    if resource.get("mchid") != cfg.mchid:
        raise NotificationRejected("wrong_merchant", "mchid is not ours")
    if resource.get("appid") != cfg.appid:
        raise NotificationRejected("wrong_app", "appid is not ours")
    if resource.get("trade_state") != "SUCCESS":
        raise NotificationRejected("not_paid", "trade_state is not SUCCESS")
    out_trade_no, transaction_id = resource.get("out_trade_no"), resource.get("transaction_id")
    if not isinstance(out_trade_no, str) or not OUT_TRADE_NO.fullmatch(out_trade_no):
        raise NotificationRejected("bad_out_trade_no", "out_trade_no missing or malformed")
    if not isinstance(transaction_id, str) or not 0 < len(transaction_id) <= 64:
        raise NotificationRejected("bad_transaction_id", "transaction_id missing or malformed")
    amounts = resource.get("amount")
    total = _amount(amounts, "total")
    if amounts.get("currency", "CNY") != "CNY":
        raise NotificationRejected("bad_amount", "currency is not CNY")
    return PaymentReport(out_trade_no=out_trade_no, transaction_id=transaction_id, amount=total, paid_at=parse_time(resource.get("success_time")))


@dataclass(frozen=True)
class RefundReport:
    out_refund_no: str
    refund_id: str
    succeeded: bool


def refund_notification_report(headers: Mapping[str, str], raw_body: bytes, *, now: float | None = None) -> RefundReport:
    """A verified REFUND.SUCCESS / ABNORMAL / CLOSED for a refund we asked for, with
    the amounts we asked for (a refund notification carries no appid)."""
    from auction.models import Refund

    cfg = config()
    notification = notification_verify_and_decrypt(headers, raw_body, now=now, configuration=cfg)
    expected_status = REFUND_EVENTS.get(notification["event_type"])
    if expected_status is None:
        raise NotificationRejected("unexpected_event", f"unexpected event {notification['event_type'][:40]!r}")
    resource = notification["resource"]
    if resource.get("mchid") != cfg.mchid:
        raise NotificationRejected("wrong_merchant", "mchid is not ours")
    if resource.get("refund_status") != expected_status:
        raise NotificationRejected("bad_status", "refund_status does not match the event")
    out_refund_no = resource.get("out_refund_no")
    if not isinstance(out_refund_no, str) or not OUT_REFUND_NO.fullmatch(out_refund_no):
        raise NotificationRejected("bad_out_refund_no", "out_refund_no missing or malformed")
    refunded, total = _amount(resource.get("amount"), "refund"), _amount(resource.get("amount"), "total")
    refund = Refund.objects.select_related("payment").filter(out_refund_no=out_refund_no).first()
    if refund is None:
        raise NotificationRejected("unknown_refund", "unknown out_refund_no", status=404)
    if resource.get("out_trade_no") != refund.payment.out_trade_no:
        raise NotificationRejected("mismatch", "out_trade_no does not match the refund")
    if refunded != refund.amount or total != refund.payment.amount:
        raise NotificationRejected("mismatch", "amounts do not match the refund")
    refund_id = resource.get("refund_id")
    return RefundReport(out_refund_no=out_refund_no, refund_id=refund_id if isinstance(refund_id, str) else "", succeeded=expected_status == "SUCCESS")
