"""`make run`'s commands: the demo catalog and the admin login."""

import stat
from io import StringIO

import pytest
from django.core.management import call_command
from wagtail.images import get_image_model

from auction.models import Coupon, Lot, Special, User, UserCoupon
from cms.models import LotPage, SpecialPage
from tests.conftest import ApiClient, assert_error
from tests.market import ADDRESS, bid, hammer, pay_deposit, sweep

# English wording checked here, as someone who picks English reads it (tests/test_translations.py: Chinese).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("english")]


def run(command: str) -> str:
    out = StringIO()
    call_command(command, stdout=out)
    return out.getvalue()


def row_counts() -> tuple[int, ...]:
    models = (SpecialPage, LotPage, Special, Lot, User, get_image_model(), Coupon, UserCoupon)
    return tuple(model.objects.count() for model in models)


def assert_image(picture: dict) -> None:
    assert set(picture) == {"url", "width", "height"}, picture
    assert picture["url"].startswith("http://testserver/media/")
    assert picture["width"] > 0 and picture["height"] > 0


# --- demo ---------------------------------------------------------------------


def test_demo_seeds_a_special_in_each_phase_with_lots_and_images(api):
    # when
    output = run("demo")
    # then
    body = api.get("/specials").json()
    assert body["count"] == 3
    assert [special["status"] for special in body["items"]] == ["preview", "bidding", "ended"]
    for special in body["items"]:
        assert f"special {special['id']}" in output
        assert_image(special["cover"])
        assert 3 <= special["lot_count"] <= 5
        detail = api.get(f"/specials/{special['id']}").json()
        assert len(detail["lots"]) == special["lot_count"]
        assert detail["description"].startswith("<p>")
        for summary in detail["lots"]:
            assert_image(summary["cover"])
            lot = api.get(f"/lots/{summary['id']}").json()
            assert 1 <= len(lot["images"]) <= 3
            for picture in lot["images"]:
                assert_image(picture)
            assert lot["start_price"] > 0 and lot["bid_count"] == (1 if lot["status"] == "defaulted" else 0)  # the demo's one default


def test_the_bidding_special_ends_soon_with_staggered_lots_and_a_special_deposit(api):
    run("demo")
    bidding = api.get("/specials", {"status": "bidding"}).json()["items"]
    assert len(bidding) == 1
    special = Special.objects.get(pk=bidding[0]["id"])
    assert (special.deposit, special.extension_seconds, special.stagger_seconds) == (200_000, 300, 60)
    lots = list(special.lots.order_by("position"))
    assert [lot.ends_at for lot in lots] == [special.lot_ends_at(index) for index in range(len(lots))]
    assert any(lot.increment for lot in Lot.objects.all()), "one lot shows a fixed increment"
    assert not Lot.objects.filter(bid_count__gt=0).exclude(status="defaulted").exists()  # but the one default


def test_demo_seeds_nothing_the_second_time():
    # given
    run("demo")
    counts = row_counts()
    # when
    output = run("demo")
    # then
    assert output.strip() == "demo: catalog not empty, nothing seeded"
    assert row_counts() == counts


def test_a_demo_bidder_can_log_in_through_the_sandbox(api):
    run("demo")
    response = api.post("/auth/sandbox", {"openid": "demo-alice"})
    assert response.status_code == 200, response.content
    assert response.json()["user"]["nickname"] == User.objects.get(openid="demo-alice").nickname
    assert User.objects.filter(openid__startswith="demo-").count() == 3


def sandbox_login(client, openid: str) -> ApiClient:
    response = client.post("/api/v1/auth/sandbox", {"openid": openid}, content_type="application/json")
    assert response.status_code == 200, response.content
    return ApiClient(client, token=response.json()["token"])


def test_the_demo_coupon_centre_has_a_special_only_and_a_nearly_sold_out_coupon(client, api):
    run("demo")
    coupons = api.get("/coupons").json()["items"]
    bidding = api.get("/specials", {"status": "bidding"}).json()["items"][0]
    assert len(coupons) == 3
    [special_only] = [coupon for coupon in coupons if coupon["special_id"] is not None]
    assert special_only["special_id"] == bidding["id"]
    [nearly_gone] = [coupon for coupon in coupons if coupon["remaining"] == 1]
    assert UserCoupon.objects.filter(coupon_id=nearly_gone["id"]).count() == Coupon.objects.get(pk=nearly_gone["id"]).issued == 2
    # the last one goes to Alice, and the next newcomer finds it sold out
    alice = sandbox_login(client, "demo-alice")
    assert alice.post(f"/coupons/{nearly_gone['id']}/claim").status_code == 201
    assert_error(sandbox_login(client, "demo-newcomer").post(f"/coupons/{nearly_gone['id']}/claim"), 409, "coupon_sold_out")


