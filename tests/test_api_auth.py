"""Logging in: WeChat's jscode2session (a real local fake), the sandbox, tokens."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from auction.models import AuthToken, User
from auction.services.tokens import token_issue, token_revoke
from tests.conftest import assert_error
from tests.fakes.wechat_login import FakeWechat

pytestmark = pytest.mark.django_db


@pytest.fixture
def wechat(settings):
    fake = FakeWechat().start()
    settings.WECHAT_APPID = fake.appid
    settings.WECHAT_SECRET = fake.secret
    settings.WECHAT_API_BASE = fake.base_url
    yield fake
    fake.stop()


def test_a_good_code_logs_in_and_creates_the_user_once(api, wechat):
    wechat.sessions["code-1"] = ("o-openid-1", "u-union-1")
    wechat.sessions["code-2"] = ("o-openid-1", "u-union-1")
    first = api.post("/auth/wechat", {"code": "code-1"})
    assert first.status_code == 200, first.content
    body = first.json()
    assert set(body) == {"token", "user"} and set(body["user"]) == {"id", "nickname", "avatar_url"}
    assert wechat.requests[0]["query"]["js_code"] == "code-1"
    second = api.post("/auth/wechat", {"code": "code-2"}).json()
    assert second["user"]["id"] == body["user"]["id"]
    assert User.objects.get(openid="o-openid-1").unionid == "u-union-1"
    me = api.get("/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.json() == {"id": body["user"]["id"], "nickname": "", "avatar_url": ""}


def test_wechat_refusing_the_code_is_wechat_login_failed(api, wechat):
    # WeChat says no with HTTP 200 and errcode 40029: the body decides.
    body = assert_error(api.post("/auth/wechat", {"code": "used-or-forged"}), 401, "wechat_login_failed")
    assert body["detail"]["errcode"] == 40029
    assert not User.objects.filter(openid__isnull=False).exists()


def test_wechat_down_is_a_retryable_login_failure(api, wechat):
    wechat.broken_status = 502
    body = assert_error(api.post("/auth/wechat", {"code": "any"}), 503, "wechat_login_failed")
    assert body["detail"]["reason"] == "wechat_unavailable"


def test_wechat_unreachable_is_a_retryable_login_failure(api, settings, wechat):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    settings.WECHAT_API_BASE = f"http://127.0.0.1:{closed_port}"
    assert_error(api.post("/auth/wechat", {"code": "any"}), 503, "wechat_login_failed")


def test_login_without_wechat_configured_never_calls_out(api, settings):
    settings.WECHAT_APPID = ""
    body = assert_error(api.post("/auth/wechat", {"code": "any"}), 503, "wechat_login_failed")
    assert body["detail"]["reason"] == "not_configured"


@pytest.mark.parametrize("payload", [{}, {"code": ""}, {"code": 12}, {"code": "x" * 200}, {"code": None}])
def test_bad_login_input_is_a_validation_error(api, wechat, payload):
    assert_error(api.post("/auth/wechat", payload), 422, "validation_error")


def test_malformed_json_is_a_validation_error(client, db):
    for body in ("{not json", "[1, 2]", "\"text\"", "\xff\xfe"):
        assert_error(client.post("/api/v1/auth/sandbox", body, content_type="application/json"), 422, "validation_error")


def test_sandbox_login_makes_a_token_and_keeps_the_nickname(api):
    response = api.post("/auth/sandbox", {"openid": "demo-alice", "nickname": "爱丽丝"})
    assert response.status_code == 200
    token = response.json()["token"]
    assert api.get("/me", headers={"Authorization": f"Bearer {token}"}).json()["nickname"] == "爱丽丝"


def test_sandbox_is_not_found_when_off(api, settings):
    settings.AUCTION_SANDBOX = False
    assert_error(api.post("/auth/sandbox", {"openid": "demo-alice"}), 404, "not_found")


@pytest.mark.parametrize("openid", ["", "a b", "x" * 65, "<script>"])
def test_sandbox_refuses_odd_openids(api, openid):
    assert_error(api.post("/auth/sandbox", {"openid": openid}), 422, "validation_error")


def test_me_needs_a_token(api):
    assert_error(api.get("/me"), 401, "unauthenticated")
    assert_error(api.get("/me", headers={"Authorization": "Bearer nope"}), 401, "unauthenticated")
    assert_error(api.get("/me", headers={"Authorization": "Bearer " + "é" * 50}), 401, "unauthenticated")


def test_tokens_are_stored_hashed_expire_and_can_be_revoked(api, user):
    token = token_issue(user=user)
    stored = AuthToken.objects.get(user=user)
    assert stored.key_hash != token and token not in stored.key_hash
    assert api.get("/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    AuthToken.objects.filter(pk=stored.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(api.get("/me", headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")

    fresh = token_issue(user=user)
    assert token_revoke(raw_token=fresh)
    assert_error(api.get("/me", headers={"Authorization": f"Bearer {fresh}"}), 401, "unauthenticated")


def test_an_inactive_user_is_logged_out(api, user):
    token = token_issue(user=user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(api.get("/me", headers={"Authorization": f"Bearer {token}"}), 401, "unauthenticated")


def test_logins_are_throttled_per_client(api, settings):
    settings.AUCTION_THROTTLE_LOGIN_IP = "3/m"
    for index in range(3):
        assert api.post("/auth/sandbox", {"openid": f"u{index}"}).status_code == 200
    assert_error(api.post("/auth/sandbox", {"openid": "u4"}), 429, "throttled")


def test_wrong_methods_and_unknown_paths_answer_in_the_contract_shape(api):
    assert_error(api.delete("/specials"), 405, "method_not_allowed")
    assert_error(api.get("/auth/wechat"), 405, "method_not_allowed")
    assert_error(api.get("/nothing-here"), 404, "not_found")
