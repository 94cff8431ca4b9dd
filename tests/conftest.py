import pytest
from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.db import DatabaseCache
from django.test import Client
from django.test.client import ClientHandler

from auction.selectors import lot_cards_forget_local
from auction.services.tokens import token_issue
from project.wsgi import ApiMiddlewareChain
from tests.factories import UserFactory
from tests.notify_helpers import wechat  # noqa: F401  (the fake WeChat for subscribe messages, a fixture)


@pytest.fixture
def english():
    """What people read in English (``LANGUAGE_CODE`` is zh-hans): for tests that check English wording,
    as someone who picks English sees it; tests/test_translations.py checks the Chinese."""
    from django.utils import translation

    with translation.override("en"):
        yield


def prefer_english(user) -> None:
    """The admin in English for ``user``, as Wagtail's account settings set it."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(user)
    profile.preferred_language = "en"
    profile.save()


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def clear_cache(request):
    # Throttle counters live in the cache; one test's logins are not the next one's.
    # Lot ids come back after a rollback, so neither do cards outlive a test.
    # The embedded default's cache is a table: a test without the database has none.
    reachable = not isinstance(caches["default"], DatabaseCache) or bool(
        request.node.get_closest_marker("django_db") or {"db", "transactional_db"} & set(request.fixturenames)
    )
    if reachable and isinstance(caches["default"], DatabaseCache) and not request.node.get_closest_marker("django_db"):
        # Autouse fixtures run before the test's own: open the database it asked for first.
        request.getfixturevalue("transactional_db" if "transactional_db" in request.fixturenames else "db")
    if reachable:
        cache.clear()
    _clear_renditions()
    lot_cards_forget_local()
    yield
    if reachable:
        cache.clear()
    _clear_renditions()
    lot_cards_forget_local()


def _clear_renditions() -> None:
    # Rendition ids come back after a rollback too (the embedded default keeps them in memory).
    if "renditions" in settings.CACHES:
        caches["renditions"].clear()


class ApiClientHandler(ApiMiddlewareChain, ClientHandler):
    pass


class ProductionChainsHandler:
    """What project/wsgi.py does, inside Django's test client: /api/ through the
    API's own middleware chain (where bids take their direct route), the rest
    through the site's."""

    def __init__(self, *args, **kwargs):
        self.site = ClientHandler(*args, **kwargs)
        self.api = ApiClientHandler(*args, **kwargs)

    def __call__(self, environ):
        handler = self.api if environ["PATH_INFO"].startswith(settings.API_PATH_PREFIX) else self.site
        return handler(environ)


@pytest.fixture
def client():
    test_client = Client()
    test_client.handler = ProductionChainsHandler(test_client.handler.enforce_csrf_checks)
    return test_client


class ApiClient:
    """Django's test client speaking JSON to /api/v1, with an optional token."""

    def __init__(self, client, token: str | None = None):
        self.client = client
        self.token = token

    def _headers(self, headers):
        merged = dict(headers or {})
        if self.token:
            merged.setdefault("Authorization", f"Bearer {self.token}")
        return merged

    def get(self, path, params=None, headers=None):
        return self.client.get(f"/api/v1{path}", params or {}, headers=self._headers(headers))

    def post(self, path, json=None, headers=None):
        return self.client.post(f"/api/v1{path}", json if json is not None else {}, content_type="application/json", headers=self._headers(headers))

    def put(self, path, json=None, headers=None):
        return self.client.put(f"/api/v1{path}", json if json is not None else {}, content_type="application/json", headers=self._headers(headers))

    def delete(self, path, headers=None):
        return self.client.delete(f"/api/v1{path}", headers=self._headers(headers))


@pytest.fixture
def api(client, db):
    return ApiClient(client)


@pytest.fixture
def user(db):
    return UserFactory(nickname="张三丰")


@pytest.fixture
def user_api(client, user):
    return ApiClient(client, token=token_issue(user=user))


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "detail"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    return body
