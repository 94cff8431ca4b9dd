"""Deposits, orders and refunds through the fake WeChat Pay, end to end.

Notifications are the fake's exact signed bytes, replayed through Django's
test client (``send``) or delivered over real HTTP to a live server.
"""

import base64
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.db import connection

from auction.models import Deposit, Event, Lot, Order, Payment, Refund
from tests.factories import LotFactory
from tests.fakes.wechatpay import rsa_key, running
from tests.market import bid, bidder, deadline_passes, hammer, sweep_until_quiet

pytestmark = pytest.mark.django_db

ADDRESS = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}


@pytest.fixture
def fake(settings, tmp_path):
    with running(settings, tmp_path / "wechatpay") as fake:
        yield fake


@pytest.fixture
def lot():
    return LotFactory(start_price=100_000, deposit=50_000)


def send(client, notification):
    """Replay the notification's exact bytes and headers through Django's test client."""
    headers = {name: value for name, value in notification.headers.items() if name.lower() != "content-type"}
    return client.post(notification.path, data=notification.body, content_type="application/json", headers=headers)


def assert_fail(response, status: int) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == "FAIL" and isinstance(body["message"], str) and body["message"], body


def pay_sign_verifies(fake, params: dict) -> bool:
    message = f"{fake.appid}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    try:
        fake.run_keys.merchant.public_key().verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    except Exception:  # noqa: BLE001
        return False
    return True


def deposit_paid(client, fake, api, **target) -> dict:
    created = api.post("/deposits", target)
    assert created.status_code == 201, created.content
    assert send(client, fake.pay(created.json()["payment"]["out_trade_no"])).status_code == 204
    return created.json()["deposit"]


def won_order(client, fake, lot) -> tuple:
    """A wins against B; the hammer falls; B's refund is with WeChat."""
    a, b = bidder(client, "阿甲"), bidder(client, "贝乙")
    deposit_a, deposit_b = deposit_paid(client, fake, a, lot_id=lot.pk), deposit_paid(client, fake, b, lot_id=lot.pk)
    assert bid(b, lot.pk, 100_000).status_code == 201
    assert bid(a, lot.pk, 110_000).status_code == 201
    hammer(lot)
    sweep_until_quiet()
    return a, b, deposit_a, deposit_b, Order.objects.get(lot=lot)


# --- the journeys ---------------------------------------------------------------------------


def test_a_deposit_is_paid_through_wechat_pay_and_held(client, fake, lot):
    # given: a bidder asks for a deposit
    a = bidder(client)
    created = a.post("/deposits", {"lot_id": lot.pk})
    assert created.status_code == 201, created.content
    payment = created.json()["payment"]
    # then: WeChat has the prepay, the client gets params signed by the merchant
    assert payment["gateway"] == "wechat" and payment["amount"] == 50_000
    assert payment["params"]["package"] == f"prepay_id={fake.payments[payment['out_trade_no']]['prepay_id']}"
    assert pay_sign_verifies(fake, payment["params"])
    assert a.post(f"/lots/{lot.pk}/bids", {"price": 100_000}).json()["code"] == "deposit_required"
    # when: the user pays and WeChat notifies
    response = send(client, fake.pay(payment["out_trade_no"]))
    # then
    assert response.status_code == 204 and response.content == b""
    assert a.get(f"/payments/{payment['out_trade_no']}").json()["status"] == "paid"
    assert Deposit.objects.get(pk=created.json()["deposit"]["id"]).status == "held"
    stored = Payment.objects.get(out_trade_no=payment["out_trade_no"])
    assert stored.transaction_id == fake.payments[payment["out_trade_no"]]["transaction_id"]
    assert bid(a, lot.pk, 100_000).status_code == 201


def test_an_order_is_paid_and_the_loser_refunded_through_wechat_pay(client, fake, lot):
    a, b, deposit_a, deposit_b, order = won_order(client, fake, lot)
    # then: B's refund went to WeChat once, and waits for its outcome
    refund_b = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    assert refund_b.status == "processing" and list(fake.refunds) == [refund_b.out_refund_no]
    assert Deposit.objects.get(pk=deposit_b["id"]).status == "refunding"
    # when: WeChat notifies the refund
    assert send(client, fake.refund_finish(refund_b.out_refund_no)).status_code == 204
    # then
    refund_b.refresh_from_db()
    assert refund_b.status == "succeeded" and Deposit.objects.get(pk=deposit_b["id"]).status == "refunded"
    # when: A pays the rest of the order
    paying = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS})
    assert paying.status_code == 200, paying.content
    payment = paying.json()["payment"]
    assert payment["amount"] == 60_000 and pay_sign_verifies(fake, payment["params"])
    assert send(client, fake.pay(payment["out_trade_no"])).status_code == 204
    # then
    order.refresh_from_db()
    assert order.status == "paid" and Deposit.objects.get(pk=deposit_a["id"]).status == "applied"
    assert a.get(f"/orders/{order.order_no}").json()["status"] == "paid"
    assert fake.payments[payment["out_trade_no"]]["request"]["time_expire"].endswith("+08:00")


