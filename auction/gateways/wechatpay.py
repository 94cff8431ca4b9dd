"""The ``wechat`` gateway: WeChat Pay API v3 (JSAPI, for the mini-program) behind ``PaymentGateway``.

Credentials come from settings (docs/wechatpay.md) and are loaded on first
use, so the embedded default (the sandbox) needs none of them.

Notifications are parsed here too, as protocol: verify the signature on the
raw bytes with a key we already hold, check the timestamp, decrypt, check
app, merchant, state and amounts. What an accepted one means is decided by
``auction.services.payments`` (``payment_apply_success``,
``refund_apply_result``, ``payment_close``), the same functions a query or
the sandbox reaches; this module imports no services.
"""

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings

from auction.gateways.payments import PaidAtGateway, PaymentState, RefundState
from auction.gateways.wechatpay_client import (
    Credentials,
    TrustedKey,
    WechatPayClient,
    WechatPayError,
    pay_sign,
    private_key_load,
    public_key_load,
    trusted_certificates,
)

logger = logging.getLogger(__name__)

# The contract's notify paths (CONTRACT.md, Payments), under WECHATPAY_NOTIFY_BASE.
PAYMENT_NOTIFY_PATH = "/api/v1/payments/wechat/notify"
REFUND_NOTIFY_PATH = "/api/v1/payments/wechat/refund-notify"
CHINA = ZoneInfo("Asia/Shanghai")
OUT_TRADE_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")
DESCRIPTION_BYTES = 127
# A genuine notification is about 1 KiB; anything far larger is refused unread.
MAX_NOTIFICATION_BYTES = 64 * 1024

# trade_state -> PaymentState.status. REFUND: paid, then refunded (ops did it in
# the merchant platform): never "paid", or a query would apply it.
TRADE_STATES = {
    "SUCCESS": "paid",
    "REFUND": "refunded",
    "NOTPAY": "open",
    "USERPAYING": "open",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "closed",
}
# refund status -> RefundState.status; ABNORMAL (the card was frozen or closed)
# needs ops in the merchant platform, like CLOSED.
REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "processing", "ABNORMAL": "failed", "CLOSED": "failed"}
REFUND_EVENTS = {"REFUND.SUCCESS": "SUCCESS", "REFUND.ABNORMAL": "ABNORMAL", "REFUND.CLOSED": "CLOSED"}


class WechatPayNotConfigured(WechatPayError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="NOT_CONFIGURED")


# --- configuration --------------------------------------------------------------


@dataclass(frozen=True)
class WechatPayConfig:
    appid: str
    credentials: Credentials
    api_base: str
    notify_base: str
    timeout: float

    @property
    def mchid(self) -> str:
        return self.credentials.mchid


SETTING_NAMES = (
    "WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_MERCHANT_SERIAL", "WECHATPAY_PRIVATE_KEY_FILE",
    "WECHATPAY_PRIVATE_KEY", "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY_ID", "WECHATPAY_PUBLIC_KEY_FILE",
    "WECHATPAY_PUBLIC_KEY", "WECHATPAY_PLATFORM_CERT_FILES", "WECHATPAY_API_BASE", "WECHATPAY_NOTIFY_BASE",
    "WECHATPAY_TIMEOUT_SECONDS",
)


def config() -> WechatPayConfig:
    """The credentials in settings, loaded once per distinct value (files are read then)."""
    values = []
    for name in SETTING_NAMES:
        value = getattr(settings, name, "")
        values.append(tuple(value) if isinstance(value, list | tuple) else value)
    return _config_load(tuple(values))


def _pem(text: str) -> bytes:
    # Environment files often hold a PEM on one line with literal "\n".
    return text.replace("\\n", "\n").strip().encode("ascii") + b"\n"


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise WechatPayNotConfigured(f"cannot read the {what} file {path}: {error.strerror}") from None


def _split(value) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(item).strip() for item in value if str(item).strip()]
    return [item.strip() for item in str(value or "").split(",") if item.strip()]


