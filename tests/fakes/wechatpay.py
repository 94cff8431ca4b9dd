"""A local WeChat Pay v3 on 127.0.0.1, speaking the real protocol.

- It checks our request signatures with the merchant's public key (a wrong
  one: 401 ``SIGN_ERROR``) and signs every answer, 204s included, with its
  own key (``PUB_KEY_ID_...`` or a platform certificate's serial).
- It keeps payments and refunds with WeChat's state rules: JSAPI prepay
  (idempotent per out_trade_no), query, close, refund (one per
  out_refund_no), refund query.
- ``pay()`` stands in for the user paying, ``refund_finish()`` for the bank
  answering; each returns a real signed, encrypted notification, which tests
  send to our notify URL with ``deliver()`` (real HTTP) or replay through
  Django's test client. Options make it late, duplicated, concurrent,
  tampered, stale, signed with an unknown serial, for another merchant or
  another amount.

Run it by hand for ``make run`` (docs/wechatpay.md)::

    .venv/bin/python -m tests.fakes.wechatpay

It writes keys and an env file under ``var/wechatpay-fake/``, delivers
notifications itself, and takes ``POST /fake/pay/{out_trade_no}`` for "the
user paid".
"""

import base64
import json
import os
import re
import secrets
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

CHINA = ZoneInfo("Asia/Shanghai")
MCHID = "1900000109"
APPID = "wx-test-appid"
MERCHANT_SERIAL = "3775B6A45ACD588826D15E583A95F5DD12345678"
PUBLIC_KEY_ID = "PUB_KEY_ID_0119000001092026000000000001"
AUTHORIZATION = re.compile(r"^WECHATPAY2-SHA256-RSA2048 (.+)$")
PAIR = re.compile(r'(\w+)="([^"]*)"')


# --- keys ----------------------------------------------------------------------------


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@lru_cache(maxsize=4)
def session_key(name: str) -> rsa.RSAPrivateKey:
    """One key per role per test run: generating RSA keys is the slow part."""
    return rsa_key()


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def certificate_pem(key: rsa.RSAPrivateKey, serial: int, *, not_before: datetime | None = None, not_after: datetime | None = None) -> bytes:
    """A platform certificate as WeChat issues them (self-signed here: only its key and serial matter)."""
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA (fake)")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def verify(public_key, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


# --- notifications --------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """A notification as it goes on the wire: what a test sends, byte for byte."""

    url: str
    headers: dict[str, str]
    body: bytes
    resource: dict = field(default_factory=dict, compare=False)

    @property
    def path(self) -> str:
        return urlparse(self.url).path

    def replace(self, *, headers: dict | None = None, body: bytes | None = None) -> "Notification":
        merged = dict(self.headers)
        for name, value in (headers or {}).items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        return Notification(self.url, merged, self.body if body is None else body, self.resource)


class FakeRefused(Exception):
    """What WeChat would not let happen (paying a closed or expired order)."""