def test_a_refund_whose_notification_never_comes_is_found_by_the_sweep(client, fake, lot):
    _, _, _, deposit_b, _ = won_order(client, fake, lot)
    refund_b = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    # when: WeChat finishes the refund but its notification is lost
    fake.refund_finish(refund_b.out_refund_no)
    sweep_until_quiet()
    # then: the sweep's query found it
    refund_b.refresh_from_db()
    assert refund_b.status == "succeeded" and Deposit.objects.get(pk=deposit_b["id"]).status == "refunded"
    assert Event.objects.filter(kind="refund.succeeded", refund=refund_b, actor="job").count() == 1


@pytest.mark.parametrize("outcome", ["ABNORMAL", "CLOSED"])
def test_a_refund_that_fails_at_wechat_is_marked_failed_for_ops(client, fake, lot, outcome):
    _, _, _, deposit_b, _ = won_order(client, fake, lot)
    refund_b = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    assert send(client, fake.refund_finish(refund_b.out_refund_no, outcome)).status_code == 204
    refund_b.refresh_from_db()
    assert refund_b.status == "failed" and Deposit.objects.get(pk=deposit_b["id"]).status == "refunding"


def test_an_order_paid_in_time_whose_notification_is_late_is_paid_not_overdue(client, fake, lot):
    a, _, deposit_a, _, order = won_order(client, fake, lot)
    payment = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).json()["payment"]
    # given: the user pays before the deadline, the notification has not come
    late_notification = fake.pay(payment["out_trade_no"])
    # when: the deadline passes and the overdue job runs (it closes payments first)
    deadline_passes(order)
    sweep_until_quiet()
    # then: closing found it paid at WeChat, so the order is paid, not overdue
    order.refresh_from_db()
    assert order.status == "paid" and Deposit.objects.get(pk=deposit_a["id"]).status == "applied"
    assert not Refund.objects.filter(payment__out_trade_no=payment["out_trade_no"]).exists()
    # and the notification, when it comes, changes nothing
    assert send(client, late_notification).status_code == 204
    assert Event.objects.filter(kind="payment.paid", payment__out_trade_no=payment["out_trade_no"]).count() == 1


def test_a_payment_arriving_after_the_order_went_overdue_is_refunded_automatically(client, fake, lot):
    a, _, deposit_a, _, order = won_order(client, fake, lot)
    payment = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).json()["payment"]
    deadline_passes(order)
    sweep_until_quiet()
    order.refresh_from_db()
    assert order.status == "overdue" and fake.payments[payment["out_trade_no"]]["trade_state"] == "CLOSED"
    # when: a payment still gets through (the race WeChat can show at close) and is notified
    assert send(client, fake.pay(payment["out_trade_no"], force=True)).status_code == 204
    sweep_until_quiet()
    # then: the order stays overdue and the money goes back through WeChat
    refund = Refund.objects.get(payment__out_trade_no=payment["out_trade_no"])
    assert refund.reason == "paid after the order went overdue" and refund.out_refund_no in fake.refunds
    assert send(client, fake.refund_finish(refund.out_refund_no)).status_code == 204
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == "succeeded" and order.status == "overdue"
    assert Lot.objects.get(pk=lot.pk).status == "defaulted" and Deposit.objects.get(pk=deposit_a["id"]).status == "forfeited"


def test_a_deposit_whose_notification_is_lost_is_found_by_the_sweep_and_held(client, fake, lot):
    a = bidder(client)
    created = a.post("/deposits", {"lot_id": lot.pk}).json()
    out_trade_no = created["payment"]["out_trade_no"]
    # given: the user paid; the notification is lost; the deposit's window passes
    fake.pay(out_trade_no)
    Payment.objects.filter(out_trade_no=out_trade_no).update(expires_at=Payment.objects.get(out_trade_no=out_trade_no).created_at)
    # when
    sweep_until_quiet()
    # then: the sweep asks WeChat before giving up on the deposit: the user
    # paid in time, so the deposit is held and nothing is refunded
    assert Payment.objects.get(out_trade_no=out_trade_no).status == "paid"
    assert Deposit.objects.get(pk=created["deposit"]["id"]).status == "held"
    assert not Refund.objects.filter(payment__out_trade_no=out_trade_no).exists()


