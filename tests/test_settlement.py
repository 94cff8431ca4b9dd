"""At a lot's end: sold or unsold, refunds, special-wide deposits; every job idempotent."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_q.models import Schedule

from auction.models import Deposit, Event, Lot, Order, Refund
from auction.services import deposits as deposit_services
from auction.services.settlement import lot_settle, special_advance
from jobs import tasks
from tests.conftest import assert_error
from tests.factories import LotFactory, SpecialFactory
from tests.market import bid, bidder, deadline_passes, hammer, pay_deposit, sweep, sweep_until_quiet

pytestmark = pytest.mark.django_db

ADDRESS = {"name": "收货人", "phone": "13800000000", "region": "北京市", "detail": "长安街 1 号"}


def _snapshot() -> tuple:
    return (
        tuple(Order.objects.order_by("pk").values_list("pk", "status")),
        tuple(Refund.objects.order_by("pk").values_list("pk", "status")),
        tuple(Deposit.objects.order_by("pk").values_list("pk", "status")),
        tuple(Lot.objects.order_by("pk").values_list("pk", "status", "version")),
        Event.objects.count(),
    )


def test_reserve_not_met_ends_unsold_and_refunds_everyone(client):
    lot = LotFactory(start_price=100_000, reserve_price=500_000, deposit=50_000)
    a, b = bidder(client), bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    pay_deposit(b, lot_id=lot.pk)
    bid(a, lot.pk, 100_000)
    bid(b, lot.pk, 110_000)
    assert a.get(f"/lots/{lot.pk}").json()["reserve_met"] is False
    hammer(lot)
    assert a.get(f"/lots/{lot.pk}").json()["status"] == "unsold"  # before any job
    sweep_until_quiet()
    assert Lot.objects.get(pk=lot.pk).status == "unsold"
    assert not Order.objects.exists()
    assert set(Deposit.objects.values_list("status", flat=True)) == {"refunded"}


def test_no_bids_ends_unsold(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    hammer(lot)
    assert lot_settle(lot_id=lot.pk) is None
    assert Lot.objects.get(pk=lot.pk).status == "unsold"
    assert Deposit.objects.get().status == "refunding"


def test_the_order_is_due_a_payment_window_after_the_end_or_its_creation_if_later(client, settings):
    settings.AUCTION_PAYMENT_WINDOW_SECONDS = 3600
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    bid(a, lot.pk, lot.start_price)
    hammer(lot)
    order = lot_settle(lot_id=lot.pk)
    lot.refresh_from_db()
    assert lot.ends_at + timedelta(seconds=3600) < order.pay_deadline <= order.created_at + timedelta(seconds=3600)
    assert re.fullmatch(r"\d{8}[0-9A-Za-z]{10,24}", order.order_no) and 18 <= len(order.order_no) <= 32
    assert order.order_no.startswith(timezone.localdate().strftime("%Y%m%d"))
    assert Schedule.objects.filter(func="jobs.tasks.orders_expire", next_run=order.pay_deadline).exists()


def test_settled_late_after_the_cluster_was_stopped_past_the_window_the_winner_gets_the_full_window(client, settings):
    # given: the lot ended, and no job ran for longer than the whole payment window
    settings.AUCTION_PAYMENT_WINDOW_SECONDS = 3600
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    bid(a, lot.pk, lot.start_price)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=3600 + 120))
    # when: the cluster comes back and sweeps
    before = timezone.now()
    sweep()
    sweep()
    # then: the order is due a full window after it was made, not after the end; nothing forfeited
    order = Order.objects.get(lot=lot)
    assert order.status == "pending_payment"
    assert before + timedelta(seconds=3600) <= order.pay_deadline <= timezone.now() + timedelta(seconds=3600)
    assert Deposit.objects.get(user=a.user).status == "held"
    assert a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).status_code == 200


def test_a_lot_settles_only_after_its_end_even_when_the_job_runs_early(client):
    lot = LotFactory(deposit=0)
    assert lot_settle(lot_id=lot.pk) is None
    assert Lot.objects.get(pk=lot.pk).status == "upcoming"


def test_every_job_run_twice_changes_nothing_the_second_time(client):
    special = SpecialFactory(deposit=100_000)
    lot = LotFactory(special=special, deposit=50_000)
    a, b, c = bidder(client), bidder(client), bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    pay_deposit(b, lot_id=lot.pk)
    pay_deposit(c, special_id=special.pk)
    bid(b, lot.pk, lot.start_price)
    bid(a, lot.pk, lot.start_price + 10_000)
    hammer(lot)
    from auction.models import Special

    Special.objects.filter(pk=special.pk).update(ends_at=timezone.now() - timedelta(seconds=2))
    for job in (lambda: tasks.lot_end(lot.pk), lambda: tasks.special_phase(special.pk), lambda: tasks.special_deposits(special.pk)):
        job()
        after_first = _snapshot()
        job()
        assert _snapshot() == after_first
    sweep_until_quiet()
    order = Order.objects.get()
    for refund in Refund.objects.all():
        before = _snapshot()
        tasks.refund_submit(refund.pk)
        tasks.refund_poll(refund.pk)
        assert _snapshot() == before
    deadline_passes(order)
    tasks.order_expire(order.pk)
    after_first = _snapshot()
    tasks.order_expire(order.pk)
    tasks.sweep()
    assert _snapshot() == after_first


def test_a_settlement_that_crashes_halfway_is_rerun_with_each_refund_once(client):
    lot = LotFactory(deposit=50_000)
    losers = [bidder(client) for _ in range(3)]
    winner = bidder(client)
    for api in [*losers, winner]:
        pay_deposit(api, lot_id=lot.pk)
    price = lot.start_price
    for api in [*losers, winner]:
        bid(api, lot.pk, price)
        price += 10_000
    hammer(lot)

    def crash_after_the_orders_and_deposits(*args, **kwargs):
        raise RuntimeError("worker killed")

    # The orders, the lot and the deposits are written; the refund rows are next.
    with mock.patch.object(deposit_services, "refunds_create", crash_after_the_orders_and_deposits), pytest.raises(RuntimeError):
        lot_settle(lot_id=lot.pk)
    assert Lot.objects.get(pk=lot.pk).status != "sold" and not Refund.objects.exists() and not Order.objects.exists()
    lot_settle(lot_id=lot.pk)
    lot_settle(lot_id=lot.pk)
    sweep_until_quiet()
    assert Order.objects.count() == 1 and Refund.objects.count() == 3
    assert sorted(Deposit.objects.values_list("status", flat=True)) == ["held", "refunded", "refunded", "refunded"]


def test_a_special_wide_deposit_is_refunded_when_the_special_ends_and_nothing_is_unpaid(client):
    special = SpecialFactory(deposit=100_000)
    first, second = LotFactory(special=special, deposit=0), LotFactory(special=special, position=1, deposit=0)
    a, b = bidder(client), bidder(client)
    deposit_a = pay_deposit(a, special_id=special.pk)
    deposit_b = pay_deposit(b, special_id=special.pk)
    bid(a, first.pk, first.start_price)
    hammer(first)
    hammer(second)
    from auction.models import Special

    Special.objects.filter(pk=special.pk).update(ends_at=timezone.now() - timedelta(seconds=2))
    sweep_until_quiet()
    assert Deposit.objects.get(pk=deposit_b["id"]).status == "refunded"  # owes nothing
    assert Deposit.objects.get(pk=deposit_a["id"]).status == "held"  # has an unpaid order
    order = Order.objects.get()
    payment = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).json()["payment"]
    a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    sweep_until_quiet()
    assert Deposit.objects.get(pk=deposit_a["id"]).status == "refunded"


def test_a_special_wide_deposit_is_forfeited_when_an_order_goes_overdue(client):
    special = SpecialFactory(deposit=100_000)
    lot = LotFactory(special=special, deposit=0)
    a = bidder(client)
    deposit_a = pay_deposit(a, special_id=special.pk)
    bid(a, lot.pk, lot.start_price)
    hammer(lot)
    sweep_until_quiet()
    deadline_passes(Order.objects.get())
    sweep_until_quiet()
    assert Deposit.objects.get(pk=deposit_a["id"]).status == "forfeited"


def test_statuses_advance_with_the_clock(client):
    now = timezone.now()
    special = SpecialFactory(preview_at=now - timedelta(minutes=1), starts_at=now + timedelta(minutes=1), ends_at=now + timedelta(hours=1))
    lot = LotFactory(special=special)
    assert special_advance(special_id=special.pk) == "preview"
    assert Lot.objects.get(pk=lot.pk).status == "preview"
    assert special_advance(special_id=special.pk, now=now + timedelta(minutes=2)) == "bidding"
    assert Lot.objects.get(pk=lot.pk).status == "bidding"


def test_exact_time_schedules_follow_the_lot_end(client):
    special = SpecialFactory(extension_seconds=300)
    lot = LotFactory(special=special, deposit=0)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() + timedelta(seconds=30))
    bid(bidder(client), lot.pk, lot.start_price)
    lot.refresh_from_db()
    schedule = Schedule.objects.get(name=f"lots end at {lot.ends_at.isoformat()}")
    assert schedule.next_run == lot.ends_at and schedule.func == "jobs.tasks.lots_end"


def test_orders_quote_and_a_fully_covered_order_is_paid_at_once(client):
    lot = LotFactory(start_price=50_000, deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    bid(a, lot.pk, 50_000)
    hammer(lot)
    sweep()
    order = Order.objects.get()
    assert a.post(f"/orders/{order.order_no}/quote", {}).json() == {"price": 50_000, "premium": 0, "deposit_credit": 50_000, "coupon_discount": 0, "amount_due": 0}
    paid = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).json()
    assert paid["payment"] is None and paid["order"]["status"] == "paid"
    assert Deposit.objects.get().status == "applied"


def test_order_input_is_checked(client):
    lot = LotFactory(deposit=0)
    a, b = bidder(client), bidder(client)
    bid(a, lot.pk, lot.start_price)
    hammer(lot)
    sweep()
    order = Order.objects.get()
    assert_error(a.post(f"/orders/{order.order_no}/pay", {}), 422, "validation_error")
    assert_error(a.post(f"/orders/{order.order_no}/pay", {"address": {**ADDRESS, "phone": "call me"}}), 422, "validation_error")
    assert_error(a.post(f"/orders/{order.order_no}/quote", {"user_coupon_id": 7}), 409, "coupon_unavailable")
    assert_error(b.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}), 404, "not_found")
    assert_error(a.get("/orders/nope"), 404, "not_found")
    assert_error(a.get("/orders", {"status": "weird"}), 422, "validation_error")
    assert a.get("/orders", {"status": "pending_payment"}).json()["count"] == 1


def test_paying_again_returns_the_same_open_payment(client):
    lot = LotFactory(deposit=0)
    a = bidder(client)
    bid(a, lot.pk, lot.start_price)
    hammer(lot)
    sweep()
    order = Order.objects.get()
    first = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).json()["payment"]
    second = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).json()["payment"]
    assert first["out_trade_no"] == second["out_trade_no"]
    a.post(f"/payments/sandbox/{first['out_trade_no']}/succeed")
    assert_error(a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}), 409, "order_not_payable")


# --- a read after the end settles the lot: ``sold`` means the order exists ---


def test_a_lot_read_after_its_end_with_no_job_reads_sold_and_the_winner_has_the_order(client):
    # given: a winner and a loser, both with held lot deposits, and no job cluster
    lot = LotFactory(deposit=50_000)
    winner, loser = bidder(client), bidder(client)
    pay_deposit(winner, lot_id=lot.pk)
    pay_deposit(loser, lot_id=lot.pk)
    bid(loser, lot.pk, lot.start_price)
    bid(winner, lot.pk, lot.start_price + 10_000)
    hammer(lot)
    # when: anyone reads the lot
    assert loser.get(f"/lots/{lot.pk}").json()["status"] == "sold"
    # then: the order is there at once, and the loser's deposit is on its way back
    orders = winner.get("/orders").json()
    assert orders["count"] == 1 and orders["items"][0]["lot"]["id"] == lot.pk
    assert orders["items"][0]["status"] == "pending_payment"
    assert [d["status"] for d in loser.get("/deposits").json()["items"]] == ["refunding"]
    assert [d["status"] for d in winner.get("/deposits").json()["items"]] == ["held"]


def test_a_special_read_after_its_lots_end_settles_them_in_a_bounded_batch(client):
    # given: more lots than one read settles, all ended together, with a bid each
    from auction.services.settlement import SETTLE_ON_READ_LIMIT

    special = SpecialFactory()
    lots = [LotFactory(special=special, position=index, deposit=0) for index in range(SETTLE_ON_READ_LIMIT + 2)]
    a = bidder(client)
    for lot in lots:
        bid(a, lot.pk, lot.start_price)
        hammer(lot)
    # when: the special is read twice
    first = client.get(f"/api/v1/specials/{special.pk}").json()["lots"]
    # then: a batch is settled and reads sold; the rest reads bidding (no order yet) until the next read
    statuses = [lot["status"] for lot in first]
    assert statuses.count("sold") == SETTLE_ON_READ_LIMIT and statuses.count("bidding") == 2
    assert Order.objects.count() == SETTLE_ON_READ_LIMIT
    second = client.get(f"/api/v1/specials/{special.pk}").json()["lots"]
    assert {lot["status"] for lot in second} == {"sold"} and Order.objects.count() == len(lots)
    assert set(Order.objects.values_list("lot_id", flat=True)) == {lot.pk for lot in lots}


def test_only_a_due_unsettled_lot_costs_a_settlement_and_only_once(client):
    from auction.services import settlement

    open_lot, ended = LotFactory(deposit=0), LotFactory(deposit=0)
    bid(bidder(client), ended.pk, ended.start_price)
    hammer(ended)
    with mock.patch.object(settlement, "lot_settle", wraps=settlement.lot_settle) as settle:
        client.get(f"/api/v1/lots/{open_lot.pk}")
        assert settle.call_count == 0  # still open: nothing to settle
        client.get(f"/api/v1/lots/{ended.pk}")
        client.get(f"/api/v1/lots/{ended.pk}")
        client.get(f"/api/v1/specials/{ended.special_id}")
    assert settle.call_count == 1  # settled by the first read; later reads see the stored outcome
    assert Order.objects.filter(lot=ended).count() == 1


def test_a_lot_past_its_end_that_nothing_settled_does_not_claim_an_outcome():
    lot = LotFactory.build(special=SpecialFactory.build(), status="bidding", bid_count=1, current_price=100_000)
    lot.ends_at = timezone.now() - timedelta(seconds=1)
    assert lot.status_at(timezone.now()) == "bidding"
    lot.status = "sold"
    assert lot.status_at(timezone.now()) == "sold"