@dataclass
class FakeWechatPay:
    merchant_public_key: object
    apiv3_key: bytes
    mchid: str = MCHID
    appid: str = APPID
    merchant_serial: str = MERCHANT_SERIAL
    # serial -> private key WeChat signs with; ``signing_serial`` signs answers and notifications.
    keys: dict = field(default_factory=dict)
    signing_serial: str = ""
    # Misbehaviour on demand.
    answer_tamper: bool = False
    answer_serial: str | None = None
    answer_clock_offset: int = 0
    answers_unsigned: bool = False
    answer_delay: float = 0.0
    # (status, code) answered to the next calls, once each.
    fail_next: list = field(default_factory=list)
    # The runner delivers by itself; tests deliver what pay() returns.
    auto_deliver: bool = False
    refund_after_seconds: float | None = None
    payments: dict = field(default_factory=dict)
    refunds: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    # When each refund request came (time.time()): the rate a sender kept to.
    refund_times: list = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    # The keys the test run gave it and our settings (``running``).
    run_keys: "Keys | None" = None
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def key_add(self, serial: str, key: rsa.RSAPrivateKey, *, signing: bool = False) -> None:
        self.keys[serial] = key
        if signing or not self.signing_serial:
            self.signing_serial = serial

    # --- signing -------------------------------------------------------------

    def signed_headers(self, body: bytes, *, serial: str | None = None, key=None, timestamp: int | None = None, nonce: str | None = None) -> dict:
        serial = serial or self.signing_serial
        key = key or self.keys[self.signing_serial if serial not in self.keys else serial]
        timestamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = nonce or secrets.token_hex(16).upper()
        return {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": sign(key, f"{timestamp}\n{nonce}\n".encode() + body + b"\n"),
            "Wechatpay-Serial": serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def request_verified(self, method: str, url_path: str, headers, body: bytes) -> str:
        """Empty when our request's Authorization holds; else why not."""
        match = AUTHORIZATION.match(headers.get("Authorization", ""))
        if not match:
            return "missing or unknown authorization scheme"
        fields = dict(PAIR.findall(match.group(1)))
        if fields.get("mchid") != self.mchid:
            return "mchid does not match"
        if fields.get("serial_no") != self.merchant_serial:
            return "unknown merchant serial_no"
        timestamp = fields.get("timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return "timestamp expired"
        message = f"{method}\n{url_path}\n{timestamp}\n{fields.get('nonce_str', '')}\n".encode() + body + b"\n"
        if not verify(self.merchant_public_key, message, fields.get("signature", "")):
            return "signature does not verify"
        return ""

    def notification(
        self, *, url: str, event_type: str, summary: str, resource: dict, original_type: str, serial: str | None = None,
        key=None, timestamp: int | None = None, apiv3_key: bytes | None = None, tamper=None,
    ) -> Notification:
        nonce = secrets.token_urlsafe(9)[:12]
        plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
        ciphertext = AESGCM(apiv3_key or self.apiv3_key).encrypt(nonce.encode(), plaintext, original_type.encode())
        envelope = {
            "id": str(uuid.uuid4()),
            "create_time": rfc3339(datetime.now(UTC)),
            "resource_type": "encrypt-resource",
            "event_type": event_type,
            "summary": summary,
            "resource": {
                "original_type": original_type,
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": base64.b64encode(ciphertext).decode(),
                "associated_data": original_type,
                "nonce": nonce,
            },
        }
        body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", **self.signed_headers(body, serial=serial, key=key, timestamp=timestamp)}
        if tamper is not None:
            body = tamper(body)
        return Notification(url, headers, body, resource)

    # --- the user and the bank -------------------------------------------------

    def pay(self, out_trade_no: str, *, force: bool = False, resource_changes: dict | None = None, **options) -> Notification:
        """The user pays (once; again: the same transaction, notified again)."""
        with self.lock:
            payment = self.payments.get(out_trade_no)
            if payment is None:
                raise FakeRefused(f"no prepay for {out_trade_no}")
            if payment["trade_state"] == "NOTPAY":
                if not force and datetime.now(UTC) >= payment["time_expire"]:
                    raise FakeRefused("time_expire has passed")
                payment.update(trade_state="SUCCESS", transaction_id="4200" + secrets.token_hex(12), success_time=rfc3339(datetime.now(UTC)))
            elif payment["trade_state"] == "CLOSED" and force:
                # The race WeChat itself can show: a payment that got through as the order was closed.
                payment.update(trade_state="SUCCESS", transaction_id="4200" + secrets.token_hex(12), success_time=rfc3339(datetime.now(UTC)))
            elif payment["trade_state"] not in ("SUCCESS", "REFUND"):
                raise FakeRefused(f"order is {payment['trade_state']}")
            resource = self.transaction(payment)
            resource.update(resource_changes or {})
            notification = self.notification(
                url=payment["notify_url"], event_type="TRANSACTION.SUCCESS", summary="支付成功", resource=resource,
                original_type="transaction", **options,
            )
        if self.auto_deliver:
            self.deliver_later(notification)
        return notification

    def refund_finish(self, out_refund_no: str, status: str = "SUCCESS", *, resource_changes: dict | None = None, **options) -> Notification:
        """The refund reaches its outcome: SUCCESS, CLOSED or ABNORMAL."""
        with self.lock:
            refund = self.refunds[out_refund_no]
            if refund["status"] == "PROCESSING":
                refund["status"] = status
                if status == "SUCCESS":
                    refund["success_time"] = rfc3339(datetime.now(UTC))
            resource = {
                "mchid": self.mchid,
                "out_trade_no": refund["out_trade_no"],
                "transaction_id": refund["transaction_id"],
                "out_refund_no": out_refund_no,
                "refund_id": refund["refund_id"],
                "refund_status": refund["status"],
                "user_received_account": "支付用户零钱",
                "amount": {"total": refund["total"], "refund": refund["refund"], "payer_total": refund["total"], "payer_refund": refund["refund"]},
            }
            if refund.get("success_time"):
                resource["success_time"] = refund["success_time"]
            resource.update(resource_changes or {})
            notification = self.notification(
                url=refund["notify_url"], event_type=f"REFUND.{refund['status']}", summary="退款成功" if refund["status"] == "SUCCESS" else "退款异常",
                resource=resource, original_type="refund", **options,
            )
        if self.auto_deliver:
            self.deliver_later(notification)
        return notification

    def transaction(self, payment: dict) -> dict:
        body = {
            "appid": payment["appid"],
            "mchid": payment["mchid"],
            "out_trade_no": payment["out_trade_no"],
            "trade_type": "JSAPI",
            "trade_state": payment["trade_state"],
            "trade_state_desc": {"SUCCESS": "支付成功", "NOTPAY": "未支付", "CLOSED": "已关闭", "REFUND": "转入退款"}[payment["trade_state"]],
            "payer": {"openid": payment["openid"]},
            "amount": {"total": payment["total"], "currency": "CNY"},
        }
        if payment.get("transaction_id"):
            body.update(
                transaction_id=payment["transaction_id"], success_time=payment["success_time"], bank_type="OTHERS", attach="",
                amount={"total": payment["total"], "payer_total": payment["total"], "currency": "CNY", "payer_currency": "CNY"},
            )
        return body

    # --- delivering ----------------------------------------------------------------

    @staticmethod
    def deliver(notification: Notification, *, timeout: float = 5.0) -> httpx.Response:
        """POST it to our notify URL as WeChat does (it waits 5 seconds for an answer)."""
        with httpx.Client(trust_env=False, timeout=timeout) as http:
            return http.post(notification.url, content=notification.body, headers=notification.headers)

    def deliver_concurrently(self, notification: Notification, times: int) -> list:
        barrier = threading.Barrier(times)
        results: list = [None] * times

        def send(index: int) -> None:
            barrier.wait()
            try:
                results[index] = self.deliver(notification, timeout=30).status_code
            except httpx.HTTPError as error:
                results[index] = error

        threads = [threading.Thread(target=send, args=(index,)) for index in range(times)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        return results

    def deliver_later(self, notification: Notification, delay: float = 0.2) -> None:
        def send() -> None:
            try:
                response = self.deliver(notification)
                print(f"fake WeChat Pay: notified {notification.path}: {response.status_code}", flush=True)
            except httpx.HTTPError as error:
                print(f"fake WeChat Pay: notifying {notification.path} failed: {error}", flush=True)

        threading.Timer(delay, send).start()

    # --- the API --------------------------------------------------------------------

    def handle(self, method: str, url_path: str, headers, body: bytes) -> tuple[int, dict | None]:
        path, _, query_string = url_path.partition("?")
        query = {key: values[0] for key, values in parse_qs(query_string).items()}
        self.requests.append({"method": method, "path": path, "query": query, "body": body, "url_path": url_path, "authorization": headers.get("Authorization", "")})
        if method == "POST" and path.startswith("/fake/pay/"):
            try:
                self.pay(path.rsplit("/", 1)[1])
            except FakeRefused as error:
                return 409, {"code": "FAKE_REFUSED", "message": str(error)}
            return 200, {"paid": True}
        why = self.request_verified(method, url_path, headers, body)
        if why:
            return 401, {"code": "SIGN_ERROR", "message": f"签名错误: {why}"}
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return status, {"code": code, "message": "fake failure on demand"}
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            return 400, {"code": "PARAM_ERROR", "message": "body is not JSON"}
        with self.lock:
            if method == "POST" and path == "/v3/pay/transactions/jsapi":
                return self.prepay(payload)
            match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path)
            if method == "GET" and match:
                if query.get("mchid") != self.mchid:
                    return 400, {"code": "PARAM_ERROR", "message": "mchid missing or wrong"}
                payment = self.payments.get(match.group(1))
                return (200, self.transaction(payment)) if payment else (404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            match = re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path)
            if method == "POST" and match:
                return self.close(match.group(1), payload)
            if method == "POST" and path == "/v3/refund/domestic/refunds":
                return self.refund(payload)
            match = re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path)
            if method == "GET" and match:
                refund = self.refunds.get(match.group(1))
                return (200, self.refund_body(refund)) if refund else (404, {"code": "RESOURCE_NOT_EXISTS", "message": "退款单不存在"})
        return 404, {"code": "NOT_FOUND", "message": "no such API in the fake"}

    def prepay(self, payload: dict) -> tuple[int, dict]:
        amount, payer = payload.get("amount") or {}, payload.get("payer") or {}
        problems = []
        if payload.get("appid") != self.appid or payload.get("mchid") != self.mchid:
            return 400, {"code": "APPID_MCHID_NOT_MATCH", "message": "appid和mch_id不匹配"}
        out_trade_no = payload.get("out_trade_no")
        if not isinstance(out_trade_no, str) or not re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", out_trade_no):
            problems.append("out_trade_no")
        description = payload.get("description")
        if not isinstance(description, str) or not 0 < len(description.encode()) <= 127:
            problems.append("description")
        try:
            time_expire = datetime.fromisoformat(payload.get("time_expire", ""))
            if time_expire.tzinfo is None or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", payload["time_expire"]):
                problems.append("time_expire")
        except (TypeError, ValueError):
            problems.append("time_expire")
            time_expire = None
        if not isinstance(payload.get("notify_url"), str) or not payload["notify_url"].startswith(("https://", "http://127.0.0.1", "http://testserver", "http://localhost")):
            problems.append("notify_url")
        if not isinstance(amount.get("total"), int) or amount["total"] < 1 or amount.get("currency", "CNY") != "CNY":
            problems.append("amount")
        if not payer.get("openid"):
            problems.append("payer.openid")
        if problems:
            return 400, {"code": "PARAM_ERROR", "message": "参数错误: " + ", ".join(problems)}
        existing = self.payments.get(out_trade_no)
        if existing is not None:
            if existing["trade_state"] in ("SUCCESS", "REFUND"):
                return 400, {"code": "ORDERPAID", "message": "该订单已支付"}
            if existing["trade_state"] == "CLOSED":
                return 400, {"code": "ORDER_CLOSED", "message": "订单已关闭"}
            if existing["request"] != payload:
                return 400, {"code": "INVALID_REQUEST", "message": "201 商户订单号重复"}
            return 200, {"prepay_id": existing["prepay_id"]}
        self.payments[out_trade_no] = {
            "request": payload, "appid": payload["appid"], "mchid": payload["mchid"], "out_trade_no": out_trade_no,
            "prepay_id": "wx" + secrets.token_hex(15), "notify_url": payload["notify_url"], "total": amount["total"],
            "openid": payer["openid"], "time_expire": time_expire, "trade_state": "NOTPAY",
        }
        return 200, {"prepay_id": self.payments[out_trade_no]["prepay_id"]}

    def close(self, out_trade_no: str, payload: dict) -> tuple[int, dict | None]:
        if payload.get("mchid") != self.mchid:
            return 400, {"code": "PARAM_ERROR", "message": "mchid missing or wrong"}
        payment = self.payments.get(out_trade_no)
        if payment is None:
            return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
        if payment["trade_state"] in ("SUCCESS", "REFUND"):
            return 400, {"code": "ORDERPAID", "message": "订单已支付"}
        payment["trade_state"] = "CLOSED"
        return 204, None

    def refunds_per_second(self) -> int:
        """The most refund requests within any sliding second of the run."""
        times = sorted(self.refund_times)
        most, start = 0, 0
        for end, moment in enumerate(times):
            while moment - times[start] >= 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most

    def refunds_per_wall_second(self) -> int:
        """The most refund requests within one wall-clock second (how a gateway counts its QPS)."""
        counts: dict[int, int] = {}
        for moment in self.refund_times:
            counts[int(moment)] = counts.get(int(moment), 0) + 1
        return max(counts.values(), default=0)

    def refund(self, payload: dict) -> tuple[int, dict]:
        self.refund_times.append(time.time())
        amount = payload.get("amount") or {}
        out_refund_no = payload.get("out_refund_no")
        if not isinstance(out_refund_no, str) or not re.fullmatch(r"[0-9A-Za-z_\-|*@]{1,64}", out_refund_no):
            return 400, {"code": "PARAM_ERROR", "message": "out_refund_no"}
        payment = self.payments.get(payload.get("out_trade_no", ""))
        if payment is None and payload.get("transaction_id"):
            payment = next((p for p in self.payments.values() if p.get("transaction_id") == payload["transaction_id"]), None)
        if payment is None:
            return 404, {"code": "RESOURCE_NOT_EXISTS", "message": "订单不存在"}
        if not isinstance(amount.get("refund"), int) or amount["refund"] < 1 or amount.get("total") != payment["total"] or amount.get("currency", "CNY") != "CNY":
            return 400, {"code": "PARAM_ERROR", "message": "amount"}
        existing = self.refunds.get(out_refund_no)
        if existing is not None:
            # WeChat refunds a given out_refund_no once: a retry gets the same refund.
            if existing["request"] != payload:
                return 400, {"code": "INVALID_REQUEST", "message": "退款单号已存在,参数不一致"}
            return 200, self.refund_body(existing)
        if payment["trade_state"] not in ("SUCCESS", "REFUND"):
            return 400, {"code": "INVALID_REQUEST", "message": "订单未支付"}
        refunded = sum(r["refund"] for r in self.refunds.values() if r["out_trade_no"] == payment["out_trade_no"] and r["status"] != "CLOSED")
        if refunded + amount["refund"] > payment["total"]:
            return 400, {"code": "INVALID_REQUEST", "message": "申请退款金额超过订单可退金额"}
        refund = {
            "request": payload, "out_refund_no": out_refund_no, "refund_id": "5030" + secrets.token_hex(12),
            "out_trade_no": payment["out_trade_no"], "transaction_id": payment["transaction_id"], "refund": amount["refund"],
            "total": payment["total"], "status": "PROCESSING", "notify_url": payload.get("notify_url", ""),
            "create_time": rfc3339(datetime.now(UTC)),
        }
        self.refunds[out_refund_no] = refund
        payment["trade_state"] = "REFUND"
        if self.refund_after_seconds is not None:
            threading.Timer(self.refund_after_seconds, lambda: self.refund_finish(out_refund_no)).start()
        return 200, self.refund_body(refund)

    def refund_body(self, refund: dict) -> dict:
        body = {
            "refund_id": refund["refund_id"], "out_refund_no": refund["out_refund_no"], "transaction_id": refund["transaction_id"],
            "out_trade_no": refund["out_trade_no"], "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "create_time": refund["create_time"], "status": refund["status"], "funds_account": "AVAILABLE",
            "amount": {
                "total": refund["total"], "refund": refund["refund"], "payer_total": refund["total"], "payer_refund": refund["refund"],
                "settlement_refund": refund["refund"], "settlement_total": refund["total"], "discount_refund": 0, "currency": "CNY",
            },
        }
        if refund.get("success_time"):
            body["success_time"] = refund["success_time"]
        return body

    # --- the server -------------------------------------------------------------------

    def start(self, port: int = 0) -> "FakeWechatPay":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = fake.handle(method, self.path, self.headers, body)
                raw = json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode() if answer is not None else b""
                if fake.answer_delay:
                    time.sleep(fake.answer_delay)
                self.send_response(status)
                self.send_header("Request-ID", str(uuid.uuid4()))
                if raw:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                if not fake.answers_unsigned and status != 401:
                    signed = fake.signed_headers(raw, serial=fake.answer_serial, timestamp=int(time.time()) + fake.answer_clock_offset)
                    for name, value in signed.items():
                        self.send_header(name, value)
                if fake.answer_tamper and raw:
                    raw = raw[:-1] + b" }"  # still JSON, no longer what was signed
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


# --- wiring it to our settings ----------------------------------------------------------


@dataclass
class Keys:
    merchant: rsa.RSAPrivateKey
    platform: rsa.RSAPrivateKey
    apiv3_key: bytes = field(default_factory=lambda: secrets.token_hex(16).encode())


def keys_for_run() -> Keys:
    return Keys(merchant=session_key("merchant"), platform=session_key("platform"))


def settings_for(fake: FakeWechatPay, keys: Keys, folder: Path, *, notify_base: str) -> dict[str, str]:
    """The environment a merchant sets for WeChat Pay, pointing at this fake."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "apiclient_key.pem").write_bytes(private_pem(keys.merchant))
    (folder / "wechatpay_public_key.pem").write_bytes(public_pem(keys.platform))
    return {
        "AUCTION_PAYMENT_GATEWAY": "wechat",
        "WECHATPAY_MCHID": fake.mchid,
        "WECHATPAY_APPID": fake.appid,
        "WECHATPAY_MERCHANT_SERIAL": fake.merchant_serial,
        "WECHATPAY_PRIVATE_KEY_FILE": str(folder / "apiclient_key.pem"),
        "WECHATPAY_APIV3_KEY": keys.apiv3_key.decode(),
        "WECHATPAY_PUBLIC_KEY_ID": PUBLIC_KEY_ID,
        "WECHATPAY_PUBLIC_KEY_FILE": str(folder / "wechatpay_public_key.pem"),
        "WECHATPAY_API_BASE": fake.base_url,
        "WECHATPAY_NOTIFY_BASE": notify_base,
    }


def fake_for(keys: Keys) -> FakeWechatPay:
    fake = FakeWechatPay(merchant_public_key=keys.merchant.public_key(), apiv3_key=keys.apiv3_key)
    fake.key_add(PUBLIC_KEY_ID, keys.platform, signing=True)
    return fake


@contextmanager
def running(settings, folder: Path, *, notify_base: str = "http://testserver"):
    """A started fake and Django settings pointing at it (pytest-django's ``settings``)."""
    keys = keys_for_run()
    fake = fake_for(keys).start()
    try:
        for name, value in settings_for(fake, keys, folder, notify_base=notify_base).items():
            setattr(settings, name, value)
        settings.WECHATPAY_PLATFORM_CERT_FILES = []
        settings.WECHATPAY_PUBLIC_KEY = ""
        settings.WECHATPAY_PRIVATE_KEY = ""
        settings.WECHATPAY_TIMEOUT_SECONDS = 5.0
        fake.run_keys = keys
        yield fake
    finally:
        fake.stop()


def main() -> None:
    """Run the fake for ``make run``: keys and an env file under var/wechatpay-fake/."""
    port = int(os.environ.get("WECHATPAY_FAKE_PORT", "8765"))
    notify_base = os.environ.get("WECHATPAY_NOTIFY_BASE", f"http://{os.environ.get('AUCTION_HOST', '127.0.0.1')}:{os.environ.get('AUCTION_PORT', '8000')}")
    folder = Path(os.environ.get("AUCTION_VAR_DIR", Path(__file__).resolve().parents[2] / "var")) / "wechatpay-fake"
    keys = Keys(merchant=rsa_key(), platform=rsa_key())
    fake = fake_for(keys)
    fake.auto_deliver = True
    fake.refund_after_seconds = float(os.environ.get("WECHATPAY_FAKE_REFUND_SECONDS", "5"))
    fake.start(port)
    env = settings_for(fake, keys, folder, notify_base=notify_base)
    env_file = folder / "env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    print(f"fake WeChat Pay on {fake.base_url}; notifications go to {notify_base}", flush=True)
    print(f"environment written to {env_file}; in another shell:\n", flush=True)
    print(f"    set -a; . {env_file}; set +a; make run\n", flush=True)
    print(f"the user pays:  curl -X POST {fake.base_url}/fake/pay/<out_trade_no>", flush=True)
    print(f"refunds succeed {fake.refund_after_seconds:g} s after they are asked for. Ctrl-C stops.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
