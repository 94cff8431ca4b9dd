"""Admin logins lock out after repeated wrong passwords (django-axes), per username and client IP."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tests.conftest import ApiClient

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-right-password-4711"
LOGINS = {"wagtail": "/admin/login/", "django": "/django-admin/login/"}
HOMES = {"wagtail": "/admin/", "django": "/django-admin/"}


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(username="admin", email="admin@example.com", password=PASSWORD)


def log_in(client: Client, which: str, password: str, *, ip: str = "127.0.0.1"):
    return client.post(LOGINS[which], {"username": "admin", "password": password}, REMOTE_ADDR=ip)


def is_logged_in(client: Client, which: str) -> bool:
    return client.get(HOMES[which]).status_code == 200


@pytest.mark.parametrize("which", ["wagtail", "django"])
def test_the_right_password_logs_in(client, admin, which):
    assert log_in(client, which, PASSWORD).status_code == 302
    assert is_logged_in(client, which)


@pytest.mark.parametrize("which", ["wagtail", "django"])
def test_wrong_passwords_lock_out_even_the_right_one(client, admin, which):
    # given many wrong passwords from one address
    for attempt in range(settings.AXES_FAILURE_LIMIT + 20):
        assert log_in(client, which, f"guess-{attempt}").status_code in (200, 429)
    # when the right one comes
    response = log_in(client, which, PASSWORD)
    # then it is refused, and no session was made
    assert response.status_code == 429
    assert not is_logged_in(client, which)
    # while the same user from another address still logs in (the lock is per user and IP)
    elsewhere = Client()
    assert log_in(elsewhere, which, PASSWORD, ip="198.51.100.20").status_code == 302
    assert is_logged_in(elsewhere, which)


def test_the_lock_holds_on_both_logins_at_once(client, admin):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wagtail", f"guess-{attempt}")
    assert log_in(client, "django", PASSWORD).status_code == 429


def test_the_client_ip_is_the_one_our_proxy_saw(client, admin, settings):
    # Behind nginx every request comes from nginx; the header it sets tells clients apart.
    settings.AUCTION_NUM_PROXIES = 1
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        client.post(LOGINS["wagtail"], {"username": "admin", "password": f"guess-{attempt}"},
                    HTTP_X_FORWARDED_FOR=f"10.0.0.{attempt}, 203.0.113.9")
    locked = client.post(LOGINS["wagtail"], {"username": "admin", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert locked.status_code == 429
    other = Client().post(LOGINS["wagtail"], {"username": "admin", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert other.status_code == 302


def test_ops_unlock_a_username_with_the_command(client, admin):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wagtail", f"guess-{attempt}")
    assert log_in(client, "wagtail", PASSWORD).status_code == 429
    call_command("axes_reset_username", "admin")
    assert log_in(client, "wagtail", PASSWORD).status_code == 302
    assert is_logged_in(client, "wagtail")


def test_ops_unlock_by_deleting_the_attempt_in_the_django_admin(client, admin, django_user_model):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "django", f"guess-{attempt}")
    (attempt,) = AccessAttempt.objects.filter(username="admin")
    ops = Client()
    ops.force_login(django_user_model.objects.create_superuser(username="ops", email="ops@example.com", password=PASSWORD + "x"))
    confirm = ops.post("/django-admin/axes/accessattempt/", {"action": "delete_selected", "_selected_action": [attempt.pk]})
    assert confirm.status_code == 200
    done = ops.post("/django-admin/axes/accessattempt/",
                    {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"})
    assert done.status_code == 302
    assert not AccessAttempt.objects.filter(username="admin").exists()
    assert log_in(client, "django", PASSWORD).status_code == 302


def test_the_lock_ends_after_the_cool_off(client, admin):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        log_in(client, "wagtail", f"guess-{attempt}")
    assert log_in(client, "wagtail", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert log_in(client, "wagtail", PASSWORD).status_code == 302


def test_the_api_chain_has_no_lockout_and_leaves_no_attempts(api):
    assert "axes.middleware.AxesMiddleware" in settings.MIDDLEWARE
    assert "axes.middleware.AxesMiddleware" not in settings.API_MIDDLEWARE
    for index in range(settings.AXES_FAILURE_LIMIT + 2):
        response = api.post("/auth/sandbox", {"openid": f"lock-{index}"})
        assert response.status_code == 200
        assert ApiClient(api.client, token=response.json()["token"]).get("/me").status_code == 200
    assert not AccessAttempt.objects.exists()
