"""Every non-2xx answer is {code, message, detail}; a 500 leaks nothing."""

import json

import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

CONTRACT_PATHS = {
    "/api/v1/auth/wechat": {"post"},
    "/api/v1/auth/sandbox": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/specials": {"get"},
    "/api/v1/specials/{special_id}": {"get"},
    "/api/v1/lots/{lot_id}": {"get"},
    "/api/v1/lots/{lot_id}/bids": {"get"},
}


def test_an_unexpected_error_is_a_clean_500(api, monkeypatch, settings):
    settings.DEBUG = True  # even in DEBUG no traceback reaches the client

    def explode(**kwargs):
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr("auction.selectors.specials_list", explode)
    response = api.get("/specials")
    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.content.decode() and "Traceback" not in response.content.decode()
    assert body["detail"] == {}


def test_the_openapi_document_describes_the_contract_paths(client):
    document = client.get("/api/v1/openapi.json").json()
    paths = {path: set(methods) for path, methods in document["paths"].items()}
    for path, methods in CONTRACT_PATHS.items():
        assert path in paths, path
        assert methods <= paths[path], (path, paths[path])
    schemas = document["components"]["schemas"]
    assert set(schemas["SpecialOut"]["properties"]) == {
        "id", "title", "cover", "status", "preview_at", "starts_at", "ends_at", "deposit", "lot_count",
    }
    assert set(schemas["LotDetailOut"]["properties"]) >= {
        "id", "special_id", "title", "cover", "status", "start_price", "current_price", "bid_count", "ends_at",
        "images", "description", "deposit", "reserve_met", "increment", "next_min_bid", "server_time", "my",
    }
    assert schemas["SpecialStatus"]["enum"] == ["upcoming", "preview", "bidding", "ended"]
    assert set(schemas["ErrorOut"]["properties"]) == {"code", "message", "detail"}
    money = schemas["LotSummaryOut"]["properties"]["start_price"]
    assert money["type"] == "integer"


def test_the_docs_page_is_served(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and b"openapi.json" in response.content


def test_errors_are_json_with_unicode_intact(api):
    response = api.get("/specials/0")
    assert response["Content-Type"].startswith("application/json")
    json.loads(response.content)


def test_a_payment_gateway_failure_is_a_retryable_503(client, monkeypatch):
    from auction.gateways.payments import GatewayError
    from auction.gateways.sandbox import SandboxGateway
    from tests.factories import LotFactory
    from tests.market import bidder

    def down(self, payment):
        raise GatewayError("connect timeout")

    monkeypatch.setattr(SandboxGateway, "create", down)
    lot = LotFactory(deposit=50_000)
    a = bidder(client)
    assert_error(a.post("/deposits", {"lot_id": lot.pk}), 503, "gateway_unavailable")
    monkeypatch.undo()
    retry = a.post("/deposits", {"lot_id": lot.pk})
    assert retry.status_code == 200 and retry.json()["payment"]["params"]["package"].startswith("prepay_id=")