@lru_cache(maxsize=8)
def _config_load(values: tuple) -> WechatPayConfig:
    named = dict(zip(SETTING_NAMES, values, strict=True))
    missing = [
        name for name in ("WECHATPAY_MCHID", "WECHATPAY_APPID", "WECHATPAY_MERCHANT_SERIAL", "WECHATPAY_APIV3_KEY", "WECHATPAY_NOTIFY_BASE")
        if not named[name]
    ]
    if not (named["WECHATPAY_PRIVATE_KEY_FILE"] or named["WECHATPAY_PRIVATE_KEY"]):
        missing.append("WECHATPAY_PRIVATE_KEY_FILE")
    if missing:
        raise WechatPayNotConfigured(f"WeChat Pay is not configured: set {', '.join(missing)}")
    try:
        private_pem = _read(named["WECHATPAY_PRIVATE_KEY_FILE"], "merchant private key") if named["WECHATPAY_PRIVATE_KEY_FILE"] else _pem(named["WECHATPAY_PRIVATE_KEY"])
        private_key = private_key_load(private_pem)
        trusted: dict[str, TrustedKey] = {}
        key_ids = _split(named["WECHATPAY_PUBLIC_KEY_ID"])
        if named["WECHATPAY_PUBLIC_KEY"]:
            key_pems = [_pem(named["WECHATPAY_PUBLIC_KEY"])]
        else:
            key_pems = [_read(path, "WeChat Pay public key") for path in _split(named["WECHATPAY_PUBLIC_KEY_FILE"])]
        if len(key_ids) != len(key_pems):
            raise WechatPayNotConfigured("WECHATPAY_PUBLIC_KEY_ID needs one key (WECHATPAY_PUBLIC_KEY_FILE) per id, in the same order")
        for key_id, pem in zip(key_ids, key_pems, strict=True):
            trusted[key_id] = TrustedKey(serial=key_id, public_key=public_key_load(pem))
        for path in _split(named["WECHATPAY_PLATFORM_CERT_FILES"]):
            for key in trusted_certificates(_read(path, "WeChat Pay platform certificate")):
                trusted[key.serial] = key
        if not trusted:
            raise WechatPayNotConfigured(
                "WeChat Pay is not configured: set WECHATPAY_PUBLIC_KEY_ID and WECHATPAY_PUBLIC_KEY_FILE, or WECHATPAY_PLATFORM_CERT_FILES"
            )
        apiv3_key = str(named["WECHATPAY_APIV3_KEY"]).encode("utf-8")
        if len(apiv3_key) != 32:
            raise WechatPayNotConfigured("WECHATPAY_APIV3_KEY must be the 32-character APIv3 key")
        credentials = Credentials(
            mchid=str(named["WECHATPAY_MCHID"]), merchant_serial=str(named["WECHATPAY_MERCHANT_SERIAL"]).upper(),
            private_key=private_key, apiv3_key=apiv3_key, trusted=trusted,
        )
    except WechatPayNotConfigured:
        raise
    except (ValueError, TypeError, UnicodeError) as error:
        raise WechatPayNotConfigured(f"WeChat Pay keys are unreadable: {error}") from None
    return WechatPayConfig(
        appid=str(named["WECHATPAY_APPID"]),
        credentials=credentials,
        api_base=str(named["WECHATPAY_API_BASE"]).rstrip("/"),
        notify_base=str(named["WECHATPAY_NOTIFY_BASE"]).rstrip("/"),
        timeout=float(named["WECHATPAY_TIMEOUT_SECONDS"]),
    )


# --- what we send -----------------------------------------------------------------


def rfc3339(moment: datetime) -> str:
    """WeChat's time format: ``2026-05-20T13:29:35+08:00``."""
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


def description_for(payment) -> str:
    """What the payer sees in WeChat: the purpose and the lot or special, at most 127 bytes."""
    if payment.order_id:
        text = f"拍品货款 {payment.order.lot.title}"
    elif payment.deposit_id:
        deposit = payment.deposit
        text = f"保证金 {deposit.lot.title if deposit.lot_id else deposit.special.title}"
    else:
        text = "拍卖付款"
    return text.encode("utf-8")[:DESCRIPTION_BYTES].decode("utf-8", "ignore").strip() or "拍卖付款"


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise WechatPayError(message, code="BAD_RESPONSE")