def test_an_open_payment_past_its_window_is_closed_at_wechat(client, fake, lot):
    a = bidder(client)
    created = a.post("/deposits", {"lot_id": lot.pk}).json()
    out_trade_no = created["payment"]["out_trade_no"]
    Payment.objects.filter(out_trade_no=out_trade_no).update(expires_at=Payment.objects.get(out_trade_no=out_trade_no).created_at)
    sweep_until_quiet()
    assert Payment.objects.get(out_trade_no=out_trade_no).status == "closed"
    assert fake.payments[out_trade_no]["trade_state"] == "CLOSED"
    assert Deposit.objects.get(pk=created["deposit"]["id"]).status == "cancelled"


# --- duplicates --------------------------------------------------------------------------------


def test_duplicated_notifications_are_applied_once(client, fake, lot):
    a = bidder(client)
    created = a.post("/deposits", {"lot_id": lot.pk}).json()
    out_trade_no = created["payment"]["out_trade_no"]
    first = fake.pay(out_trade_no)
    resent = fake.pay(out_trade_no)  # WeChat's retry: the same transaction, signed anew
    for notification in (first, first, resent, first):
        assert send(client, notification).status_code == 204
    assert Event.objects.filter(kind="payment.paid").count() == 1
    assert Event.objects.filter(kind="deposit.held").count() == 1
    assert Deposit.objects.get(pk=created["deposit"]["id"]).status == "held"


def test_duplicated_refund_notifications_are_applied_once(client, fake, lot):
    _, _, _, deposit_b, _ = won_order(client, fake, lot)
    refund_b = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    notification = fake.refund_finish(refund_b.out_refund_no)
    for _ in range(3):
        assert send(client, notification).status_code == 204
    assert Event.objects.filter(kind="refund.succeeded").count() == 1
    assert Event.objects.filter(kind="deposit.refunded").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicates_over_real_http_are_applied_once(live_server, settings, tmp_path):
    with running(settings, tmp_path / "wechatpay", notify_base=live_server.url) as fake:
        # given: a deposit waiting for payment, on a real server
        from auction.services.deposits import deposit_request
        from auction.services.payments import payment_prepare
        from tests.factories import UserFactory

        lot = LotFactory(deposit=1_000)
        deposit, payment, _ = deposit_request(user=UserFactory(), lot_id=lot.pk)
        payment_prepare(payment=payment)
        notification = fake.pay(payment.out_trade_no)
        assert notification.url == f"{live_server.url}/api/v1/payments/wechat/notify"
        # when: WeChat delivers the same notification eight times at once
        results = fake.deliver_concurrently(notification, 8)
        connection.close()
    # then: every delivery is acknowledged, one is applied
    assert results == [204] * 8, results
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    assert Event.objects.filter(kind="payment.paid").count() == 1
    assert Event.objects.filter(kind="deposit.held").count() == 1
    assert Deposit.objects.get(pk=deposit.pk).status == "held"


@pytest.mark.django_db(transaction=True)
def test_a_refund_notification_over_real_http_finishes_the_refund(live_server, settings, tmp_path):
    from django.test import Client

    with running(settings, tmp_path / "wechatpay", notify_base=live_server.url) as fake:
        lot = LotFactory(start_price=100_000, deposit=50_000)
        _, _, _, deposit_b, _ = won_order(Client(), fake, lot)
        refund_b = Refund.objects.get(payment__deposit_id=deposit_b["id"])
        response = fake.deliver(fake.refund_finish(refund_b.out_refund_no))
    assert response.status_code == 204
    assert Refund.objects.get(pk=refund_b.pk).status == "succeeded"
    assert Deposit.objects.get(pk=deposit_b["id"]).status == "refunded"


# --- forged and broken notifications ---------------------------------------------------------


def _stranger_key():
    return rsa_key()


