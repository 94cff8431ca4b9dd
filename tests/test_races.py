"""Races run for real: threads with their own database connections.

On MariaDB the lot's row lock serialises bids; on SQLite the IMMEDIATE
transactions do. Either way the money rules must hold under the race.
"""

import random
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone

from auction.errors import AlreadyLeading, BidTooLow, DepositExists, LotNotOpen
from auction.models import Bid, Deposit, Event, Lot, Order, Payment, Refund
from auction.services.bidding import bid_place
from auction.services.deposits import deposit_request
from auction.services.payments import payment_apply_success
from auction.services.settlement import lot_settle
from tests.factories import LotFactory, SpecialFactory, UserFactory
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

BIDDERS = 32


def _held_deposit(user, lot) -> Deposit:
    deposit, payment, _ = deposit_request(user=user, lot_id=lot.pk)
    payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id=f"t-{payment.pk}", amount=payment.amount)
    return deposit


def _bidders(lot, count: int) -> list:
    users = [UserFactory() for _ in range(count)]
    for user in users:
        _held_deposit(user, lot)
    return users


def test_many_bidders_at_once_lose_no_bid_and_leave_one_leader():
    lot = LotFactory(start_price=10_000, deposit=1_000)
    users = _bidders(lot, BIDDERS)
    deadline = timezone.now() + timedelta(seconds=4)

    def bid_hard(index: int) -> int:
        accepted = 0
        rng = random.Random(index)
        while timezone.now() < deadline:
            current = Lot.objects.only("current_price", "bid_count", "start_price", "increment").get(pk=lot.pk)
            try:
                bid_place(lot_id=lot.pk, user=users[index], price=current.next_min_bid() + rng.choice([0, 0, 5_000]))
                accepted += 1
            except (BidTooLow, AlreadyLeading):
                pass
        return accepted

    results = run_threads(BIDDERS, bid_hard)
    assert not [r for r in results if isinstance(r, BaseException)], results
    accepted = sum(results)
    lot.refresh_from_db()
    bids = list(Bid.objects.filter(lot=lot).order_by("id").values_list("price", "user_id"))
    assert accepted > BIDDERS
    assert len(bids) == accepted == lot.bid_count
    assert [price for price, _ in bids] == sorted({price for price, _ in bids})  # strictly rising, none lost or doubled
    assert (lot.current_price, lot.leader_id) == bids[-1]
    assert lot.current_price == Bid.objects.filter(lot=lot).aggregate(best=Max("price"))["best"]


def test_a_bid_racing_the_end_is_either_in_the_order_or_refused():
    special = SpecialFactory(extension_seconds=0)
    lot = LotFactory(special=special, start_price=10_000, deposit=1_000)
    users = _bidders(lot, 8)
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() + timedelta(seconds=1.5))

    def bid_until_closed(index: int):
        refused_closed = 0
        while refused_closed == 0:
            current = Lot.objects.only("current_price", "bid_count", "start_price", "increment").get(pk=lot.pk)
            try:
                bid_place(lot_id=lot.pk, user=users[index], price=current.next_min_bid())
            except (BidTooLow, AlreadyLeading):
                pass
            except LotNotOpen:
                refused_closed += 1
            if index == 0 and timezone.now() > Lot.objects.get(pk=lot.pk).ends_at:
                lot_settle(lot_id=lot.pk)
        return refused_closed

    results = run_threads(8, bid_until_closed)
    assert not [r for r in results if isinstance(r, BaseException)], results
    lot_settle(lot_id=lot.pk)
    lot.refresh_from_db()
    order = Order.objects.get(lot=lot)
    best = Bid.objects.filter(lot=lot).order_by("-price").first()
    assert lot.status == "sold" and Bid.objects.filter(lot=lot).count() == lot.bid_count
    assert (order.price, order.user_id) == (best.price, best.user_id)


def test_settlement_on_several_workers_at_once_makes_one_order_and_one_refund_per_loser():
    lot = LotFactory(start_price=10_000, deposit=1_000)
    users = _bidders(lot, 6)
    price = 10_000
    for user in users:
        bid_place(lot_id=lot.pk, user=user, price=price)
        price += 5_000
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=1))

    results = run_threads(4, lambda index: lot_settle(lot_id=lot.pk))
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert Order.objects.filter(lot=lot).count() == 1
    assert Refund.objects.count() == 5
    assert sorted(Deposit.objects.values_list("status", flat=True)) == ["held"] + ["refunding"] * 5


def test_a_duplicated_notification_arriving_concurrently_is_applied_once():
    lot = LotFactory(deposit=1_000)
    user = UserFactory()
    deposit, payment, _ = deposit_request(user=user, lot_id=lot.pk)

    results = run_threads(
        8,
        lambda index: payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id="wx-4200001", amount=1_000),
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert Payment.objects.get(pk=payment.pk).status == "paid"
    assert Event.objects.filter(kind="payment.paid").count() == 1
    assert Event.objects.filter(kind="deposit.held").count() == 1
    assert Deposit.objects.get(pk=deposit.pk).status == "held"


def test_one_user_asking_for_a_deposit_from_many_threads_gets_one():
    lot = LotFactory(deposit=1_000)
    user = UserFactory()
    results = run_threads(8, lambda index: deposit_request(user=user, lot_id=lot.pk)[0].pk)
    assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, DepositExists)], results
    assert Deposit.objects.filter(user=user).count() == 1
    assert Payment.objects.count() == 1


def test_a_special_wide_and_a_lot_deposit_asked_for_at_once_never_both_stand():
    # On MariaDB two transactions really interleave here (READ COMMITTED, no
    # gap locks): without the lock on the user's row both covering checks pass.
    special = SpecialFactory(deposit=5_000)
    lot = LotFactory(special=special, deposit=1_000)
    rounds = 6
    for _ in range(rounds):
        user = UserFactory()

        def ask(index: int, user=user):
            if index == 0:
                return deposit_request(user=user, special_id=special.pk)[0].pk
            return deposit_request(user=user, lot_id=lot.pk)[0].pk

        results = run_threads(2, ask)
        assert not [r for r in results if isinstance(r, BaseException) and not isinstance(r, DepositExists)], results
        assert sum(isinstance(r, DepositExists) for r in results) == 1, results
        active = Deposit.objects.filter(user=user, status__in=("pending", "held"))
        assert active.count() == 1, list(active.values_list("scope", "status"))
        # paying what was made cannot bring the other in afterwards either
        deposit = active.get()
        payment_apply_success(out_trade_no=deposit.payment.out_trade_no, transaction_id=f"t-{deposit.payment.pk}", amount=deposit.amount)
        other = {"lot_id": lot.pk} if deposit.scope == "special" else {"special_id": special.pk}
        with pytest.raises(DepositExists):
            deposit_request(user=user, **other)
    assert Deposit.objects.filter(status="held").count() == rounds