def test_a_demo_bidder_claims_a_coupon_wins_a_lot_and_pays_with_it(client, api):
    # given: the demo, and Alice in the coupon centre
    run("demo")
    alice = sandbox_login(client, "demo-alice")
    bidding = api.get("/specials", {"status": "bidding"}).json()["items"][0]
    [special_only] = [coupon for coupon in alice.get("/coupons").json()["items"] if coupon["special_id"] == bidding["id"]]
    claimed = alice.post(f"/coupons/{special_only['id']}/claim")
    assert claimed.status_code == 201, claimed.content
    mine = claimed.json()["id"]
    assert [item["id"] for item in alice.get("/me/coupons", {"status": "unused"}).json()["items"]] == [mine]
    # when she wins the special's first lot
    lot = Lot.objects.filter(special_id=bidding["id"]).order_by("position").first()
    pay_deposit(alice, lot_id=lot.pk)
    assert bid(alice, lot.pk, alice.get(f"/lots/{lot.pk}").json()["next_min_bid"]).status_code == 201
    hammer(lot)
    sweep()
    order = alice.get("/orders").json()["items"][0]
    # then the coupon comes off what is left after her deposit, and paying with it uses it
    quote = alice.post(f"/orders/{order['order_no']}/quote", {"user_coupon_id": mine}).json()
    assert quote["coupon_discount"] == special_only["amount"] == 30_000
    assert order["premium"] == (order["price"] + 5) // 10  # the special's 10 % buyer's premium
    assert quote["amount_due"] == order["price"] + order["premium"] - order["deposit_credit"] - 30_000
    paying = alice.post(f"/orders/{order['order_no']}/pay", {"address": ADDRESS, "user_coupon_id": mine}).json()
    assert paying["payment"]["amount"] == quote["amount_due"]
    assert alice.post(f"/payments/sandbox/{paying['payment']['out_trade_no']}/succeed").status_code == 200
    assert alice.get(f"/orders/{order['order_no']}").json()["status"] == "paid"
    assert [item["id"] for item in alice.get("/me/coupons", {"status": "used"}).json()["items"]] == [mine]


def test_the_demo_shows_a_premium_a_buy_now_price_and_a_defaulted_lot_ops_re_auction_in_a_few_clicks(client, api):
    output = run("demo")
    bidding = api.get("/specials", {"status": "bidding"}).json()["items"][0]
    lots = [api.get(f"/lots/{lot['id']}").json() for lot in api.get(f"/specials/{bidding['id']}").json()["lots"]]
    assert {lot["buyer_premium_rate"] for lot in lots} == {1000}
    assert [lot["buy_now_price"] for lot in lots if lot["buy_now_price"]] == [2_000_000]
    [defaulted] = Lot.objects.filter(status="defaulted")
    assert f"defaulted lot {defaulted.pk}" in output

    admin = User.objects.create_superuser("ops", "ops@example.com", "pw-ops-123")
    client.force_login(admin)
    listing = client.get("/admin/house-rules/relist/")
    assert f'data-relist="{defaulted.pk}"'.encode() in listing.content
    form = client.get(f"/admin/house-rules/relist/{defaulted.pk}/")
    [preview] = form.context["form"].fields["special"].queryset  # the one special not yet bidding
    initial = form.context["form"].initial
    done = client.post(f"/admin/house-rules/relist/{defaulted.pk}/", {
        "special": preview.pk, "start_price": initial["start_price"] / 100, "reserve_price": initial["reserve_price"] / 100,
    })
    assert done.status_code == 302, done.content[:2000]
    new = Lot.objects.get(relisted_from=defaulted)
    assert new.special.page_id == preview.pk and new.title == defaulted.title
    assert api.get(f"/lots/{new.pk}").json()["relisted_from"] == defaulted.pk


# --- ensure_admin -------------------------------------------------------------


@pytest.fixture
def var_dir(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("AUCTION_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("AUCTION_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path / "var"
    return settings.VAR_DIR


def printed_password(output: str) -> str:
    line = output.strip()
    assert line.startswith("Wagtail admin: http://127.0.0.1:8000/admin/ user admin password "), line
    return line.rsplit(" ", 1)[1]


def _admin_login(client, username: str, password: str) -> bool:
    # Through the admin's own form: the lockout (django-axes) sees the request, as in real use.
    return client.post("/admin/login/", {"username": username, "password": password}).status_code == 302


def test_ensure_admin_creates_a_superuser_who_can_log_into_the_admin(client, var_dir):
    # when
    password = printed_password(run("ensure_admin"))
    # then
    user = User.objects.get(username="admin")
    assert user.is_superuser and user.is_staff
    credentials = var_dir / "admin-credentials.txt"
    assert credentials.read_text().split() == ["admin", password]
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert _admin_login(client, "admin", password)
    assert client.get("/admin/").status_code == 200


def test_ensure_admin_run_twice_keeps_the_password_and_tells_it_again(client, var_dir):
    first = printed_password(run("ensure_admin"))
    second = printed_password(run("ensure_admin"))
    assert second == first
    assert User.objects.filter(is_superuser=True).count() == 1
    assert _admin_login(client, "admin", first)


def test_ensure_admin_takes_the_password_from_the_environment(client, var_dir, monkeypatch):
    # given: an admin made earlier with a generated password
    generated = printed_password(run("ensure_admin"))
    monkeypatch.setenv("AUCTION_ADMIN_PASSWORD", "a-long-chosen-password")
    # when
    output = run("ensure_admin")
    # then
    assert output.strip().endswith("password (password from AUCTION_ADMIN_PASSWORD)")
    assert _admin_login(client, "admin", "a-long-chosen-password")
    assert not _admin_login(client, "admin", generated)
    # and the file's stale password is not shown once the variable is gone
    monkeypatch.delenv("AUCTION_ADMIN_PASSWORD")
    assert generated not in run("ensure_admin")


def test_ensure_admin_creates_the_named_user_with_the_environment_password(client, var_dir, monkeypatch):
    monkeypatch.setenv("AUCTION_ADMIN_USERNAME", "ops")
    monkeypatch.setenv("AUCTION_ADMIN_PASSWORD", "another-chosen-password")
    output = run("ensure_admin")
    assert "user ops password (password from AUCTION_ADMIN_PASSWORD)" in output
    assert not (var_dir / "admin-credentials.txt").exists()
    assert _admin_login(client, "ops", "another-chosen-password")
    assert client.get("/admin/").status_code == 200
