"""WeChat Pay API v3 on the wire: sign requests, verify responses and notifications.

Everything here is protocol, nothing is business: what a payment or refund
means is decided in ``auction.services.payments``.

- Requests carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,
  nonce_str=..,signature=..,timestamp=..,serial_no=..``: SHA256withRSA with the
  merchant key over ``METHOD\\nPATH?QUERY\\ntimestamp\\nnonce\\nbody\\n``.
- Responses (204s too) and notifications are signed by WeChat over
  ``timestamp\\nnonce\\nbody\\n`` with the key that ``Wechatpay-Serial`` names:
  a WeChat Pay public key (``PUB_KEY_ID_...``) or a platform certificate.
  Every key we trust is configured up front; an unknown serial is refused,
  never fetched, so a forged notification cannot make us call out.
- A signature older or newer than five minutes is refused: a recorded
  genuine message cannot be replayed later.
"""

import base64
import binascii
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from auction.gateways.payments import GatewayError

logger = logging.getLogger(__name__)

SCHEME = "WECHATPAY2-SHA256-RSA2048"
MAX_CLOCK_SKEW_SECONDS = 300
# Headers a signed answer or notification must carry.
TIMESTAMP, NONCE, SIGNATURE, SERIAL = "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-signature", "wechatpay-serial"
SIGNATURE_TYPE = "wechatpay-signature-type"
# Bounds that no genuine header exceeds; anything longer is refused before any work.
NONCE_PATTERN = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII: it is signed as text
SERIAL_PATTERN = re.compile(r"[0-9A-Za-z_\-]{1,64}")
TIMESTAMP_PATTERN = re.compile(r"[0-9]{1,12}")
MAX_SIGNATURE_CHARS = 1024