class WechatPayGateway:
    name = "wechat"

    def __init__(self, configuration: WechatPayConfig | None = None, transport=None) -> None:
        self._configuration = configuration
        self._transport = transport

    @property
    def config(self) -> WechatPayConfig:
        if self._configuration is None:
            self._configuration = config()
        return self._configuration

    @property
    def client(self) -> WechatPayClient:
        return WechatPayClient(
            credentials=self.config.credentials, base_url=self.config.api_base, timeout=self.config.timeout, transport=self._transport
        )

    def client_params(self, prepay_id: str) -> dict:
        """What ``wx.requestPayment`` takes, signed with the merchant key."""
        timestamp, nonce, package = str(int(time.time())), secrets.token_hex(16), f"prepay_id={prepay_id}"
        return {
            "timeStamp": timestamp,
            "nonceStr": nonce,
            "package": package,
            "signType": "RSA",
            "paySign": pay_sign(self.config.credentials.private_key, appid=self.config.appid, timestamp=timestamp, nonce=nonce, package=package),
        }

    def create(self, payment) -> dict:
        if not OUT_TRADE_NO.fullmatch(payment.out_trade_no):
            raise WechatPayError(f"out_trade_no {payment.out_trade_no!r} is not 6-32 allowed characters", code="PARAM_ERROR")
        openid = payment.user.openid
        if not openid:
            raise WechatPayError("the payer has no WeChat openid", code="NO_OPENID")
        payload = {
            "appid": self.config.appid,
            "mchid": self.config.mchid,
            "description": description_for(payment),
            "out_trade_no": payment.out_trade_no,
            # WeChat refuses payment after this: the order's or deposit's window.
            "time_expire": rfc3339(payment.expires_at),
            "notify_url": self.config.notify_base + PAYMENT_NOTIFY_PATH,
            "amount": {"total": payment.amount, "currency": "CNY"},
            "payer": {"openid": openid},
        }
        answer = self.client.request("POST", "/v3/pay/transactions/jsapi", payload=payload)
        prepay_id = answer.body.get("prepay_id")
        _expect(isinstance(prepay_id, str) and 0 < len(prepay_id) <= 64, "prepay answer without a prepay_id")
        return self.client_params(prepay_id)

    def query(self, payment) -> PaymentState:
        try:
            answer = self.client.request(
                "GET", f"/v3/pay/transactions/out-trade-no/{payment.out_trade_no}", query={"mchid": self.config.mchid}
            )
        except WechatPayError as error:
            if error.status == 404 and error.code == "ORDER_NOT_EXIST":
                # Never prepaid (the prepay call failed): nobody can have paid it.
                return PaymentState(status="open")
            raise
        body = answer.body
        _expect(body.get("out_trade_no") == payment.out_trade_no, "query answer for another out_trade_no")
        _expect(body.get("mchid") == self.config.mchid and body.get("appid") == self.config.appid, "query answer for another merchant or app")
        trade_state = body.get("trade_state")
        _expect(trade_state in TRADE_STATES, f"unknown trade_state {trade_state!r}")
        status = TRADE_STATES[trade_state]
        if status != "paid":
            return PaymentState(status=status)
        amount = (body.get("amount") or {}).get("total")
        transaction_id = body.get("transaction_id")
        _expect(isinstance(amount, int) and not isinstance(amount, bool), "paid without amount.total")
        _expect(isinstance(transaction_id, str) and 0 < len(transaction_id) <= 64, "paid without transaction_id")
        return PaymentState(status="paid", transaction_id=transaction_id, amount=amount, paid_at=parse_time(body.get("success_time")))

    def close(self, payment) -> None:
        try:
            self.client.request(
                "POST", f"/v3/pay/transactions/out-trade-no/{payment.out_trade_no}/close", payload={"mchid": self.config.mchid}
            )
            return
        except WechatPayError as error:
            if error.status == 404 and error.code == "ORDER_NOT_EXIST":
                return  # never prepaid: there is nothing to close
            refused = error
        # Close refused: ask why. Already closed is what we wanted. Paid means
        # the user paid in time and the notification has not come (or is
        # late): say so, with what WeChat reports; the caller applies it.
        state = self.query(payment)
        if state.status == "closed":
            return
        if state.status == "paid":
            raise PaidAtGateway(state)
        raise refused

    def refund(self, refund) -> RefundState:
        payment = refund.payment
        _expect(bool(OUT_REFUND_NO.fullmatch(refund.out_refund_no)), "out_refund_no has characters WeChat refuses")
        payload = {
            # The same out_refund_no on every retry: WeChat refunds it once.
            "out_trade_no": payment.out_trade_no,
            "out_refund_no": refund.out_refund_no,
            "reason": refund.reason[:80],
            "notify_url": self.config.notify_base + REFUND_NOTIFY_PATH,
            "amount": {"refund": refund.amount, "total": payment.amount, "currency": "CNY"},
        }
        answer = self.client.request("POST", "/v3/refund/domestic/refunds", payload=payload)
        state = self._refund_state(refund, answer.body)
        # Accepted is not refunded: the outcome comes by notification or query,
        # so every refund passes through "processing", whatever this answer says.
        return RefundState(status="processing", gateway_refund_id=state.gateway_refund_id)

    def refund_query(self, refund) -> RefundState:
        answer = self.client.request("GET", f"/v3/refund/domestic/refunds/{refund.out_refund_no}")
        return self._refund_state(refund, answer.body)

    def _refund_state(self, refund, body: dict) -> RefundState:
        _expect(body.get("out_refund_no") == refund.out_refund_no, "refund answer for another out_refund_no")
        refunded = (body.get("amount") or {}).get("refund")
        _expect(refunded == refund.amount, "refund answer with another amount")
        status = body.get("status")
        _expect(status in REFUND_STATES, f"unknown refund status {status!r}")
        refund_id = body.get("refund_id")
        return RefundState(status=REFUND_STATES[status], gateway_refund_id=refund_id if isinstance(refund_id, str) else "")


def parse_time(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else None
