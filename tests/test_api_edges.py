"""The API's edges (DESIGN.md, Edges): a bad Host, a huge body, a wrong type or
a control character is a 4xx in the contract's shape, and nothing is written."""

import json
import re

import pytest
from django.apps import apps

from auction.models import Bid, Payment
from tests.conftest import assert_error
from tests.factories import CouponFactory, ImageFactory, LotFactory
from tests.market import ADDRESS, bidder, pay_deposit, won_order

pytestmark = pytest.mark.django_db

# One body that every operation's schema would take (unknown fields are ignored).
ANY_BODY = {"price": 100_000, "max_price": 200_000, "address": ADDRESS, "openid": "edge", "code": "c0de"}
BAD_HOST = "evil.example"


def wechat_fail(response, status: int, code: str = "") -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == "FAIL" and body["message"], body


def database_rows() -> dict:
    """Every row of the app's own tables, to show that a refused request changed none."""
    models = [model for config in ("auction", "django_q") for model in apps.get_app_config(config).get_models()]
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in models}


@pytest.fixture
def world(client):
    """A bidder holding a lot deposit, an order to pay and a coupon: every path has something real behind it."""
    a = bidder(client, "阿甲")
    lot = LotFactory(cover=ImageFactory())
    pay_deposit(a, lot_id=lot.pk)
    order = won_order(a, cover=ImageFactory())
    payment = Payment.objects.filter(deposit__user=a.user).first()
    coupon = CouponFactory()
    a.values = {
        "lot_id": lot.pk, "special_id": lot.special_id, "order_no": order.order_no,
        "out_trade_no": payment.out_trade_no, "coupon_id": coupon.pk,
    }
    return a


def operations(client) -> list[tuple[str, str]]:
    document = client.get("/api/v1/openapi.json").json()
    found = [(method.upper(), path) for path, methods in document["paths"].items() for method in methods]
    assert len(found) >= 20, found
    return found


def send(a, method: str, path: str, *, body: bytes, headers: dict | None = None):
    url = re.sub(r"\{(\w+)\}", lambda match: str(a.values[match[1]]), path)
    headers = {"Authorization": f"Bearer {a.token}", **(headers or {})}
    return a.client.generic(method, url, body, content_type="application/json", headers=headers)


# --- item 1: the two 500s anyone could cause --------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/sandbox", "/auth/wechat", "/deposits", "/lots/1/bids", "/coupons/1/claim"])
def test_a_body_over_the_upload_limit_is_413_not_500(user_api, path, settings):
    huge = b'{"openid": "' + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) + b'"}'
    response = user_api.client.post(f"/api/v1{path}", huge, content_type="application/json", headers={"Authorization": f"Bearer {user_api.token}"})
    body = assert_error(response, 413, "payload_too_large")
    assert body["detail"] == {"max_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE}
    assert int(response["Content-Length"]) == len(response.content)


def test_a_host_outside_allowed_hosts_is_400_and_paying_commits_nothing(client):
    # given an order whose answer renders an image URL from the Host
    a = bidder(client)
    order = won_order(a, cover=ImageFactory())
    # when it is paid under a Host this server does not answer to
    response = a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}, headers={"Host": BAD_HOST})
    # then a contract 400, and no payment was made
    body = assert_error(response, 400, "bad_request")
    assert body["detail"] == {"reason": "host"}
    assert not Payment.objects.filter(order=order).exists()
    assert a.post(f"/orders/{order.order_no}/pay", {"address": ADDRESS}).status_code == 200