class WechatPayError(GatewayError):
    """WeChat Pay refused the call, answered something we cannot trust, or could not be reached.

    ``status`` is the HTTP status (``None``: no answer), ``code`` WeChat's error
    code (``SIGN_ERROR``, ``PARAM_ERROR``, ``ORDER_NOT_EXIST``...) or ours
    (``NETWORK_ERROR``, ``TIMEOUT``, ``BAD_SIGNATURE``, ``BAD_RESPONSE``).
    """

    def __init__(self, message: str, *, status: int | None = None, code: str = "", detail: dict | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail or {}
        super().__init__(f"{code or 'ERROR'} ({status if status is not None else 'no answer'}): {message}")


class SignatureRejected(WechatPayError):
    """A response or notification whose signature does not hold; ``reason`` says which check failed."""

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        self.reason = reason
        super().__init__(message, status=status, code="BAD_SIGNATURE", detail={"reason": reason})


# --- keys -----------------------------------------------------------------------


def private_key_load(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the merchant private key is not an RSA key")
    return key


def public_key_load(pem: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the WeChat Pay public key is not an RSA key")
    return key


def certificate_serial(certificate: x509.Certificate) -> str:
    return serial_normalize(format(certificate.serial_number, "X"))


def serial_normalize(serial: str) -> str:
    """Certificate serials compare as hex numbers (case and leading zeros aside);
    public key ids (``PUB_KEY_ID_...``) compare exactly."""
    if re.fullmatch(r"[0-9A-Fa-f]{1,64}", serial):
        return serial.upper().lstrip("0") or "0"
    return serial


@dataclass(frozen=True)
class TrustedKey:
    """A key WeChat signs with; a platform certificate's key is trusted only while the certificate is valid."""

    serial: str
    public_key: rsa.RSAPublicKey
    not_before: datetime | None = None
    not_after: datetime | None = None

    def is_valid_at(self, moment: datetime) -> bool:
        return (self.not_before is None or moment >= self.not_before) and (self.not_after is None or moment <= self.not_after)


def trusted_certificates(pem: bytes) -> list[TrustedKey]:
    """Every certificate in a PEM file (one or a bundle), keyed by its serial."""
    keys = []
    for certificate in x509.load_pem_x509_certificates(pem):
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise ValueError("a WeChat Pay platform certificate without an RSA key")
        keys.append(
            TrustedKey(
                serial=certificate_serial(certificate), public_key=public_key,
                not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
            )
        )
    return keys


@dataclass(frozen=True)
class Credentials:
    mchid: str
    merchant_serial: str
    private_key: rsa.RSAPrivateKey
    apiv3_key: bytes
    # serial -> key: the public key id and every platform certificate at once,
    # so a rotation never has a moment when a genuine message is refused.
    trusted: Mapping[str, TrustedKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.apiv3_key) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")


# --- signing and verifying --------------------------------------------------------


def rsa_sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode("ascii")


def rsa_verify(public_key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    if len(raw) != public_key.key_size // 8:
        return False
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def request_message(method: str, url_path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What the merchant signs: ``url_path`` is the absolute path with its query string."""
    return f"{method.upper()}\n{url_path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"


def answer_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """What WeChat signs in a response or a notification: the raw body bytes, never re-serialised JSON."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def authorization(credentials: Credentials, method: str, url_path: str, body: bytes, *, timestamp: str | None = None, nonce: str | None = None) -> str:
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(16).upper()
    signature = rsa_sign(credentials.private_key, request_message(method, url_path, timestamp, nonce, body))
    return (
        f'{SCHEME} mchid="{credentials.mchid}",nonce_str="{nonce}",signature="{signature}",'
        f'timestamp="{timestamp}",serial_no="{credentials.merchant_serial}"'
    )


def signed_verify(trusted: Mapping[str, TrustedKey], headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
    """Check a WeChat signature over ``body``; return the serial that signed it.

    ``headers`` must map lower-case names to values. Raises ``SignatureRejected``
    naming the first check that failed; never calls out.
    """
    values = {name: headers.get(name) for name in (TIMESTAMP, NONCE, SIGNATURE, SERIAL)}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise SignatureRejected("missing_header", f"missing {', '.join(missing)}")
    timestamp, nonce, signature, serial = values[TIMESTAMP], values[NONCE], values[SIGNATURE], values[SERIAL]
    signature_type = headers.get(SIGNATURE_TYPE)
    if signature_type is not None and signature_type != SCHEME:
        raise SignatureRejected("signature_type", "unsupported signature type")
    if not TIMESTAMP_PATTERN.fullmatch(timestamp):
        raise SignatureRejected("bad_timestamp", "malformed timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRejected("stale_timestamp", "timestamp more than 5 minutes off")
    if not NONCE_PATTERN.fullmatch(nonce):
        raise SignatureRejected("bad_nonce", "malformed nonce")
    if not SERIAL_PATTERN.fullmatch(serial):
        raise SignatureRejected("unknown_serial", "unknown serial")
    key = trusted.get(serial) or trusted.get(serial_normalize(serial))
    if key is None:
        raise SignatureRejected("unknown_serial", "unknown serial")
    if not key.is_valid_at(datetime.fromtimestamp(now, UTC)):
        raise SignatureRejected("expired_key", "the certificate for this serial is not valid now")
    if len(signature) > MAX_SIGNATURE_CHARS or not rsa_verify(key.public_key, answer_message(timestamp, nonce, body), signature):
        raise SignatureRejected("bad_signature", "signature does not verify")
    return key.serial


def aead_decrypt(apiv3_key: bytes, *, nonce: str, ciphertext: str, associated_data: str) -> bytes:
    """AEAD_AES_256_GCM with the APIv3 key: the tag authenticates ``associated_data`` too."""
    try:
        data = base64.b64decode(ciphertext.encode("ascii"), validate=True)
        return AESGCM(apiv3_key).decrypt(nonce.encode("utf-8"), data, associated_data.encode("utf-8"))
    except (binascii.Error, UnicodeEncodeError, ValueError, InvalidTag) as error:
        raise WechatPayError("cannot decrypt the resource", code="DECRYPT_ERROR") from error


def aead_encrypt(apiv3_key: bytes, *, nonce: str, plaintext: bytes, associated_data: str) -> str:
    return base64.b64encode(AESGCM(apiv3_key).encrypt(nonce.encode("utf-8"), plaintext, associated_data.encode("utf-8"))).decode("ascii")


def pay_sign(private_key: rsa.RSAPrivateKey, *, appid: str, timestamp: str, nonce: str, package: str) -> str:
    """wx.requestPayment's ``paySign``: the merchant key over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n``."""
    return rsa_sign(private_key, f"{appid}\n{timestamp}\n{nonce}\n{package}\n".encode())


# --- the HTTP client --------------------------------------------------------------


def json_dumps(payload: dict) -> bytes:
    # The bytes signed are the bytes sent: serialise once.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    request_id: str


class WechatPayClient:
    """One signed call per method; every 2xx answer's signature is verified before it is read."""

    def __init__(self, *, credentials: Credentials, base_url: str, timeout: float, transport: httpx.BaseTransport | None = None) -> None:
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.transport = transport

    def request(self, method: str, path: str, *, query: dict | None = None, payload: dict | None = None) -> Answer:
        url_path = path + ("?" + urlencode(query) if query else "")
        body = json_dumps(payload) if payload is not None else b""
        headers = {
            "Authorization": authorization(self.credentials, method, url_path, body),
            "Accept": "application/json",
            "User-Agent": "auction-wechatpay/1 (+httpx)",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport, follow_redirects=False) as http:
                response = http.request(method, self.base_url + url_path, content=body, headers=headers)
        except httpx.TimeoutException as error:
            raise WechatPayError(f"{method} {path} timed out", code="TIMEOUT") from error
        except httpx.HTTPError as error:
            raise WechatPayError(f"{method} {path} failed: {error}", code="NETWORK_ERROR") from error
        request_id = response.headers.get("request-id", "")
        raw = response.content
        if 200 <= response.status_code < 300:
            # A 2xx answer without a good signature is forged or tampered:
            # never act on it (a 204 is signed over an empty body).
            try:
                signed_verify(self.credentials.trusted, {k.lower(): v for k, v in response.headers.items()}, raw)
            except SignatureRejected as error:
                logger.warning("WeChat Pay answer to %s %s refused (%s), request id %s", method, path, error.reason, request_id)
                raise SignatureRejected(error.reason, f"answer to {method} {path}: {error.detail['reason']}", status=response.status_code) from None
            if not raw:
                return Answer(response.status_code, {}, request_id)
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                raise WechatPayError(f"{method} {path}: the answer is not a JSON object", status=response.status_code, code="BAD_RESPONSE")
            return Answer(response.status_code, parsed, request_id)
        # An error answer can only stop us from doing something, never make us
        # do it, so it is read as is: a forged one costs a retry at worst.
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        code = str(parsed.get("code") or "HTTP_ERROR")[:64]
        message = str(parsed.get("message") or response.reason_phrase)[:500]
        raise WechatPayError(
            f"{method} {path}: {message} (request id {request_id})", status=response.status_code, code=code,
            detail={"request_id": request_id, "detail": parsed.get("detail")},
        )
