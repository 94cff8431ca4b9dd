"""Deposits (保证金) per CONTRACT.md: lot or special scope, pending comes back, held is refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.models import Deposit, Event, Lot, Payment, Refund
from tests.conftest import assert_error
from tests.factories import LotFactory, SpecialFactory
from tests.market import bidder, hammer, pay_deposit, sweep_until_quiet

pytestmark = pytest.mark.django_db


def test_a_lot_deposit_and_its_payment_come_back_while_pending(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    first = a.post("/deposits", {"lot_id": lot.pk})
    assert first.status_code == 201
    body = first.json()
    assert body["deposit"] == {**body["deposit"], "scope": "lot", "lot_id": lot.pk, "special_id": lot.special_id, "amount": 50_000, "status": "pending"}
    assert body["payment"]["purpose"] == "deposit" and body["payment"]["amount"] == 50_000 and body["payment"]["status"] == "created"
    again = a.post("/deposits", {"lot_id": lot.pk})
    assert again.status_code == 200
    assert again.json()["deposit"]["id"] == body["deposit"]["id"]
    assert again.json()["payment"]["out_trade_no"] == body["payment"]["out_trade_no"]
    assert Payment.objects.count() == 1


def test_a_held_deposit_is_not_paid_twice(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    assert_error(a.post("/deposits", {"lot_id": lot.pk}), 409, "deposit_exists")


def test_paying_twice_through_the_sandbox_applies_once(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    payment = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    for _ in range(2):
        assert a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed").json()["status"] == "paid"
    assert Event.objects.filter(kind="deposit.held").count() == 1
    assert Event.objects.filter(kind="payment.paid").count() == 1


def test_a_special_wide_deposit(client):
    special = SpecialFactory(deposit=200_000)
    a = bidder(client)
    created = a.post("/deposits", {"special_id": special.pk})
    assert created.status_code == 201
    assert created.json()["deposit"]["scope"] == "special" and created.json()["deposit"]["amount"] == 200_000


@pytest.mark.parametrize("payload", [{}, {"lot_id": 1, "special_id": 1}, {"lot_id": 0}, {"lot_id": "x"}, {"special_id": -4}])
def test_the_target_must_be_exactly_one_real_thing(client, payload):
    assert_error(bidder(client).post("/deposits", payload), 422, "validation_error")


def test_no_deposit_offered_is_a_validation_error(client):
    assert_error(bidder(client).post("/deposits", {"lot_id": LotFactory(deposit=0).pk}), 422, "validation_error")
    assert_error(bidder(client).post("/deposits", {"special_id": SpecialFactory(deposit=0).pk}), 422, "validation_error")


def test_unknown_or_hidden_targets_are_not_found(client):
    a = bidder(client)
    assert_error(a.post("/deposits", {"lot_id": 999_999}), 404, "not_found")
    assert_error(a.post("/deposits", {"lot_id": LotFactory(is_published=False).pk}), 404, "not_found")


def test_no_deposit_for_a_lot_that_ended(client):
    lot = LotFactory(deposit=50_000)
    hammer(lot)
    assert_error(bidder(client).post("/deposits", {"lot_id": lot.pk}), 409, "lot_not_open")


def test_a_deposit_paid_after_its_lot_ended_is_refunded_automatically(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    payment = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    hammer(lot)
    a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    deposit = Deposit.objects.get(user=a.user)
    assert deposit.status == "refunding"
    sweep_until_quiet()
    deposit.refresh_from_db()
    assert deposit.status == "refunded"
    assert Refund.objects.get(payment__deposit=deposit).reason == "paid after the lot ended"


def test_an_unpaid_deposit_is_cancelled_when_its_window_passes_and_a_late_payment_is_refunded(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    payment = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    Payment.objects.filter(out_trade_no=payment["out_trade_no"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    sweep_until_quiet()
    deposit = Deposit.objects.get(user=a.user)
    assert deposit.status == "cancelled"
    # a new request now makes a new deposit
    assert a.post("/deposits", {"lot_id": lot.pk}).status_code == 201
    # the old payment still succeeding (it raced the close) is refunded
    Payment.objects.filter(out_trade_no=payment["out_trade_no"]).update(status="created")
    a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed")
    deposit.refresh_from_db()
    assert deposit.status == "refunding"


def test_my_deposits_are_listed_and_filtered(client):
    lot = LotFactory(deposit=50_000)
    a, b = bidder(client), bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    b.post("/deposits", {"lot_id": lot.pk})
    mine = a.get("/deposits").json()
    assert mine["count"] == 1 and mine["items"][0]["status"] == "held"
    assert a.get("/deposits", {"status": "pending"}).json()["count"] == 0
    assert_error(a.get("/deposits", {"status": "bogus"}), 422, "validation_error")


def test_another_users_payment_is_not_found(client):
    lot = LotFactory(deposit=50_000)
    a, b = bidder(client), bidder(client)
    payment = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    assert_error(b.get(f"/payments/{payment['out_trade_no']}"), 404, "not_found")
    assert_error(b.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed"), 404, "not_found")
    assert a.get(f"/payments/{payment['out_trade_no']}").json()["status"] == "created"


def test_the_sandbox_payment_is_not_found_when_the_sandbox_is_off(client, settings):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    payment = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    settings.AUCTION_SANDBOX = False
    assert_error(a.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed"), 404, "not_found")
    assert Lot.objects.get(pk=lot.pk).bid_count == 0


def test_stale_client_params_are_asked_for_again_with_the_same_number(client):
    # WeChat's prepay_id lives two hours; a winner coming back later needs new params.
    import time

    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    first = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    stale = {**first["params"], "timeStamp": str(int(time.time()) - 3 * 3600)}
    Payment.objects.filter(out_trade_no=first["out_trade_no"]).update(params=stale)
    again = a.post("/deposits", {"lot_id": lot.pk}).json()["payment"]
    assert again["out_trade_no"] == first["out_trade_no"]
    assert int(again["params"]["timeStamp"]) > int(stale["timeStamp"])


# --- a special-wide and a lot deposit never cover the same lot ---


def test_a_lot_deposit_is_refused_while_a_special_wide_one_is_pending_or_held(client):
    special = SpecialFactory(deposit=5_000)
    lot = LotFactory(special=special, deposit=1_000)
    api = bidder(client)
    assert api.post("/deposits", {"special_id": special.pk}).status_code == 201
    pending = assert_error(api.post("/deposits", {"lot_id": lot.pk}), 409, "deposit_exists")
    assert pending["detail"]["scope"] == "special" and pending["detail"]["status"] == "pending"
    pay_deposit(api, special_id=special.pk)
    held = assert_error(api.post("/deposits", {"lot_id": lot.pk}), 409, "deposit_exists")
    assert held["detail"]["scope"] == "special" and held["detail"]["status"] == "held"
    assert Deposit.objects.filter(user=api.user).count() == 1


def test_a_special_wide_deposit_is_refused_while_a_lot_of_it_is_covered(client):
    special = SpecialFactory(deposit=5_000)
    lot = LotFactory(special=special, deposit=1_000)
    api = bidder(client)
    pay_deposit(api, lot_id=lot.pk)
    refused = assert_error(api.post("/deposits", {"special_id": special.pk}), 409, "deposit_exists")
    assert (refused["detail"]["scope"], refused["detail"]["lot_id"]) == ("lot", lot.pk)
    # once that lot has ended, its deposit covers no more bidding: the special-wide one may be paid
    hammer(lot)
    assert api.post("/deposits", {"special_id": special.pk}).status_code == 201


def test_a_special_wide_deposit_given_up_on_no_longer_stands_in_the_way(client):
    special = SpecialFactory(deposit=5_000)
    lot = LotFactory(special=special, deposit=1_000)
    api = bidder(client)
    first = api.post("/deposits", {"special_id": special.pk}).json()["deposit"]
    Payment.objects.filter(deposit_id=first["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.post("/deposits", {"lot_id": lot.pk}).status_code == 201
    assert Deposit.objects.get(pk=first["id"]).status == "cancelled"
