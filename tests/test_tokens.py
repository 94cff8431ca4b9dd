"""Tokens: logout, the cap per user, the purge job, sandbox tokens outliving no sandbox."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from auction.models import AuthToken
from auction.services.tokens import token_issue, tokens_purge
from jobs import schedules, tasks
from tests.conftest import ApiClient, assert_error
from tests.factories import LotFactory, UserFactory
from tests.market import bid, bidder, pay_deposit
from tests.threads import run_threads


def _me(client, token: str):
    return ApiClient(client, token=token).get("/me")


@pytest.mark.django_db
def test_logout_stops_the_token_at_once_and_only_that_token(client, user):
    # given two devices logged in
    phone, tablet = token_issue(user=user), token_issue(user=user)
    # when the phone logs out
    response = ApiClient(client, token=phone).post("/auth/logout")
    # then
    assert response.status_code == 204 and response.content == b""
    assert_error(_me(client, phone), 401, "unauthenticated")
    assert_error(ApiClient(client, token=phone).post("/auth/logout"), 401, "unauthenticated")
    assert _me(client, tablet).status_code == 200
    assert AuthToken.objects.get(user=user, revoked_at__isnull=False)


@pytest.mark.django_db
def test_a_logged_out_token_cannot_bid(client):
    lot = LotFactory(start_price=100_000, deposit=50_000)
    a = bidder(client)
    pay_deposit(a, lot_id=lot.pk)
    assert a.post("/auth/logout").status_code == 204
    assert_error(bid(a, lot.pk, 100_000), 401, "unauthenticated")


@pytest.mark.django_db
def test_logout_needs_a_token(api):
    assert_error(api.post("/auth/logout"), 401, "unauthenticated")
    assert_error(api.post("/auth/logout", headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")


@pytest.mark.django_db
def test_a_login_beyond_the_cap_revokes_the_oldest(client, user, settings):
    assert settings.AUCTION_TOKENS_PER_USER == 10
    tokens = [token_issue(user=user) for _ in range(10)]
    assert all(_me(client, token).status_code == 200 for token in tokens)
    # when an eleventh login comes
    newest = token_issue(user=user)
    # then the first stops working, the other ten do
    assert_error(_me(client, tokens[0]), 401, "unauthenticated")
    assert all(_me(client, token).status_code == 200 for token in [*tokens[1:], newest])
    assert AuthToken.objects.filter(user=user, revoked_at__isnull=True).count() == 10
    # another user's tokens are not counted
    assert _me(client, token_issue(user=UserFactory())).status_code == 200


@pytest.mark.django_db
def test_expired_tokens_do_not_count_against_the_cap(client, user):
    old = [token_issue(user=user) for _ in range(10)]
    AuthToken.objects.filter(user=user).update(expires_at=timezone.now() - timedelta(seconds=1))
    fresh = [token_issue(user=user) for _ in range(10)]
    assert AuthToken.objects.filter(user=user, revoked_at__isnull=False).count() == 0
    assert all(_me(client, token).status_code == 200 for token in fresh)
    assert_error(_me(client, old[-1]), 401, "unauthenticated")


@pytest.mark.django_db(transaction=True)
def test_logins_at_once_still_leave_at_most_the_cap():
    user = UserFactory()
    results = run_threads(16, lambda index: token_issue(user=user))
    assert all(isinstance(token, str) for token in results), results
    assert AuthToken.objects.filter(user=user).count() == 16
    assert AuthToken.objects.filter(user=user, revoked_at__isnull=True).count() == 10


@pytest.mark.django_db
def test_the_purge_deletes_expired_and_long_revoked_tokens_only(user, settings):
    now = timezone.now()
    live, recently_revoked, long_revoked, expired = (token_issue(user=user) for _ in range(4))
    rows = list(AuthToken.objects.filter(user=user).order_by("pk"))
    AuthToken.objects.filter(pk=rows[1].pk).update(revoked_at=now - timedelta(hours=1))
    AuthToken.objects.filter(pk=rows[2].pk).update(
        revoked_at=now - timedelta(seconds=settings.AUCTION_TOKEN_REVOKED_KEEP_SECONDS + 1)
    )
    AuthToken.objects.filter(pk=rows[3].pk).update(expires_at=now - timedelta(seconds=1))

    assert tasks.tokens_purge() == "2 tokens purged"

    assert set(AuthToken.objects.values_list("pk", flat=True)) == {rows[0].pk, rows[1].pk}
    assert tokens_purge() == 0  # the second run changes nothing


@pytest.mark.django_db
def test_the_purge_goes_in_batches(user):
    for _ in range(5):
        token_issue(user=user)
    AuthToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert tokens_purge(batch=2) == 5
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_the_purge_runs_daily_from_one_schedule():
    schedules.periodic()
    schedules.periodic()
    (schedule,) = Schedule.objects.filter(name=schedules.TOKENS_PURGE_NAME)
    assert schedule.func == "jobs.tasks.tokens_purge" and schedule.schedule_type == Schedule.DAILY
    assert Schedule.objects.filter(name=schedules.SWEEP_NAME).count() == 1


@pytest.mark.django_db
def test_sandbox_tokens_stop_working_when_the_sandbox_is_off(client, api, settings):
    # given a lot, and a sandbox login with a held deposit on it, on this same database
    settings.AUCTION_SANDBOX = True
    lot = LotFactory(start_price=100_000, deposit=50_000)
    token = api.post("/auth/sandbox", {"openid": "demo-alice"}).json()["token"]
    sandboxed = ApiClient(client, token=token)
    pay_deposit(sandboxed, lot_id=lot.pk)
    assert AuthToken.objects.get().via_sandbox
    # and a user logged in some other way
    other = bidder(client)
    pay_deposit(other, lot_id=lot.pk)

    # when the sandbox is switched off
    settings.AUCTION_SANDBOX = False

    # then the sandbox's token is refused everywhere, the bid's own check included
    assert_error(sandboxed.get("/me"), 401, "unauthenticated")
    assert_error(bid(sandboxed, lot.pk, 100_000), 401, "unauthenticated")
    assert_error(sandboxed.get(f"/lots/{lot.pk}"), 401, "unauthenticated")
    assert other.get("/me").status_code == 200
    assert bid(other, lot.pk, 100_000).status_code == 201

    # and switched on again, it works again (nothing was written to it)
    settings.AUCTION_SANDBOX = True
    assert sandboxed.get("/me").status_code == 200
