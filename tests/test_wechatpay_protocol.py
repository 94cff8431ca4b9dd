"""WeChat Pay v3 on the wire, against the local fake: signing, verifying, keys, errors.

Every request goes to 127.0.0.1; the real API base is never called.
"""

import base64
import json
import os
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from auction.gateways.payments import GatewayError, PaidAtGateway, gateway_for
from auction.gateways.wechatpay import WechatPayGateway, WechatPayNotConfigured, description_for
from auction.gateways.wechatpay_client import SignatureRejected, WechatPayError
from auction.gateways.wechatpay_notify import NotificationRejected, notification_verify_and_decrypt
from auction.models import Payment, Refund
from auction.services.deposits import deposit_request
from auction.services.payments import refund_create
from tests.factories import LotFactory, UserFactory
from tests.fakes.wechatpay import PUBLIC_KEY_ID, certificate_pem, private_pem, public_pem, rsa_key, running, session_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def fake(settings, tmp_path):
    with running(settings, tmp_path / "wechatpay") as fake:
        yield fake


@pytest.fixture
def payment(fake) -> Payment:
    lot = LotFactory(title="清乾隆 粉彩花卉纹碗", deposit=50_000)
    _, payment, _ = deposit_request(user=UserFactory(), lot_id=lot.pk)
    assert payment.gateway == "wechat"
    return payment