FORGERIES = {
    "signed with another key": ({"key": "stranger"}, 401),
    "unknown serial": ({"serial": "PUB_KEY_ID_0000NOTOURS", "key": "stranger"}, 401),
    "stale timestamp": ({"timestamp": "stale"}, 401),
    "body changed after signing": ({"tamper": lambda body: body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCESS ")}, 401),
    "another APIv3 key": ({"apiv3_key": b"x" * 32}, 400),
    "another merchant": ({"resource_changes": {"mchid": "1900000999"}}, 400),
    "another app": ({"resource_changes": {"appid": "wx-someone-else"}}, 400),
    "another amount": ({"resource_changes": {"amount": {"total": 1, "currency": "CNY"}}}, 400),
    "not paid": ({"resource_changes": {"trade_state": "NOTPAY"}}, 400),
    "unknown out_trade_no": ({"resource_changes": {"out_trade_no": "D20990101UnknownNumber00"}}, 404),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_or_broken_payment_notification_is_refused_and_changes_nothing(client, fake, lot, forgery):
    options, status = FORGERIES[forgery]
    options = dict(options)
    if options.get("key") == "stranger":
        options["key"] = _stranger_key()
    if options.get("timestamp") == "stale":
        options["timestamp"] = int(time.time()) - 600
    a = bidder(client)
    created = a.post("/deposits", {"lot_id": lot.pk}).json()
    out_trade_no = created["payment"]["out_trade_no"]
    # when
    response = send(client, fake.pay(out_trade_no, **options))
    # then: WeChat's failure shape, and nothing moved
    assert_fail(response, status)
    assert Payment.objects.get(out_trade_no=out_trade_no).status == "created"
    assert Deposit.objects.get(pk=created["deposit"]["id"]).status == "pending"
    assert not Event.objects.filter(kind__in=["payment.paid", "deposit.held"]).exists()
    # and the genuine notification still goes through
    assert send(client, fake.pay(out_trade_no)).status_code == 204
    assert Deposit.objects.get(pk=created["deposit"]["id"]).status == "held"


@pytest.mark.parametrize("header", ["Wechatpay-Signature", "Wechatpay-Serial", "Wechatpay-Timestamp", "Wechatpay-Nonce"])
def test_a_notification_missing_a_header_is_refused(client, fake, lot, header):
    a = bidder(client)
    out_trade_no = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]["out_trade_no"]
    assert_fail(send(client, fake.pay(out_trade_no).replace(headers={header: None})), 401)
    assert Payment.objects.get(out_trade_no=out_trade_no).status == "created"


REFUND_FORGERIES = {
    "another refund amount": ({"resource_changes": {"amount": {"total": 50_000, "refund": 1, "payer_total": 50_000, "payer_refund": 1}}}, 400),
    "another payment": ({"resource_changes": {"out_trade_no": "D20990101UnknownNumber00"}}, 400),
    "unknown out_refund_no": ({"resource_changes": {"out_refund_no": "RD20990101Unknown"}}, 404),
    "another merchant": ({"resource_changes": {"mchid": "1900000999"}}, 400),
    "status not the event's": ({"resource_changes": {"refund_status": "CLOSED"}}, 400),
    "signed with another key": ({"key": "stranger"}, 401),
}


@pytest.mark.parametrize("forgery", list(REFUND_FORGERIES))
def test_a_forged_refund_notification_is_refused_and_changes_nothing(client, fake, lot, forgery):
    options, status = REFUND_FORGERIES[forgery]
    options = dict(options)
    if options.get("key") == "stranger":
        options["key"] = _stranger_key()
    _, _, _, deposit_b, _ = won_order(client, fake, lot)
    refund_b = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    notification = fake.refund_finish(refund_b.out_refund_no, **options)
    assert_fail(send(client, notification), status)
    assert Refund.objects.get(pk=refund_b.pk).status == "processing"
    assert Deposit.objects.get(pk=deposit_b["id"]).status == "refunding"


# --- the endpoints ------------------------------------------------------------------------------


def test_notify_paths_live_beside_the_token_protected_payment_paths(client, fake, lot):
    a = bidder(client)
    out_trade_no = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]["out_trade_no"]
    # the notify endpoints take no token, the payment endpoint still wants one
    assert client.get(f"/api/v1/payments/{out_trade_no}").status_code == 401
    assert a.get(f"/payments/{out_trade_no}").json()["status"] == "created"
    assert_fail(client.post("/api/v1/payments/wechat/notify", data=b"{}", content_type="application/json"), 401)
    assert_fail(client.post("/api/v1/payments/wechat/refund-notify", data=b"{}", content_type="application/json"), 401)
    schema = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/payments/wechat/notify" in schema and "/api/v1/payments/wechat/refund-notify" in schema
    assert "/api/v1/payments/{out_trade_no}" in schema


def test_notifications_without_wechat_pay_configured_are_refused_not_crashed(client, settings):
    # An unsigned post is refused whatever the keys (tests/test_api_edges.py has the other cases).
    settings.WECHATPAY_MCHID = ""
    response = client.post("/api/v1/payments/wechat/notify", data=b"{}", content_type="application/json")
    assert_fail(response, 401)


def test_a_success_is_answered_well_within_five_seconds(client, fake, lot):
    a = bidder(client)
    out_trade_no = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]["out_trade_no"]
    notification = fake.pay(out_trade_no)
    started = time.monotonic()
    assert send(client, notification).status_code == 204
    assert time.monotonic() - started < 2.0

