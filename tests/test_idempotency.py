"""Idempotency-Key (CONTRACT.md, Retries): a retry gets the first answer again and changes nothing."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import resolve
from django.utils import timezone

from api import bids, coupons, deposits, orders
from api.idempotency import KEYED_ROUTES, IdempotencyMiddleware
from auction.models import Bid, Deposit, IdempotentRequest, Payment, UserCoupon
from auction.services.idempotency import idempotency_claim, idempotency_purge, request_fingerprint
from jobs import tasks
from tests.conftest import ApiClient, ProductionChainsHandler, assert_error
from tests.factories import CouponFactory, LotFactory
from tests.market import ADDRESS, bidder, pay_deposit, won_order
from tests.test_bid_route import _same_answer, full_route, served_directly  # noqa: F401  (fixtures)
from tests.threads import run_threads


def keyed(key: str) -> dict:
    return {"Idempotency-Key": key}


def _same_replay(first, again) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Content-Length"] == first["Content-Length"]
    assert again["Idempotent-Replayed"] == "true"


@pytest.fixture
def open_lot(client):
    lot = LotFactory(start_price=100_000, deposit=50_000)
    a = bidder(client, "甲")
    pay_deposit(a, lot_id=lot.pk)
    return lot, a


# --- the endpoints ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retried_bid_gets_the_same_answer_and_places_one_bid(open_lot, served_directly):  # noqa: F811
    lot, a = open_lot

    first = a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("bid-1"))
    again = a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("bid-1"))

    assert first.status_code == 201, first.content
    _same_replay(first, again)
    assert Bid.objects.filter(lot=lot).count() == 1
    assert len(served_directly) == 1  # the retry never reached the view


@pytest.mark.django_db
def test_with_a_key_both_bid_routes_answer_and_replay_alike(client, full_route, served_directly):  # noqa: F811
    first_lot = LotFactory(title="青花瓷", start_price=100_000, deposit=50_000)
    twin = LotFactory(title="青花瓷", start_price=100_000, deposit=50_000, special=first_lot.special, ends_at=first_lot.ends_at)
    a = bidder(client, "张三")
    for lot in (first_lot, twin):
        pay_deposit(a, lot_id=lot.pk)
    full = ApiClient(full_route, token=a.token)

    direct_answer = a.post(f"/lots/{first_lot.pk}/bids", {"price": 120_000}, headers=keyed("same-key"))
    full_answer = full.post(f"/lots/{twin.pk}/bids", {"price": 120_000}, headers=keyed("other-key"))
    _same_answer(direct_answer, full_answer, ignore=("id", "created_at"))
    assert len(served_directly) == 1

    # A retry of either comes back from the store, whichever route it would take.
    _same_replay(direct_answer, full.post(f"/lots/{first_lot.pk}/bids", {"price": 120_000}, headers=keyed("same-key")))
    _same_replay(full_answer, a.post(f"/lots/{twin.pk}/bids", {"price": 120_000}, headers=keyed("other-key")))
    # The same key with another body: refused alike.
    for api in (a, full):
        assert_error(api.post(f"/lots/{first_lot.pk}/bids", {"price": 130_000}, headers=keyed("same-key")), 422, "validation_error")
    assert Bid.objects.count() == 2 and len(served_directly) == 1


@pytest.mark.django_db
def test_a_retried_deposit_gets_the_same_201_and_makes_one_deposit_and_payment(client):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)

    first = a.post("/deposits", {"lot_id": lot.pk}, headers=keyed("dep-1"))
    again = a.post("/deposits", {"lot_id": lot.pk}, headers=keyed("dep-1"))

    assert first.status_code == 201, first.content
    _same_replay(first, again)  # 201 again, not the 200 of "the same pending deposit"
    assert Deposit.objects.filter(user=a.user).count() == 1
    assert Payment.objects.filter(user=a.user).count() == 1


@pytest.mark.django_db
def test_a_retried_pay_gets_the_same_answer_and_opens_one_payment(client):
    a = bidder(client)
    order = won_order(a, price=100_000)

    first = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}, headers=keyed("pay-1"))
    again = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}, headers=keyed("pay-1"))

    assert first.status_code == 200, first.content
    _same_replay(first, again)
    assert Payment.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_a_retried_coupon_claim_gets_one_coupon_though_the_limit_allows_more(client):
    coupon = CouponFactory(per_user_limit=3)
    a = bidder(client)

    first = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("claim-1"))
    again = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("claim-1"))
    other = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("claim-2"))

    assert first.status_code == 201, first.content
    _same_replay(first, again)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert UserCoupon.objects.filter(user=a.user).count() == 2


@pytest.mark.django_db
def test_without_a_key_nothing_is_stored_and_a_repeat_is_a_new_request(client):
    coupon = CouponFactory(per_user_limit=3)
    a = bidder(client)
    assert a.post(f"/coupons/{coupon.pk}/claim").status_code == 201
    assert a.post(f"/coupons/{coupon.pk}/claim").status_code == 201
    assert UserCoupon.objects.filter(user=a.user).count() == 2
    assert not IdempotentRequest.objects.exists()


# --- the key ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_validation_error_and_changes_nothing(open_lot, client):
    lot, a = open_lot
    other_lot = LotFactory(deposit=50_000)
    assert a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("k")).status_code == 201

    refused = a.post(f"/lots/{lot.pk}/bids", {"price": 130_000}, headers=keyed("k"))
    body = assert_error(refused, 422, "validation_error")
    assert "another request" in body["message"]
    assert body["detail"]["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert Bid.objects.filter(lot=lot).count() == 1
    # The key is the user's across endpoints: another path is another request too.
    assert_error(a.post("/deposits", {"lot_id": other_lot.pk}, headers=keyed("k")), 422, "validation_error")
    assert not Deposit.objects.filter(lot=other_lot).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "a" * 65, "has space", "ключ", "a/b", "a.b", "a=b"])
def test_a_malformed_key_is_a_validation_error_and_nothing_happens(open_lot, key):
    lot, a = open_lot
    assert_error(a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed(key)), 422, "validation_error")
    assert not Bid.objects.exists() and not IdempotentRequest.objects.exists()


@pytest.mark.django_db
def test_keys_differing_only_in_case_are_two_keys(client):
    coupon = CouponFactory(per_user_limit=3)
    a = bidder(client)
    assert a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("AbC")).status_code == 201
    assert a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("abc")).status_code == 201
    assert UserCoupon.objects.filter(user=a.user).count() == 2


@pytest.mark.django_db
def test_another_users_same_key_is_independent(client):
    coupon = CouponFactory(per_user_limit=1)
    a, b = bidder(client), bidder(client)
    first = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("shared"))
    second = b.post(f"/coupons/{coupon.pk}/claim", headers=keyed("shared"))
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"] and not second.has_header("Idempotent-Replayed")
    assert UserCoupon.objects.filter(coupon=coupon).count() == 2


@pytest.mark.django_db
def test_without_a_token_the_key_is_not_claimed_and_the_answer_is_401(api, open_lot):
    lot, _ = open_lot
    assert_error(api.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("k")), 401, "unauthenticated")
    assert not IdempotentRequest.objects.exists()


# --- which answers are kept ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_business_refusal_is_kept_and_replayed_even_once_it_would_pass(client):
    lot = LotFactory(start_price=100_000, deposit=50_000)
    a = bidder(client)
    refused = a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("early"))
    assert_error(refused, 409, "deposit_required")
    pay_deposit(a, lot_id=lot.pk)

    _same_replay(refused, a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("early")))
    assert not Bid.objects.exists()
    assert a.post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("after-deposit")).status_code == 201


@pytest.mark.django_db
def test_an_answer_that_may_change_is_not_kept_so_the_retry_runs_again(client):
    a = bidder(client)
    assert_error(a.post("/orders/20261201NOSUCHORDER/pay", {"address": ADDRESS}, headers=keyed("k")), 404, "not_found")
    assert not IdempotentRequest.objects.exists()


def _in_flight(user, key: str, path: str, body: bytes, *, claimed_ago: timedelta = timedelta(0)) -> None:
    """A claim committed first (deposits, pay) whose request is still running, or died."""
    claimed_at = timezone.now() - claimed_ago
    IdempotentRequest.objects.create(
        user=user, key_hex=key.encode().hex(), fingerprint=request_fingerprint(method="POST", path=path, body=body),
        lease="theirs", created_at=claimed_at, claimed_at=claimed_at,
    )


def _post(api: ApiClient, path: str, body: bytes, key: str):
    return api.client.post(path, body, content_type="application/json", headers={"Authorization": f"Bearer {api.token}", **keyed(key)})


@pytest.mark.django_db
def test_a_deposit_claim_left_by_a_killed_process_is_taken_over_after_its_lease(client, settings):
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    body = b'{"lot_id": %d}' % lot.pk
    _in_flight(a.user, "crash", "/api/v1/deposits", body, claimed_ago=timedelta(seconds=settings.AUCTION_IDEMPOTENCY_LEASE_SECONDS + 1))

    retried = _post(a, "/api/v1/deposits", body, "crash")

    assert retried.status_code == 201, retried.content
    assert Deposit.objects.filter(user=a.user).count() == 1
    assert IdempotentRequest.objects.get().status_code == 201


@pytest.mark.django_db
def test_a_retry_while_a_deposit_is_in_flight_waits_then_is_told_to_come_back(client, settings):
    settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS = 0.2
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    body = b'{"lot_id": %d}' % lot.pk
    _in_flight(a.user, "busy", "/api/v1/deposits", body)

    retried = _post(a, "/api/v1/deposits", body, "busy")

    assert_error(retried, 409, "idempotency_key_in_use")
    assert retried["Retry-After"] == "1"
    assert not Deposit.objects.exists()


@pytest.mark.django_db
def test_a_failed_deposit_leaves_no_claim_so_its_retry_runs(client, settings):
    # A 404 may be another answer next time; it is not kept.
    a = bidder(client)
    assert_error(_post(a, "/api/v1/deposits", b'{"lot_id": 999999}', "k"), 404, "not_found")
    assert not IdempotentRequest.objects.exists()


# --- 24 hours --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_is_forgotten_after_24_hours_and_the_job_purges_it(client):
    coupon = CouponFactory(per_user_limit=3)
    a = bidder(client)
    first = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("daily"))
    assert first.status_code == 201
    fresh = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("fresh"))
    assert fresh.status_code == 201

    IdempotentRequest.objects.filter(key_hex=b"daily".hex()).update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    # Past 24 h, not purged yet: the key is new again.
    later = a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("daily"))
    assert later.status_code == 201 and later.json()["id"] != first.json()["id"]
    assert UserCoupon.objects.filter(user=a.user).count() == 3

    IdempotentRequest.objects.filter(key_hex=b"daily".hex()).update(created_at=timezone.now() - timedelta(hours=25))
    assert tasks.idempotency_purge() == 1
    assert tasks.idempotency_purge() == 0  # run twice: the second changes nothing
    assert list(IdempotentRequest.objects.values_list("key_hex", flat=True)) == [b"fresh".hex()]
    _same_replay(fresh, a.post(f"/coupons/{coupon.pk}/claim", headers=keyed("fresh")))


@pytest.mark.django_db
def test_the_purge_is_scheduled_hourly_by_migrate():
    from django_q.models import Schedule

    from jobs.schedules import IDEMPOTENCY_PURGE_NAME, idempotency_purge_hourly

    idempotency_purge_hourly()
    schedule = Schedule.objects.get(name=IDEMPOTENCY_PURGE_NAME)
    assert (schedule.func, schedule.schedule_type) == ("jobs.tasks.idempotency_purge", Schedule.HOURLY)
    assert idempotency_purge(now=timezone.now()) == 0


# --- the routes and the document --------------------------------------------------------------------


@pytest.mark.parametrize("path, view", [
    ("/api/v1/lots/12/bids", bids.bid_create),
    ("/api/v1/coupons/3/claim", coupons.coupon_claim_view),
    ("/api/v1/deposits", deposits.deposit_create),
    ("/api/v1/orders/20261201AbC123/pay", orders.order_pay_view),
])
def test_each_keyed_route_is_the_path_the_urlconf_gives_its_view(path, view):
    assert sum(bool(pattern.fullmatch(path)) for pattern, _ in KEYED_ROUTES) == 1
    match = resolve(path)
    # Ninja's view for a path closes over its PathView, which holds the operations.
    (path_view,) = [cell.cell_contents for cell in match.func.__closure__]
    assert view in [op.view_func for op in path_view.operations if "POST" in op.methods]


@pytest.mark.django_db
def test_the_openapi_document_names_the_header_on_each_keyed_operation(api):
    document = api.get("/openapi.json").json()
    for path in ("/api/v1/lots/{lot_id}/bids", "/api/v1/deposits", "/api/v1/orders/{order_no}/pay", "/api/v1/coupons/{coupon_id}/claim"):
        names = [p["name"] for p in document["paths"][path]["post"]["parameters"]]
        assert "Idempotency-Key" in names, path
        assert "422" in document["paths"][path]["post"]["responses"], path


def test_a_request_without_the_header_passes_straight_through():
    seen = []
    middleware = IdempotencyMiddleware(lambda request: seen.append(request) or "answer")

    class Request:
        META = {}

    assert middleware(Request()) == "answer" and len(seen) == 1


# --- the race ---------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_from_8_threads_at_once_bids_once_and_all_get_its_answer():
    lot = LotFactory(start_price=100_000, deposit=50_000)
    setup = Client()
    setup.handler = ProductionChainsHandler(False)
    a = bidder(setup, "甲")
    pay_deposit(a, lot_id=lot.pk)

    def send(index: int):
        client = Client()
        client.handler = ProductionChainsHandler(False)
        return ApiClient(client, token=a.token).post(f"/lots/{lot.pk}/bids", {"price": 120_000}, headers=keyed("race"))

    answers = run_threads(8, send)

    assert not [r for r in answers if isinstance(r, BaseException)], answers
    assert [r.status_code for r in answers] == [201] * 8, [r.content for r in answers]
    assert len({r.content for r in answers}) == 1
    assert sum(not r.has_header("Idempotent-Replayed") for r in answers) == 1
    assert Bid.objects.filter(lot=lot).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_claim_key_from_8_threads_at_once_claims_one_coupon():
    coupon = CouponFactory(per_user_limit=5)
    setup = Client()
    setup.handler = ProductionChainsHandler(False)
    a = bidder(setup)

    def send(index: int):
        client = Client()
        client.handler = ProductionChainsHandler(False)
        return ApiClient(client, token=a.token).post(f"/coupons/{coupon.pk}/claim", headers=keyed("rush"))

    answers = run_threads(8, send)

    assert not [r for r in answers if isinstance(r, BaseException)], answers
    assert [r.status_code for r in answers] == [201] * 8
    assert len({r.content for r in answers}) == 1
    assert UserCoupon.objects.filter(user=a.user).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_bid_whose_request_dies_holding_the_key_leaves_nothing_and_its_retry_bids_at_once():
    # given a request that claimed the key in its transaction and is then killed
    lot = LotFactory(start_price=100_000, deposit=50_000)
    setup = Client()
    setup.handler = ProductionChainsHandler(False)
    a = bidder(setup, "甲")
    pay_deposit(a, lot_id=lot.pk)
    path, body = f"/api/v1/lots/{lot.pk}/bids", b'{"price": 120000}'
    claimed, retry_sent = threading.Event(), threading.Event()

    def killed_request(index: int):
        if index == 0:
            with pytest.raises(RuntimeError), transaction.atomic():
                idempotency_claim(user_id=a.user.pk, key="dies", fingerprint=request_fingerprint(method="POST", path=path, body=body))
                claimed.set()
                retry_sent.wait(10)
                time.sleep(0.3)  # the retry is waiting on the key by now
                raise RuntimeError("killed")  # its transaction rolls back, as a dropped connection's does
            return "died"
        claimed.wait(10)
        client = Client()
        client.handler = ProductionChainsHandler(False)
        retry_sent.set()
        return _post(ApiClient(client, token=a.token), path, body, "dies")

    # when its retry comes while it still holds the key
    died, retried = run_threads(2, killed_request)

    # then the retry waited for it, then bid: one bid, and its answer kept
    assert died == "died", died
    assert retried.status_code == 201, retried.content
    assert not retried.has_header("Idempotent-Replayed")
    assert Bid.objects.filter(lot=lot).count() == 1
    assert IdempotentRequest.objects.get().status_code == 201


@pytest.mark.mariadb
@pytest.mark.skipif(connection.vendor != "mysql", reason="SQLite queues the retry on its write lock (busy timeout), not on the key")
@pytest.mark.django_db(transaction=True)
def test_a_bid_retry_while_the_first_holds_the_key_too_long_is_told_to_come_back(settings):
    settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS = 1
    lot = LotFactory(start_price=100_000, deposit=50_000)
    setup = Client()
    setup.handler = ProductionChainsHandler(False)
    a = bidder(setup, "甲")
    pay_deposit(a, lot_id=lot.pk)
    path, body = f"/api/v1/lots/{lot.pk}/bids", b'{"price": 120000}'
    claimed, answered = threading.Event(), threading.Event()

    def slow_first(index: int):
        if index == 0:
            with transaction.atomic():
                idempotency_claim(user_id=a.user.pk, key="slow", fingerprint=request_fingerprint(method="POST", path=path, body=body))
                claimed.set()
                answered.wait(10)
                transaction.set_rollback(True)
            return None
        claimed.wait(10)
        client = Client()
        client.handler = ProductionChainsHandler(False)
        try:
            return _post(ApiClient(client, token=a.token), path, body, "slow")
        finally:
            answered.set()

    _, retried = run_threads(2, slow_first)

    assert_error(retried, 409, "idempotency_key_in_use")
    assert retried["Retry-After"] == "1"
    assert not Bid.objects.exists()