def _verifies(public_key, message: bytes, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:  # noqa: BLE001
        return False
    return True


def _authorization_fields(header: str) -> dict:
    scheme, _, rest = header.partition(" ")
    assert scheme == "WECHATPAY2-SHA256-RSA2048"
    return {key: value.strip('"') for key, value in (part.split("=", 1) for part in rest.split(","))}


def _paid(fake, payment) -> None:
    fake.pay(payment.out_trade_no)


# --- what we send ----------------------------------------------------------------------


def test_every_request_is_signed_over_method_path_query_timestamp_nonce_and_body(fake, payment):
    # given: the merchant public key WeChat holds
    merchant_public_key = fake.run_keys.merchant.public_key()
    gateway = WechatPayGateway()
    # when: a POST with a body and a GET with a query string
    gateway.create(payment)
    gateway.query(payment)
    # then: each Authorization verifies over METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n
    post, get = fake.requests[-2], fake.requests[-1]
    assert get["url_path"] == f"/v3/pay/transactions/out-trade-no/{payment.out_trade_no}?mchid={fake.mchid}"
    for request, method in ((post, "POST"), (get, "GET")):
        fields = _authorization_fields(request["authorization"])
        assert fields["mchid"] == fake.mchid and fields["serial_no"] == fake.merchant_serial
        assert abs(int(fields["timestamp"]) - time.time()) < 60
        message = f"{method}\n{request['url_path']}\n{fields['timestamp']}\n{fields['nonce_str']}\n".encode() + request["body"] + b"\n"
        assert _verifies(merchant_public_key, message, fields["signature"])


def test_a_request_signed_with_the_wrong_key_is_refused_with_sign_error(fake, payment, settings, tmp_path):
    other = tmp_path / "other_key.pem"
    other.write_bytes(private_pem(rsa_key()))
    settings.WECHATPAY_PRIVATE_KEY_FILE = str(other)
    with pytest.raises(WechatPayError) as refused:
        WechatPayGateway().create(payment)
    assert (refused.value.status, refused.value.code) == (401, "SIGN_ERROR")
    assert isinstance(refused.value, GatewayError)


def test_prepay_asks_for_the_payment_as_it_is_and_expires_with_it(fake, payment):
    WechatPayGateway().create(payment)
    sent = json.loads(fake.requests[-1]["body"])
    assert fake.requests[-1]["path"] == "/v3/pay/transactions/jsapi"
    assert sent["appid"] == fake.appid and sent["mchid"] == fake.mchid
    assert sent["out_trade_no"] == payment.out_trade_no and 6 <= len(sent["out_trade_no"]) <= 32
    assert sent["amount"] == {"total": 50_000, "currency": "CNY"}
    assert sent["payer"] == {"openid": payment.user.openid}
    assert sent["notify_url"] == "http://testserver/api/v1/payments/wechat/notify"
    assert sent["description"] == "保证金 清乾隆 粉彩花卉纹碗"
    # time_expire: the payment's own deadline, RFC 3339 in +08:00
    assert sent["time_expire"].endswith("+08:00")
    assert datetime.fromisoformat(sent["time_expire"]) == payment.expires_at.replace(microsecond=0)


def test_a_long_title_is_cut_to_127_bytes_on_a_character_boundary(fake):
    lot = LotFactory(title="拍" * 200, deposit=1_000)
    _, payment, _ = deposit_request(user=UserFactory(), lot_id=lot.pk)
    description = description_for(payment)
    assert len(description.encode()) <= 127 and description.startswith("保证金 拍")


def test_client_params_carry_a_pay_sign_that_verifies_with_the_merchant_public_key(fake, payment):
    params = WechatPayGateway().create(payment)
    assert set(params) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert params["signType"] == "RSA" and params["timeStamp"].isdigit()
    assert params["package"] == f"prepay_id={fake.payments[payment.out_trade_no]['prepay_id']}"
    message = f"{fake.appid}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    assert _verifies(fake.run_keys.merchant.public_key(), message, params["paySign"])


def test_prepaying_the_same_number_twice_gets_the_same_prepay_id(fake, payment):
    first, second = WechatPayGateway().create(payment), WechatPayGateway().create(payment)
    assert first["package"] == second["package"]
    assert len(fake.payments) == 1


def test_a_payer_without_openid_is_refused_before_calling(fake, payment):
    type(payment.user).objects.filter(pk=payment.user_id).update(openid=None)
    payment.refresh_from_db()
    with pytest.raises(WechatPayError, match="openid"):
        WechatPayGateway().create(payment)
    assert fake.requests == []


# --- what we read back --------------------------------------------------------------------


@pytest.mark.parametrize(
    "misbehaviour, reason",
    [
        ({"answer_tamper": True}, "bad_signature"),
        ({"answers_unsigned": True}, "missing_header"),
        ({"answer_serial": "PUB_KEY_ID_UNKNOWN"}, "unknown_serial"),
        ({"answer_clock_offset": -600}, "stale_timestamp"),
    ],
)
def test_an_answer_that_does_not_carry_a_good_signature_is_not_believed(fake, payment, misbehaviour, reason):
    for name, value in misbehaviour.items():
        setattr(fake, name, value)
    with pytest.raises(SignatureRejected) as refused:
        WechatPayGateway().create(payment)
    assert refused.value.reason == reason and refused.value.code == "BAD_SIGNATURE"


def test_a_204_is_verified_too(fake, payment):
    WechatPayGateway().create(payment)
    fake.answers_unsigned = True
    with pytest.raises(SignatureRejected):
        WechatPayGateway().close(payment)
    assert fake.payments[payment.out_trade_no]["trade_state"] == "CLOSED"  # WeChat closed it; we did not believe the answer
    fake.answers_unsigned = False
    WechatPayGateway().close(payment)  # closing a closed order is fine


def test_closing_a_paid_order_reports_the_payment_and_applies_nothing(fake, payment):
    # given: the payer paid at WeChat, and no notification has come
    WechatPayGateway().create(payment)
    fake.pay(payment.out_trade_no)
    # when: we close it, WeChat refuses (ORDERPAID)
    with pytest.raises(PaidAtGateway) as paid:
        WechatPayGateway().close(payment)
    # then: the gateway says what WeChat reports; deciding what it means is payment_close's
    record = fake.payments[payment.out_trade_no]
    assert (paid.value.state.status, paid.value.state.transaction_id, paid.value.state.amount) == ("paid", record["transaction_id"], payment.amount)
    payment.refresh_from_db()
    assert payment.status == "created" and payment.transaction_id is None


def test_errors_are_typed_with_status_and_code(fake, payment, settings):
    fake.fail_next.append((500, "SYSTEM_ERROR"))
    with pytest.raises(WechatPayError) as failed:
        WechatPayGateway().create(payment)
    assert (failed.value.status, failed.value.code) == (500, "SYSTEM_ERROR")
    fake.answer_delay = 1.5
    settings.WECHATPAY_TIMEOUT_SECONDS = 0.5
    with pytest.raises(WechatPayError) as timed_out:
        WechatPayGateway().create(payment)
    assert (timed_out.value.status, timed_out.value.code) == (None, "TIMEOUT")
    fake.answer_delay = 0
    fake.stop()
    with pytest.raises(WechatPayError) as unreachable:
        WechatPayGateway().create(payment)
    assert unreachable.value.code == "NETWORK_ERROR"


def test_query_maps_wechat_trade_states(fake, payment):
    gateway = WechatPayGateway()
    assert gateway.query(payment).status == "open"  # ORDER_NOT_EXIST: never prepaid
    gateway.create(payment)
    assert gateway.query(payment).status == "open"  # NOTPAY
    fake.pay(payment.out_trade_no)
    state = gateway.query(payment)
    record = fake.payments[payment.out_trade_no]
    assert (state.status, state.transaction_id, state.amount) == ("paid", record["transaction_id"], 50_000)
    assert state.paid_at is not None and state.paid_at.utcoffset() == timedelta(hours=8)
    record["trade_state"] = "REFUND"
    assert gateway.query(payment).status == "refunded"
    record["trade_state"] = "CLOSED"
    assert gateway.query(payment).status == "closed"


def test_a_refund_is_asked_once_per_number_and_reported_processing_until_it_ends(fake, payment):
    # given: a paid payment and its refund row
    gateway = WechatPayGateway()
    gateway.create(payment)
    fake.pay(payment.out_trade_no)
    Payment.objects.filter(pk=payment.pk).update(status="paid", transaction_id=fake.payments[payment.out_trade_no]["transaction_id"])
    payment.refresh_from_db()
    refund = refund_create(payment=payment, reason="lot ended without you winning")
    # when: it is sent twice (a retry)
    first, second = gateway.refund(refund), gateway.refund(refund)
    # then: one refund at WeChat, the same number, processing either way
    assert first == second and first.status == "processing" and first.gateway_refund_id
    assert list(fake.refunds) == [Refund.number_for(payment)]
    sent = json.loads(fake.requests[-1]["body"])
    assert sent["amount"] == {"refund": 50_000, "total": 50_000, "currency": "CNY"}
    assert sent["notify_url"] == "http://testserver/api/v1/payments/wechat/refund-notify"
    assert gateway.refund_query(refund).status == "processing"
    for wechat_status, ours in (("SUCCESS", "succeeded"), ("ABNORMAL", "failed"), ("CLOSED", "failed")):
        fake.refunds[refund.out_refund_no]["status"] = wechat_status
        assert gateway.refund_query(refund).status == ours


def test_a_refund_answer_for_another_amount_is_not_believed(fake, payment):
    gateway = WechatPayGateway()
    gateway.create(payment)
    fake.pay(payment.out_trade_no)
    Payment.objects.filter(pk=payment.pk).update(status="paid")
    refund = refund_create(payment=payment, reason="test")
    gateway.refund(refund)
    fake.refunds[refund.out_refund_no]["refund"] = 1
    with pytest.raises(WechatPayError, match="amount"):
        gateway.refund_query(refund)


# --- notifications -------------------------------------------------------------------------


def _transaction_notification(fake, payment, **options):
    WechatPayGateway().create(payment)
    return fake.pay(payment.out_trade_no, **options)


def test_a_genuine_notification_verifies_and_decrypts(fake, payment):
    notification = _transaction_notification(fake, payment)
    decrypted = notification_verify_and_decrypt(notification.headers, notification.body)
    assert decrypted["event_type"] == "TRANSACTION.SUCCESS"
    assert decrypted["resource"] == notification.resource
    assert decrypted["resource"]["amount"]["total"] == 50_000


@pytest.mark.parametrize("offset, accepted", [(-290, True), (290, True), (-310, False), (310, False), (-86_400, False)])
def test_a_notification_timestamp_more_than_five_minutes_off_is_refused(fake, payment, offset, accepted):
    notification = _transaction_notification(fake, payment, timestamp=int(time.time()) + offset)
    if accepted:
        notification_verify_and_decrypt(notification.headers, notification.body)
        return
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert (refused.value.reason, refused.value.status) == ("stale_timestamp", 401)


def test_an_unknown_serial_is_refused_without_calling_anyone(fake, payment, monkeypatch):
    notification = _transaction_notification(fake, payment, serial="PUB_KEY_ID_0000NOT0OURS", key=rsa_key())

    def no_network(*args, **kwargs):
        raise AssertionError("verification must not call out")

    monkeypatch.setattr(httpx.Client, "send", no_network)
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert refused.value.reason == "unknown_serial"


def test_a_known_serial_with_another_key_is_refused(fake, payment):
    notification = _transaction_notification(fake, payment, key=rsa_key())
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert refused.value.reason == "bad_signature"


def test_a_body_changed_after_signing_is_refused(fake, payment):
    notification = _transaction_notification(fake, payment, tamper=lambda body: body.replace(b'"summary":"', b'"summary":"x'))
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert refused.value.reason == "bad_signature"


def test_a_resource_under_another_apiv3_key_is_refused(fake, payment):
    notification = _transaction_notification(fake, payment, apiv3_key=b"k" * 32)
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert refused.value.reason == "undecryptable"


def test_another_signature_type_is_refused(fake, payment):
    notification = _transaction_notification(fake, payment)
    with pytest.raises(NotificationRejected):
        notification_verify_and_decrypt({**notification.headers, "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}, notification.body)


def test_keys_rotate_public_key_and_several_platform_certificates_at_once(fake, payment, settings, tmp_path):
    # given: WeChat's public key plus two platform certificates, old and new
    old_key, new_key = session_key("platform-old"), session_key("platform-new")
    old_serial, new_serial = 0x1D2C3B4A5968778695A4B3C2D1E0F00112233445, 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
    (tmp_path / "old.pem").write_bytes(certificate_pem(old_key, old_serial))
    (tmp_path / "new.pem").write_bytes(certificate_pem(new_key, new_serial))
    settings.WECHATPAY_PLATFORM_CERT_FILES = [str(tmp_path / "old.pem"), str(tmp_path / "new.pem")]
    WechatPayGateway().create(payment)
    # when / then: whichever key WeChat signs with, the notification holds
    signers = {PUBLIC_KEY_ID: None, format(old_serial, "X"): old_key, format(new_serial, "x"): new_key}
    for serial, key in signers.items():
        notification = fake.pay(payment.out_trade_no, serial=serial, key=key)
        assert notification_verify_and_decrypt(notification.headers, notification.body)["event_type"] == "TRANSACTION.SUCCESS"
    # when: the old certificate is retired from the configuration
    settings.WECHATPAY_PLATFORM_CERT_FILES = [str(tmp_path / "new.pem")]
    notification = fake.pay(payment.out_trade_no, serial=format(old_serial, "X"), key=old_key)
    # then: its signatures are no longer trusted
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert refused.value.reason == "unknown_serial"


def test_an_expired_platform_certificate_is_not_trusted(fake, payment, settings, tmp_path):
    key, serial = session_key("platform-old"), 0x7777
    now = datetime.now(UTC)
    (tmp_path / "expired.pem").write_bytes(certificate_pem(key, serial, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)))
    settings.WECHATPAY_PLATFORM_CERT_FILES = [str(tmp_path / "expired.pem")]
    notification = _transaction_notification(fake, payment, serial="7777", key=key)
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(notification.headers, notification.body)
    assert refused.value.reason == "expired_key"


def test_keys_can_come_as_pem_text_in_the_environment(fake, payment, settings):
    settings.WECHATPAY_PRIVATE_KEY_FILE = ""
    settings.WECHATPAY_PRIVATE_KEY = private_pem(fake.run_keys.merchant).decode().replace("\n", "\\n")
    settings.WECHATPAY_PUBLIC_KEY_FILE = ""
    settings.WECHATPAY_PUBLIC_KEY = public_pem(fake.run_keys.platform).decode()
    params = WechatPayGateway().create(payment)
    assert params["package"].startswith("prepay_id=")


# --- configuration --------------------------------------------------------------------------


def test_the_sandbox_default_needs_no_wechat_pay_settings(settings):
    for name in ("WECHATPAY_MCHID", "WECHATPAY_PRIVATE_KEY_FILE", "WECHATPAY_APIV3_KEY", "WECHATPAY_PUBLIC_KEY_ID"):
        setattr(settings, name, "")
    assert gateway_for("sandbox").name == "sandbox"
    gateway = gateway_for("wechat")  # loads nothing until used
    with pytest.raises(WechatPayNotConfigured) as missing:
        gateway.query(Payment(out_trade_no="D20260101abcdefgh"))
    assert "WECHATPAY_MCHID" in str(missing.value) and isinstance(missing.value, GatewayError)


def test_a_short_apiv3_key_is_a_configuration_error(fake, payment, settings):
    settings.WECHATPAY_APIV3_KEY = "too-short"
    with pytest.raises(WechatPayNotConfigured, match="APIv3"):
        WechatPayGateway().create(payment)


def test_the_default_api_base_is_the_real_one_and_tests_never_use_it(fake, settings):
    from project import settings as project_settings

    assert project_settings.WECHATPAY_API_BASE == "https://api.mch.weixin.qq.com" or "WECHATPAY_API_BASE" in os.environ
    assert settings.WECHATPAY_API_BASE.startswith("http://127.0.0.1:")


def test_wechats_signature_probe_is_refused(fake, payment):
    # WeChat Pay sends probes signed "WECHATPAY/SIGNTEST/..." to check that merchants verify.
    notification = _transaction_notification(fake, payment)
    probe = {**notification.headers, "Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + notification.headers["Wechatpay-Signature"][19:]}
    with pytest.raises(NotificationRejected) as refused:
        notification_verify_and_decrypt(probe, notification.body)
    assert refused.value.reason == "bad_signature"
