"""Property tests of the notify endpoints: whatever arrives, a 4xx in WeChat's
failure shape, never a 500, and nothing applied unless genuinely signed.

Examples are bounded (and the example database off) so this runs in seconds.
"""

import time

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auction.models import Deposit, Event, Payment, Refund
from auction.services.deposits import deposit_request
from auction.services.payments import payment_prepare
from tests.factories import LotFactory, UserFactory
from tests.fakes.wechatpay import running

pytestmark = pytest.mark.django_db

PATHS = ["/api/v1/payments/wechat/notify", "/api/v1/payments/wechat/refund-notify"]
HEADER_NAMES = ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Signature-Type"]
FUZZ = settings(
    max_examples=120, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture
def fake(settings, tmp_path):
    with running(settings, tmp_path / "wechatpay") as fake:
        yield fake


@pytest.fixture
def genuine(fake):
    """A payment waiting at WeChat, and the genuine notification of its success (not yet sent)."""
    lot = LotFactory(deposit=50_000)
    deposit, payment, _ = deposit_request(user=UserFactory(), lot_id=lot.pk)
    payment_prepare(payment=payment)
    return fake.pay(payment.out_trade_no)


def post(client, path: str, headers: dict, body: bytes):
    return client.post(path, data=body, content_type="application/json", headers=headers)


def assert_refused_and_nothing_changed(response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])
    body = response.json()
    assert body["code"] == "FAIL" and isinstance(body["message"], str)
    assert not Payment.objects.exclude(status="created").exists()
    assert not Deposit.objects.exclude(status="pending").exists()
    assert not Refund.objects.exists()
    assert not Event.objects.filter(kind__in=["payment.paid", "deposit.held", "refund.succeeded", "refund.failed"]).exists()


def header_values(genuine_headers: dict):
    return st.one_of(
        st.text(max_size=80),  # anything, non-ASCII included
        st.text(alphabet="签名验证失败😀éß", min_size=1, max_size=40),
        st.sampled_from(["", " ", "0", "-1", "999999999999999999999", "PUB_KEY_ID_", "=====", "AAAA", "a\nb"]),
        st.binary(max_size=60).map(lambda raw: raw.hex()),
        st.sampled_from(list(genuine_headers.values())),
        st.integers(min_value=0, max_value=2**40).map(str),
    )


@FUZZ
@given(data=st.data())
def test_arbitrary_headers_and_bodies_are_refused_with_a_4xx(client, genuine, data):
    path = data.draw(st.sampled_from(PATHS))
    names = data.draw(st.lists(st.sampled_from(HEADER_NAMES), unique=True, max_size=len(HEADER_NAMES)))
    headers = {name: data.draw(header_values(genuine.headers)) for name in names}
    body = data.draw(
        st.one_of(
            st.binary(max_size=2_000),
            st.text(max_size=500).map(str.encode),
            st.sampled_from([b"", b"{}", b"[]", b"null", b'{"resource":{}}', b'{"resource":{"algorithm":"AEAD_AES_256_GCM"}}']),
            st.integers(min_value=0, max_value=len(genuine.body) - 1).map(lambda cut: genuine.body[:cut]),
        )
    )
    # The one input that must be accepted: the genuine notification itself.
    assume(not (body == genuine.body and all(headers.get(name) == genuine.headers[name] for name in HEADER_NAMES[:4])))
    assert_refused_and_nothing_changed(post(client, path, headers, body))


@FUZZ
@given(data=st.data())
def test_any_change_to_a_genuine_notification_is_refused(client, genuine, data):
    headers, body = dict(genuine.headers), genuine.body
    change = data.draw(st.sampled_from(["flip body byte", "truncate", "append", "timestamp", "nonce", "signature", "serial", "drop header"]))
    if change == "flip body byte":
        index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
        body = body[:index] + bytes([body[index] ^ data.draw(st.integers(min_value=1, max_value=255))]) + body[index + 1 :]
    elif change == "truncate":
        body = body[: data.draw(st.integers(min_value=0, max_value=len(body) - 1))]
    elif change == "append":
        body = body + data.draw(st.binary(min_size=1, max_size=50))
    elif change == "timestamp":
        shift = data.draw(st.integers(min_value=-10**6, max_value=10**6).filter(lambda value: value != 0))
        headers["Wechatpay-Timestamp"] = str(int(headers["Wechatpay-Timestamp"]) + shift)
    elif change == "nonce":
        headers["Wechatpay-Nonce"] = data.draw(st.text(min_size=1, max_size=40).filter(lambda value: value != headers["Wechatpay-Nonce"]))
    elif change == "signature":
        # Characters before the last quantum: every bit counts, so the bytes change.
        signature = headers["Wechatpay-Signature"]
        index = data.draw(st.integers(min_value=0, max_value=len(signature) - 5))
        replacement = data.draw(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/*-_签").filter(lambda c: c != signature[index]))
        headers["Wechatpay-Signature"] = signature[:index] + replacement + signature[index + 1 :]
    elif change == "serial":
        headers["Wechatpay-Serial"] = data.draw(st.text(max_size=40).filter(lambda value: value != headers["Wechatpay-Serial"]))
    else:
        headers.pop(data.draw(st.sampled_from(["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"])))
    assert_refused_and_nothing_changed(post(client, genuine.path, headers, body))


@pytest.mark.parametrize("size, status", [(70_000, 413), (3 * 1024 * 1024, 413)])
def test_huge_bodies_are_refused_unread(client, genuine, size, status):
    body = genuine.body + b" " * size
    assert_refused_and_nothing_changed(post(client, genuine.path, genuine.headers, body))
    assert post(client, genuine.path, genuine.headers, body).status_code == status


def test_the_genuine_notification_after_all_that_is_accepted_once(client, genuine):
    # The control: the same fixture's untouched notification is what goes through.
    started = time.monotonic()
    assert post(client, genuine.path, genuine.headers, genuine.body).status_code == 204
    assert post(client, genuine.path, genuine.headers, genuine.body).status_code == 204
    assert Event.objects.filter(kind="payment.paid").count() == 1
    assert time.monotonic() - started < 2
