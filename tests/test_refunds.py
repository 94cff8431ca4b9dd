"""Refunds: sent with no lock held, retried with backoff when the gateway does not
take them, and sent again by ops (same out_refund_no) when they failed."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from auction.models import Deposit, Event, Refund
from auction.services.bidding import bid_place
from auction.services.deposits import deposit_request
from auction.services.payments import (
    REFUND_RETRY_FIRST_SECONDS,
    payment_apply_success,
    payment_prepare,
    refund_retry,
    refund_submit,
)
from auction.services.reconcile import reconcile
from auction.services.settlement import lot_settle
from tests.factories import LotFactory, UserFactory
from tests.fakes.wechatpay import running


@pytest.fixture
def fake(settings, tmp_path):
    with running(settings, tmp_path / "wechatpay") as fake:
        yield fake


def _refunding_deposit(fake) -> Refund:
    """A lot deposit paid through WeChat Pay whose lot ended unsold: its refund row, not yet sent."""
    lot = LotFactory(deposit=1_000)
    deposit, payment, _ = deposit_request(user=UserFactory(), lot_id=lot.pk)
    payment_prepare(payment=payment)
    fake.pay(payment.out_trade_no)
    record = fake.payments[payment.out_trade_no]
    payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id=record["transaction_id"], amount=payment.amount)
    from auction.models import Lot

    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    lot_settle(lot_id=lot.pk)
    assert Deposit.objects.get(pk=deposit.pk).status == "refunding"
    return Refund.objects.get(payment=payment)


def _refund_calls(fake) -> int:
    return sum(1 for request in fake.requests if "/v3/refund/domestic/refunds" in str(request) and "POST" in str(request))


@pytest.mark.django_db(transaction=True)
def test_a_bid_commits_while_a_refund_waits_on_a_slow_gateway(fake):
    # given: a refund to send, a gateway that takes 2 s to answer, and a lot open for bidding
    refund = _refunding_deposit(fake)
    open_lot = LotFactory(deposit=0)
    bidder = UserFactory()
    fake.answer_delay = 2.0
    done = {}

    def send() -> None:
        try:
            done["refund"] = refund_submit(refund_id=refund.pk)
        finally:
            done["at"] = time.monotonic()
            connection.close()

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.5)  # the refund is with the gateway now
    # when: a bidder bids meanwhile
    started = time.monotonic()
    placed = bid_place(lot_id=open_lot.pk, user=bidder, price=open_lot.start_price)
    bid_took = time.monotonic() - started
    sender.join(timeout=30)
    # then: the bid did not wait for the gateway, and the refund was sent all the same
    assert placed.bid.pk and bid_took < 1.0, bid_took
    assert "at" in done and done["at"] - started > 1.0  # the gateway was still answering when the bid committed
    assert done["refund"].status == "processing" and Refund.objects.get(pk=refund.pk).attempts == 1


@pytest.mark.django_db
def test_a_refund_the_gateway_did_not_take_is_sent_again_with_backoff(fake):
    # given: WeChat answers the refund with a server error, twice
    refund = _refunding_deposit(fake)
    fake.fail_next += [(500, "SYSTEM_ERROR"), (500, "SYSTEM_ERROR")]
    now = timezone.now()
    refund = refund_submit(refund_id=refund.pk)
    assert (refund.status, refund.attempts) == ("pending", 1) and "SYSTEM_ERROR" in refund.last_error
    first_wait = refund.next_attempt_at - now
    assert timedelta(seconds=REFUND_RETRY_FIRST_SECONDS - 5) < first_wait < timedelta(seconds=REFUND_RETRY_FIRST_SECONDS + 5)
    # when: the sweep runs before the wait is over, nothing is sent
    reconcile(now=now + timedelta(seconds=10))
    assert Refund.objects.get(pk=refund.pk).attempts == 1
    # after it, the refund is sent again; failing again doubles the wait
    reconcile(now=refund.next_attempt_at + timedelta(seconds=1))
    refund.refresh_from_db()
    assert (refund.status, refund.attempts) == ("pending", 2)
    assert refund.next_attempt_at - timezone.now() > first_wait + timedelta(seconds=REFUND_RETRY_FIRST_SECONDS // 2)
    reconcile(now=refund.next_attempt_at + timedelta(seconds=1))
    refund.refresh_from_db()
    assert (refund.status, refund.attempts, refund.next_attempt_at) == ("processing", 3, None)
    assert Event.objects.filter(kind="refund.send_failed", refund=refund).count() == 2
    assert len(fake.refunds) == 1  # one refund at WeChat for the one out_refund_no


@pytest.mark.django_db
def test_ops_retry_a_failed_refund_with_the_same_number_and_the_deposit_comes_back(fake):
    # given: a refund WeChat failed (the payer's card was frozen): its deposit stays refunding
    refund = _refunding_deposit(fake)
    refund_submit(refund_id=refund.pk)
    fake.refund_finish(refund.out_refund_no, "ABNORMAL")
    from auction.services.payments import refund_poll

    assert refund_poll(refund_id=refund.pk).status == "failed"
    # when: ops sorted it out with WeChat and retry it
    fake.refunds[refund.out_refund_no]["status"] = "PROCESSING"
    retried = refund_retry(refund_id=refund.pk, staff="ops")
    # then: the same number is sent again and, once WeChat finishes it, the deposit is refunded
    assert retried.status == "processing" and retried.out_refund_no == refund.out_refund_no
    assert Event.objects.filter(kind="refund.retried", refund=refund, actor="ops", data__staff="ops", data__was="failed").exists()
    fake.refund_finish(refund.out_refund_no)
    assert refund_poll(refund_id=refund.pk).status == "succeeded"
    assert Deposit.objects.get(payment__refund=refund).status == "refunded"
    assert len(fake.refunds) == 1


@pytest.mark.django_db
def test_a_refund_in_flight_or_done_cannot_be_retried(fake):
    from auction.errors import ValidationFailed

    refund = _refunding_deposit(fake)
    refund_submit(refund_id=refund.pk)
    with pytest.raises(ValidationFailed):
        refund_retry(refund_id=refund.pk, staff="ops")
    assert Refund.objects.get(pk=refund.pk).attempts == 1


@pytest.mark.django_db
def test_ops_retry_refund_in_the_admin_asks_first_then_sends(fake, client, django_user_model):
    # given: a failed refund, and an ops person in the admin
    refund = _refunding_deposit(fake)
    refund_submit(refund_id=refund.pk)
    fake.refund_finish(refund.out_refund_no, "CLOSED")
    from auction.services.payments import refund_poll

    refund_poll(refund_id=refund.pk)
    fake.refunds[refund.out_refund_no]["status"] = "PROCESSING"
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345")
    client.force_login(admin)
    inspect = client.get(reverse("market_refunds:inspect", args=(refund.pk,))).content.decode()
    retry_url = reverse("market_refunds:retry", args=(refund.pk,))
    assert retry_url in inspect
    # when: ops open the action, nothing is sent yet: they are asked to confirm
    calls_before = len(fake.requests)
    confirm = client.get(retry_url)
    assert confirm.status_code == 200 and "data-refund-retry" in confirm.content.decode()
    assert refund.out_refund_no in confirm.content.decode()
    assert len(fake.requests) == calls_before and Refund.objects.get(pk=refund.pk).status == "failed"
    # then: confirming sends it, and the audit trail names who did
    done = client.post(retry_url, follow=True)
    assert done.status_code == 200
    assert Refund.objects.get(pk=refund.pk).status == "processing"
    assert Event.objects.filter(kind="refund.retried", refund=refund, data__staff="ops").count() == 1
    # a refund in flight offers no retry, and pressing anyway changes nothing
    assert retry_url not in client.get(reverse("market_refunds:inspect", args=(refund.pk,))).content.decode()
    client.post(retry_url)
    assert Event.objects.filter(kind="refund.retried", refund=refund).count() == 1


@pytest.mark.django_db
def test_retry_refund_needs_the_change_refund_permission(fake, client, django_user_model):
    refund = _refunding_deposit(fake)
    staff = django_user_model.objects.create_user("viewer", password="pw-viewer-12345", is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(Permission.objects.get(codename="access_admin"), Permission.objects.get(codename="view_refund"))
    client.force_login(staff)
    refused = client.post(reverse("market_refunds:retry", args=(refund.pk,)))
    assert refused.status_code == 302 and refused.url == reverse("wagtailadmin_home")  # Wagtail's answer to PermissionDenied
    assert Refund.objects.get(pk=refund.pk).attempts == 0
