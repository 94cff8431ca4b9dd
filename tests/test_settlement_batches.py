"""A big sale's end: lots settled in batches, refunds sent in batches within the
gateway's rate; killed halfway, rerun, or run by two clusters at once, each
order and each refund exists and is sent exactly once."""

from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from auction.models import (
    Bid,
    Deposit,
    DepositScope,
    DepositStatus,
    Event,
    Lot,
    LotStatus,
    Order,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from auction.selectors import special_settlement_progress
from auction.services import deposits as deposit_services
from auction.services import refund_batches
from auction.services.deposits import deposit_request
from auction.services.payments import payment_apply_success, payment_prepare
from auction.services.refund_batches import CLAIM_LEASE, refunds_poll, refunds_run, refunds_submit
from auction.services.settlement import lots_settle, lots_settle_all
from tests.factories import LotFactory, SpecialFactory, UserFactory
from tests.fakes.wechatpay import running
from tests.threads import run_threads


def a_sale(lots: int, deposits_per_lot: int = 4) -> list[Lot]:
    """``lots`` lots that ended a second ago, each with held lot deposits and
    bids from the first three depositors (the third leads)."""
    special = SpecialFactory()
    made = []
    for position in range(lots):
        lot = LotFactory(special=special, position=position, deposit=50_000, start_price=100_000, increment=1_000)
        users = [UserFactory() for _ in range(deposits_per_lot)]
        for user in users:
            deposit = Deposit.objects.create(
                user=user, scope=DepositScope.LOT, special=special, lot=lot, amount=50_000, status=DepositStatus.HELD,
                active_key=Deposit.key_for(user_id=user.pk, scope="lot", special_id=special.pk, lot_id=lot.pk),
            )
            Payment.objects.create(
                out_trade_no=f"D{deposit.pk:020d}", purpose="deposit", user=user, amount=50_000, deposit=deposit,
                status=PaymentStatus.PAID, gateway="sandbox", transaction_id=f"T{deposit.pk}", expires_at=timezone.now(),
                paid_at=timezone.now(),
            )
        for step, user in enumerate(users[:3]):
            Bid.objects.create(lot=lot, user=user, price=100_000 + step * 1_000)
        Lot.objects.filter(pk=lot.pk).update(
            status=LotStatus.BIDDING, current_price=102_000, leader=users[2], bid_count=3, ends_at=timezone.now() - timedelta(seconds=1)
        )
        made.append(lot)
    return made


def each_once(lots: int, deposits_per_lot: int = 4) -> None:
    assert Order.objects.count() == lots
    assert Order.objects.values("lot").distinct().count() == lots
    assert Refund.objects.count() == lots * (deposits_per_lot - 1)
    assert Event.objects.filter(kind="order.created").count() == lots
    assert Event.objects.filter(kind="refund.created").count() == lots * (deposits_per_lot - 1)
    assert Event.objects.filter(kind="lot.sold").count() == lots
    held = Deposit.objects.filter(status=DepositStatus.HELD)
    assert held.count() == lots and all(order.user_id == d.user_id for d in held for order in [Order.objects.get(lot=d.lot_id)])


@pytest.mark.django_db
def test_a_batch_of_lots_is_settled_in_the_same_number_of_queries_whatever_its_size():
    # given: two sales ending, of 3 and of 12 lots
    small, large = a_sale(3), a_sale(12)
    # when: each is settled as one batch
    with CaptureQueriesContext(connection) as three:
        assert lots_settle(limit=3) == 3
    with CaptureQueriesContext(connection) as twelve:
        assert lots_settle(limit=12) == 12
    # then: the same statements for 12 lots as for 3; every order and refund once
    assert len(twelve) == len(three) <= 20, [query["sql"][:80] for query in twelve.captured_queries]
    assert set(Lot.objects.filter(pk__in=[lot.pk for lot in small + large]).values_list("status", flat=True)) == {"sold"}
    each_once(15)
    assert lots_settle() == 0


@pytest.mark.django_db
def test_a_batch_killed_halfway_changes_nothing_and_the_rerun_settles_each_lot_once():
    # given: 6 lots ended; the batch dies after writing the orders and deposits, before the refunds
    a_sale(6)
    with mock.patch.object(deposit_services, "refunds_create", side_effect=RuntimeError("worker killed")), pytest.raises(RuntimeError):
        lots_settle(limit=4)
    # then: nothing of it stands
    assert not Order.objects.exists() and not Refund.objects.exists() and not Event.objects.exists()
    assert Deposit.objects.filter(status=DepositStatus.HELD).count() == 24
    # when: rerun, twice
    assert lots_settle_all() == 6
    assert lots_settle_all() == 0
    # then: each order and each refund once
    each_once(6)


@pytest.mark.django_db
def test_refund_submission_killed_halfway_is_rerun_with_each_refund_sent_once():
    # given: a settled sale, its refunds pending
    a_sale(5)
    lots_settle_all()
    # when: the sender dies after the gateway answered, before it recorded the answers
    with mock.patch.object(refund_batches, "refunds_finish", side_effect=RuntimeError("worker killed")), pytest.raises(RuntimeError):
        refunds_submit(limit=10)
    assert set(Refund.objects.values_list("status", flat=True)) == {RefundStatus.PENDING}
    # the claimed ten wait out their lease; the other five go now
    assert refunds_run(refunds_submit) == 5
    later = timezone.now() + CLAIM_LEASE + timedelta(seconds=1)
    assert refunds_run(refunds_submit, now=later) == 10
    assert refunds_run(refunds_submit, now=later) == 0
    # then: each refund submitted once, then finished once, its deposit refunded
    assert Event.objects.filter(kind="refund.submitted").count() == 15
    assert refunds_run(refunds_poll) == 15 and refunds_run(refunds_poll) == 0
    assert set(Refund.objects.values_list("status", "attempts")) == {(RefundStatus.SUCCEEDED, 1)}
    assert Event.objects.filter(kind="refund.succeeded").count() == 15
    assert Deposit.objects.filter(status=DepositStatus.REFUNDED).count() == 15


@pytest.mark.mariadb
@pytest.mark.django_db(transaction=True)
def test_two_clusters_settling_and_refunding_the_same_sale_at_once_do_each_thing_once():
    # given: 30 lots ended together
    a_sale(30)

    # when: two workers (another cluster's, say) each settle, send and finish everything
    def cluster(index: int) -> tuple[int, int, int]:
        settled = 0
        for _ in range(20):
            settled += lots_settle(limit=7)
        return settled, refunds_run(refunds_submit, limit=13), refunds_run(refunds_poll, limit=13)

    results = run_threads(2, cluster)
    # then: they shared the work, and did each thing once
    assert not any(isinstance(result, BaseException) for result in results), results
    assert sum(result[0] for result in results) == 30
    assert sum(result[1] for result in results) == 90
    each_once(30)
    assert Event.objects.filter(kind="refund.submitted").count() == 90
    assert Event.objects.filter(kind="refund.succeeded").count() == 90
    assert set(Refund.objects.values_list("status", "attempts")) == {(RefundStatus.SUCCEEDED, 1)}


@pytest.mark.django_db
def test_refunds_are_sent_within_the_gateways_rate(settings, tmp_path):
    with running(settings, tmp_path / "wechatpay") as fake:
        # given: 20 WeChat Pay deposits whose lots ended unsold, and a rate of 5 refunds a second
        settings.AUCTION_REFUND_RATE_PER_SECOND = 5
        settings.AUCTION_REFUND_CONCURRENCY = 8
        for _ in range(20):
            lot = LotFactory(deposit=1_000)
            _, payment, _ = deposit_request(user=UserFactory(), lot_id=lot.pk)
            payment_prepare(payment=payment)
            fake.pay(payment.out_trade_no)
            payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id=fake.payments[payment.out_trade_no]["transaction_id"], amount=payment.amount)
            Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
        lots_settle_all()
        # when: the batch job sends them
        assert refunds_run(refunds_submit) == 20
        # then: every refund reached the gateway once, spread over the seconds the rate
        # needs (unpaced, 8 threads send all 20 within a fraction of a second). The
        # fake counts arrivals: the sender paces its sends, and on a loaded box a
        # request may reach the fake late, next to the following slot's, so some slack.
        assert len(fake.refund_times) == 20 and len(fake.refunds) == 20
        assert max(fake.refund_times) - min(fake.refund_times) >= 2.5
        assert fake.refunds_per_second() <= 8 and fake.refunds_per_wall_second() <= 7
        assert set(Refund.objects.values_list("status", flat=True)) == {RefundStatus.PROCESSING}


