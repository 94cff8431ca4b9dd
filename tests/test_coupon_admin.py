"""Operators' coupons in the Wagtail admin: yuan in, fen stored, clear refusals,
counts in the listing, and edits that never touch coupons already claimed."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext

from auction.models import Coupon, Event, UserCoupon
from auction.services.coupons import coupon_claim, coupon_save
from tests.conftest import assert_error, prefer_english
from tests.factories import CouponFactory, SpecialFactory, UserFactory
from tests.market import bidder, pay, won_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(client, django_user_model):
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345")
    client.force_login(admin)
    return client


@pytest.fixture
def ops_in_english(ops, django_user_model):
    """The refusals are checked in English, as an operator who picks it reads them (tests/test_translations.py: Chinese)."""
    prefer_english(django_user_model.objects.get(username="ops"))
    return ops


def _local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def coupon_form(**fields) -> dict:
    now = timezone.now()
    data = {
        "title": "新人券",
        "amount": "150.50",
        "min_amount": "1000",
        "special": "",
        "total": "100",
        "per_user_limit": "1",
        "claim_starts_at": _local(now - timedelta(hours=1)),
        "claim_ends_at": _local(now + timedelta(days=7)),
        "valid_from": "",
        "valid_until": "",
        "valid_days": "7",
        "enabled": "on",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def claim_some(coupon: Coupon, count: int) -> list[UserCoupon]:
    return [coupon_claim(coupon_id=coupon.pk, user=UserFactory()) for _ in range(count)]


def errors_of(response) -> dict:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    return {name: [str(e) for e in errors] for name, errors in response.context["form"].errors.items()}


# --- create and validate -------------------------------------------------------------


def test_ops_create_a_coupon_typing_yuan_and_fen_is_stored(ops):
    special = SpecialFactory(title="墨韵专场")
    response = ops.post(reverse("market_coupons:add"), coupon_form(special=str(special.pk)))
    assert response.status_code == 302, errors_of(response)
    coupon = Coupon.objects.get()
    assert (coupon.amount, coupon.min_amount, coupon.special, coupon.issued, coupon.valid_days) == (15_050, 100_000, special, 0, 7)
    assert Event.objects.filter(kind="coupon.created", coupon=coupon, actor="ops", data__staff="ops").count() == 1
    assert [item["id"] for item in bidder(Client()).get("/coupons").json()["items"]] == [coupon.pk]


def test_fixed_dates_are_accepted_instead_of_days(ops):
    now = timezone.now()
    fields = {"valid_days": "", "valid_from": _local(now), "valid_until": _local(now + timedelta(days=30))}
    assert ops.post(reverse("market_coupons:add"), coupon_form(**fields)).status_code == 302
    assert Coupon.objects.get().valid_days is None


NOW = timezone.now()


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"amount": "0"}, "amount", "The amount off must be more than ¥0."),
        ({"amount": "-5"}, "amount", ""),  # Django's own messages, in the admin's language
        ({"amount": "1.005"}, "amount", ""),
        ({"claim_ends_at": _local(NOW - timedelta(hours=2))}, "claim_ends_at", "The claim window must end after it starts."),
        ({"valid_days": ""}, "valid_days", "Set the validity: fixed dates (from and until), or a number of days after claiming."),
        ({"valid_from": _local(NOW), "valid_until": _local(NOW + timedelta(days=3))}, "valid_days", "Set the validity one way only"),
        ({"valid_days": "", "valid_from": _local(NOW)}, "valid_until", "Fixed validity needs both dates: from and until."),
        ({"valid_days": "", "valid_from": _local(NOW + timedelta(days=3)), "valid_until": _local(NOW)}, "valid_until", "Valid until must be after valid from."),
        ({"valid_days": "", "valid_from": _local(NOW - timedelta(days=9)), "valid_until": _local(NOW - timedelta(days=2))}, "valid_until", "would expire before it can be claimed"),
        ({"valid_days": "0"}, "valid_days", "Valid for at least 1 day."),
        ({"total": "0"}, "total", "The total quantity must be at least 1."),
        ({"per_user_limit": "0"}, "per_user_limit", "The per-user limit must be at least 1."),
    ],
)
def test_bad_terms_are_refused_with_a_clear_message(ops_in_english, fields, field, message):
    ops = ops_in_english
    errors = errors_of(ops.post(reverse("market_coupons:add"), coupon_form(**fields)))
    assert any(message in text for text in errors.get(field, [])), errors
    assert not Coupon.objects.exists()


# --- edit -------------------------------------------------------------------------------


def test_the_total_cannot_go_below_what_was_issued(ops_in_english):
    ops = ops_in_english
    coupon = CouponFactory(total=10)
    claim_some(coupon, 4)
    errors = errors_of(ops.post(reverse("market_coupons:edit", args=(coupon.pk,)), coupon_form(total="3")))
    assert errors["total"] == ["4 already issued: the total cannot be less than that."]
    assert ops.post(reverse("market_coupons:edit", args=(coupon.pk,)), coupon_form(total="4")).status_code == 302
    coupon.refresh_from_db()
    assert (coupon.total, coupon.issued) == (4, 4)


def test_claims_landing_while_the_form_is_saved_are_a_form_error_not_a_500(ops_in_english, monkeypatch):
    ops = ops_in_english
    # given: the form validates against 3 issued, then 2 more are claimed before it saves
    coupon = CouponFactory(total=10)
    claim_some(coupon, 3)

    def racing_save(*, coupon, staff=""):
        claim_some(Coupon.objects.get(pk=coupon.pk), 2)
        return coupon_save(coupon=coupon, staff=staff)

    monkeypatch.setattr("cms.coupons_admin.coupon_save", racing_save)
    # when
    errors = errors_of(ops.post(reverse("market_coupons:edit", args=(coupon.pk,)), coupon_form(total="4")))
    # then
    assert errors["total"] == ["5 already issued: the total cannot be less than that."]
    coupon.refresh_from_db()
    # (The stand-in claims ran inside the view's transaction and rolled back with it.)
    assert coupon.total == 10 and coupon.issued == UserCoupon.objects.filter(coupon=coupon).count()


def test_saving_a_stale_coupon_never_writes_back_its_issued_count():
    coupon = CouponFactory(total=10)
    stale = Coupon.objects.get(pk=coupon.pk)
    claim_some(coupon, 3)
    stale.title = "改名"
    coupon_save(coupon=stale, staff="ops")
    coupon.refresh_from_db()
    assert (coupon.title, coupon.issued) == ("改名", 3)


def test_editing_a_coupon_never_changes_coupons_already_claimed(ops):
    # given: a user holds a ¥100 coupon limited to nothing
    me = bidder(Client())
    coupon = CouponFactory(amount=10_000, title="旧标题")
    held = me.post(f"/coupons/{coupon.pk}/claim").json()
    order = won_order(me, price=100_000)
    before = UserCoupon.objects.get(pk=held["id"])
    # when ops halve it, add a minimum above the order and shorten its validity
    form = coupon_form(title="新标题", amount="50", min_amount="5000", valid_days="1")
    assert ops.post(reverse("market_coupons:edit", args=(coupon.pk,)), form).status_code == 302
    # then the claimed coupon keeps its terms, and still pays ¥100 off
    row = UserCoupon.objects.get(pk=held["id"])
    assert (row.title, row.amount, row.min_amount, row.valid_until) == ("旧标题", 10_000, 0, before.valid_until)
    assert row.valid_until - row.valid_from == timedelta(days=7)
    [mine] = me.get("/me/coupons").json()["items"]
    assert (mine["coupon"]["title"], mine["coupon"]["amount"], mine["coupon"]["min_amount"]) == ("旧标题", 10_000, 0)
    assert pay(me, order, held["id"]).json()["order"]["coupon_discount"] == 10_000
    # and new claims get the new terms
    other = bidder(Client())
    coupon.refresh_from_db()
    coupon.per_user_limit = 2
    coupon_save(coupon=coupon)
    new = other.post(f"/coupons/{coupon.pk}/claim").json()
    assert (new["coupon"]["title"], new["coupon"]["amount"]) == ("新标题", 5_000)


def test_disabling_stops_claims_and_leaves_claimed_coupons_usable(ops):
    me = bidder(Client())
    coupon = CouponFactory()
    held = me.post(f"/coupons/{coupon.pk}/claim").json()
    order = won_order(me)
    assert ops.post(reverse("market_coupons:edit", args=(coupon.pk,)), coupon_form(enabled=None)).status_code == 302
    assert Coupon.objects.get(pk=coupon.pk).enabled is False
    assert_error(bidder(Client()).post(f"/coupons/{coupon.pk}/claim"), 409, "coupon_not_claimable")
    assert bidder(Client()).get("/coupons").json()["count"] == 0
    assert me.post(f"/orders/{order.order_no}/quote", {"user_coupon_id": held["id"]}).json()["coupon_discount"] == 10_000


def test_coupons_cannot_be_deleted(ops):
    coupon = CouponFactory()
    for view in ("delete", "copy", "history"):
        with pytest.raises(NoReverseMatch):
            reverse(f"market_coupons:{view}", args=(coupon.pk,))
    assert ops.get(f"/admin/market/coupons/delete/{coupon.pk}/").status_code == 404
    edit = ops.get(reverse("market_coupons:edit", args=(coupon.pk,)))
    assert edit.status_code == 200 and "/delete/" not in edit.content.decode()


# --- listings ----------------------------------------------------------------------------


def test_the_listing_shows_claimed_used_and_remaining_and_filters(ops):
    special = SpecialFactory(title="墨韵专场")
    hot = CouponFactory(title="热门券", total=10, special=special)
    CouponFactory(title="停用券", enabled=False)
    me = bidder(Client())
    held = me.post(f"/coupons/{hot.pk}/claim").json()
    order = won_order(me, special=special)
    claim_some(hot, 2)
    paid = pay(me, order, held["id"]).json()
    me.post(f"/payments/sandbox/{paid['payment']['out_trade_no']}/succeed")

    response = ops.get(reverse("market_coupons:index"))

    assert response.status_code == 200
    row = next(coupon for coupon in response.context["object_list"] if coupon.pk == hot.pk)
    assert (row.issued, row.used_count, row.remaining) == (3, 1, 7)
    html = response.content.decode()
    assert "热门券" in html and "¥100" in html and gettext("Claimed") in html and gettext("Remaining") in html
    titles = lambda params: {c.title for c in ops.get(reverse("market_coupons:index"), params).context["object_list"]}  # noqa: E731
    assert titles({"enabled": "true"}) == {"热门券"}
    assert titles({"enabled": "false"}) == {"停用券"}
    assert titles({"special": special.pk}) == {"热门券"}


def test_claimed_coupons_are_listed_read_only_with_expiry_shown_consistently(ops):
    coupon = CouponFactory(title="到期券")
    lapsed, fresh = claim_some(coupon, 2)
    UserCoupon.objects.filter(pk=lapsed.pk).update(valid_until=timezone.now() - timedelta(minutes=1))

    def listed(params) -> set[int]:
        return {row.pk for row in ops.get(reverse("market_user_coupons:index"), params).context["object_list"]}

    assert listed({"status": "expired"}) == {lapsed.pk}
    assert listed({"status": "unused"}) == {fresh.pk}
    assert listed({"coupon": coupon.pk}) == {lapsed.pk, fresh.pk}
    html = ops.get(reverse("market_user_coupons:inspect", args=(lapsed.pk,))).content.decode()
    assert "已过期" in html and "coupon.claimed" in html
    with pytest.raises(NoReverseMatch):
        reverse("market_user_coupons:edit", args=(lapsed.pk,))


def test_the_market_menu_has_coupons_and_offers_no_delete_permission(ops):
    from wagtail import hooks

    home = ops.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse("market_coupons:index") in home and reverse("market_user_coupons:index") in home
    offered = {
        permission.codename
        for hook in hooks.get_hooks("register_permissions")
        for permission in hook()
        if permission.content_type.app_label == "auction"
    }
    assert {"add_coupon", "change_coupon", "view_coupon", "view_usercoupon"} <= offered
    assert not offered & {"delete_coupon", "add_usercoupon", "change_usercoupon", "delete_usercoupon"}
    inspect = ops.get(reverse("market_coupons:inspect", args=(CouponFactory().pk,)))
    assert inspect.status_code == 200