def test_every_operation_answers_a_huge_body_and_a_bad_host_with_a_contract_4xx_and_writes_nothing(client, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096  # the same rule, with a body that is quick to send
    huge = b'{"x": "' + b"y" * 5000 + b'"}'
    valid = json.dumps(ANY_BODY).encode()
    before = database_rows()
    for method, path in operations(client):
        # WeChat's notifications answer in WeChat's shape (api/notify.py), every other path in the contract's.
        refused = wechat_fail if path.startswith("/api/v1/payments/wechat/") else assert_error
        refused(send(world, method, path, body=huge), 413, "payload_too_large")
        refused(send(world, method, path, body=valid, headers={"Host": BAD_HOST}), 400, "bad_request")
    assert_error(client.get("/api/v1/openapi.json", headers={"Host": BAD_HOST}), 400, "bad_request")
    assert_error(client.get("/api/v1/docs", headers={"Host": BAD_HOST}), 400, "bad_request")
    assert database_rows() == before


def test_a_content_length_that_is_not_a_length_is_400(api):
    response = api.client.generic("POST", "/api/v1/auth/sandbox", b"{}", content_type="application/json", CONTENT_LENGTH="12x")
    assert_error(response, 400, "bad_request")


def test_too_many_query_fields_is_400_not_500(api):
    query = "&".join(f"f{n}=1" for n in range(1100))
    assert_error(api.client.get(f"/api/v1/specials?{query}"), 400, "bad_request")


def test_an_allowed_host_still_renders_absolute_image_urls(api):
    lot = LotFactory(cover=ImageFactory())
    cover = api.get(f"/lots/{lot.pk}", headers={"Host": "localhost"}).json()["cover"]
    assert cover["url"].startswith("http://localhost/")


# --- item 5: types ----------------------------------------------------------------------------

NOT_INTEGERS = ['"100000"', '" 100000 "', "100000.0", "1e5", "true", "false", "[100000]", '{"n": 1}']


@pytest.fixture
def open_lot(client):
    a = bidder(client)
    lot = LotFactory(start_price=100_000)
    pay_deposit(a, lot_id=lot.pk)
    a.lot = lot
    return a


def raw(a, method: str, path: str, text: str):
    return a.client.generic(method, f"/api/v1{path}", text.encode(), content_type="application/json", headers={"Authorization": f"Bearer {a.token}"})


@pytest.mark.parametrize("value", NOT_INTEGERS)
def test_money_is_a_json_integer_or_422(open_lot, value):
    lot_id = open_lot.lot.pk
    assert_error(raw(open_lot, "POST", f"/lots/{lot_id}/bids", f'{{"price": {value}}}'), 422, "validation_error")
    assert_error(raw(open_lot, "PUT", f"/lots/{lot_id}/auto-bid", f'{{"max_price": {value}}}'), 422, "validation_error")
    assert not Bid.objects.filter(lot=open_lot.lot).exists()


@pytest.mark.parametrize("value", [*NOT_INTEGERS, '"1"', "1.0"])
def test_ids_are_json_integers_or_422(client, value):
    # true was lot 1; "1" and 1.0 were lot 1 as well
    a = bidder(client)
    order = won_order(a)
    for field in ("lot_id", "special_id"):
        assert_error(raw(a, "POST", "/deposits", f'{{"{field}": {value}}}'), 422, "validation_error")
    assert_error(raw(a, "POST", f"/orders/{order.order_no}/quote", f'{{"user_coupon_id": {value}}}'), 422, "validation_error")
    pay = f'{{"user_coupon_id": {value}, "address": {json.dumps(ADDRESS)}}}'
    assert_error(raw(a, "POST", f"/orders/{order.order_no}/pay", pay), 422, "validation_error")
    assert not Payment.objects.filter(order=order).exists()


def test_integers_still_pass(open_lot):
    assert raw(open_lot, "POST", f"/lots/{open_lot.lot.pk}/bids", '{"price": 100000}').status_code == 201


def test_the_openapi_document_shows_money_and_ids_as_bounded_integers(client):
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    price = schemas["BidIn"]["properties"]["price"]
    assert price["type"] == "integer" and price["minimum"] == 1 and price["maximum"] >= 10**9
    for schema, field in (("DepositIn", "lot_id"), ("DepositIn", "special_id"), ("QuoteIn", "user_coupon_id")):
        (integer,) = [option for option in schemas[schema]["properties"][field]["anyOf"] if option["type"] == "integer"]
        assert integer["minimum"] == 1 and integer["maximum"] == 2**63 - 1, (schema, field)


@pytest.mark.parametrize("path", ["/lots/abc", "/lots/1.0", "/lots/-1", "/lots/99999999999999999999999", "/specials/1e3", "/lots/%201/bids"])
def test_a_path_id_that_is_not_a_whole_number_is_404(api, path):
    assert_error(api.get(path), 404, "not_found")


UNSAFE = ["\x00", "\x07", "\n", "\x1b[31m", "\x7f", "\x85", "\u202a", "\u202e", "\u2066", "\u2069"]


@pytest.mark.parametrize("character", UNSAFE)
def test_text_fields_refuse_control_characters_and_bidi_overrides(client, character):
    api = bidder(client)
    for body in ({"openid": f"o{character}x"}, {"openid": "ok", "nickname": f"张{character}三"}):
        assert_error(api.post("/auth/sandbox", body), 422, "validation_error")
    assert_error(api.post("/auth/wechat", {"code": f"c{character}"}), 422, "validation_error")
    order = won_order(api)
    for field in ADDRESS:
        address = {**ADDRESS, field: ADDRESS[field][:3] + character + ADDRESS[field][3:]}
        assert_error(api.post(f"/orders/{order.order_no}/pay", {"address": address}), 422, "validation_error")
    assert not Payment.objects.filter(order=order).exists()


def test_text_fields_take_ordinary_chinese_and_spaces(client):
    api = bidder(client)
    response = api.post("/auth/sandbox", {"openid": "edge-1", "nickname": "张 三丰 (老张)"})
    assert response.status_code == 200 and response.json()["user"]["nickname"] == "张 三丰 (老张)"


# --- item 5: the sandbox, switched off, is not there ----------------------------------------------


SANDBOX_PATHS = ["/api/v1/auth/sandbox", "/api/v1/payments/sandbox/{out_trade_no}/succeed"]


def test_with_the_sandbox_off_its_operations_are_absent_and_404_whatever_the_method_or_body(client, world, settings):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert all(path in paths for path in SANDBOX_PATHS)
    settings.AUCTION_SANDBOX = False
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert not any(path in paths for path in SANDBOX_PATHS)
    assert "/api/v1/auth/wechat" in paths
    before = database_rows()
    for path in SANDBOX_PATHS:
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            for body in (b"", b"not json", b'{"openid": "x"}', b'{"openid": 5}'):
                assert_error(send(world, method, path, body=body), 404, "not_found")
    assert database_rows() == before


# --- item 5: 405 says what the path takes ----------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/api/v1/auth/sandbox", {"POST"}),
    ("DELETE", "/api/v1/specials", {"GET"}),
    ("PATCH", "/api/v1/lots/1/bids", {"GET", "POST"}),
    ("POST", "/api/v1/lots/1/auto-bid", {"PUT", "DELETE"}),
])
def test_a_405_carries_allow(client, method, path, allowed):
    response = client.generic(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert {part.strip() for part in response["Allow"].split(",")} == allowed


# --- item 5: notifications with WeChat Pay unconfigured ------------------------------------------------

NOTIFY_PATHS = ["/api/v1/payments/wechat/notify", "/api/v1/payments/wechat/refund-notify"]
SIGNED_LOOKING = {
    "Wechatpay-Timestamp": "1700000000", "Wechatpay-Nonce": "n0nce", "Wechatpay-Signature": "c2ln", "Wechatpay-Serial": "ABC123",
}


@pytest.mark.parametrize("path", NOTIFY_PATHS)
def test_an_unsigned_notification_is_401_whether_or_not_wechat_pay_is_configured(client, settings, path):
    settings.WECHATPAY_MCHID = ""
    for gateway in ("sandbox", "wechat"):
        settings.AUCTION_PAYMENT_GATEWAY = gateway
        wechat_fail(client.post(path, b"{}", content_type="application/json"), 401)
        wechat_fail(client.post(path, b"", content_type="text/plain"), 401)


@pytest.mark.parametrize("path", NOTIFY_PATHS)
def test_a_signed_notification_without_wechat_pay_in_use_is_404_and_with_it_misconfigured_503(client, settings, path):
    settings.WECHATPAY_MCHID = ""
    settings.AUCTION_PAYMENT_GATEWAY = "sandbox"
    wechat_fail(client.post(path, b"{}", content_type="application/json", headers=SIGNED_LOOKING), 404)
    # Payments go through WeChat Pay and our keys are missing: WeChat should send it again later.
    settings.AUCTION_PAYMENT_GATEWAY = "wechat"
    wechat_fail(client.post(path, b"{}", content_type="application/json", headers=SIGNED_LOOKING), 503)


@pytest.mark.parametrize("body", ["true", "[]", "100", '"x"', "null"])
def test_a_body_that_is_not_a_json_object_is_422(user_api, body):
    order = won_order(user_api)
    assert_error(raw(user_api, "POST", f"/orders/{order.order_no}/quote", body), 422, "validation_error")
    assert_error(raw(user_api, "POST", "/deposits", body), 422, "validation_error")


def test_every_operation_declares_the_edge_answers_in_the_document(client):
    document = client.get("/api/v1/openapi.json").json()
    for path, methods in document["paths"].items():
        shape = "WechatFailOut" if path.startswith("/api/v1/payments/wechat/") else "ErrorOut"
        for method, operation in methods.items():
            for status in ("400", "413"):
                declared = operation["responses"][status]["content"]["application/json"]["schema"]
                assert declared == {"$ref": f"#/components/schemas/{shape}"}, (method, path, status)