@pytest.mark.django_db
def test_ops_see_a_specials_settlement_progress():
    # given: a sale of 4 lots, settled, its refunds half sent
    lots = a_sale(4)
    special_id = lots[0].special_id
    assert special_settlement_progress(special_id=special_id)["settled"] == 0
    lots_settle_all()
    refunds_submit(limit=6)
    # then: the special's Market tab reads lots settled and refunds by stage
    progress = special_settlement_progress(special_id=special_id)
    assert progress == {"lots": 4, "settled": 4, "refunds": 12, "submitted": 6, "completed": 0, "failed": 0, "waiting_retry": 0}
    refunds_run(refunds_submit)
    refunds_run(refunds_poll)
    assert special_settlement_progress(special_id=special_id)["completed"] == 12


@pytest.mark.django_db(transaction=True)
def test_a_sale_of_more_than_a_batch_asks_a_second_worker_before_the_refunds_are_queued(settings):
    from jobs import tasks

    # given: a sale of three batches' worth of lots, ended
    a_sale(6)
    queued = []
    # when: the end's trigger runs (batches of 2 lots)
    with mock.patch("auction.services.settlement.SETTLE_BATCH", 2), \
            mock.patch("jobs.tasks.settlement.SETTLE_BATCH", 2), \
            mock.patch("auction.services.settlement.lots_settle", wraps=lambda **kw: lots_settle(limit=2)), \
            mock.patch("jobs.tasks.enqueue", side_effect=lambda func, *args: queued.append(func)), \
            mock.patch("jobs.schedules.enqueue", side_effect=lambda func, *args: queued.append(func)):
        tasks.lots_end()
    # then: the helper was asked first, ahead of the refund job the first batch's commit queues
    assert queued and queued[0] == "jobs.tasks.lots_end", queued
    assert "jobs.tasks.refunds_submit" in queued
    each_once(6)
