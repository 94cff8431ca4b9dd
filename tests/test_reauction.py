"""二拍 and barred defaulters: a defaulted lot re-auctioned, the defaulter refused, another bidder winning and paying."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from auction.models import Event, Lot, Order, User
from auction.services.overdue import order_expire
from auction.services.settlement import lot_settle
from tests.conftest import assert_error
from tests.factories import ImageFactory, LotFactory, UserFactory
from tests.market import bid, bidder, deadline_passes, hammer, pay, pay_deposit
from tests.pages import lot_page, special_page
from tests.test_editor_admin import editor  # noqa: F401  (the fixture)

pytestmark = pytest.mark.django_db


def _defaulted(api, lot_id: int) -> Order:
    """``api``'s user wins the lot and lets the order go overdue."""
    assert bid(api, lot_id, Lot.objects.get(pk=lot_id).next_min_bid()).status_code == 201
    lot = Lot.objects.get(pk=lot_id)
    hammer(lot)
    lot_settle(lot_id=lot.pk)
    order = Order.objects.get(lot=lot)
    deadline_passes(order)
    assert order_expire(order_id=order.pk)
    return order


def _specials():
    now = timezone.now()
    old = special_page(title="春拍", preview_at=now - timedelta(hours=3), starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=1))
    new = special_page(title="秋拍", slug="autumn", preview_at=now - timedelta(hours=1), starts_at=now + timedelta(hours=1),
                       ends_at=now + timedelta(hours=3))
    return old, new


def _relist(editor, lot, special_page, **fields):  # noqa: F811
    data = {"special": special_page.pk, "start_price": "1000", "reserve_price": "1600"}
    data.update(fields)
    return editor.post(reverse("house_rules_relist", args=(lot.pk,)), data)


def test_a_defaulted_lot_is_re_auctioned_the_defaulter_refused_and_another_wins_and_pays(editor, client):  # noqa: F811
    old_special, new_special = _specials()
    image = ImageFactory()
    page = lot_page(old_special, images=[image], start_price=100_000, reserve_price=200_000, deposit=50_000, buy_now_price=0)
    old = Lot.objects.get(page_id=page.pk)
    defaulter, winner = bidder(client, "违约"), bidder(client, "新买家")
    pay_deposit(defaulter, lot_id=old.pk)
    Lot.objects.filter(pk=old.pk).update(current_price=190_000, bid_count=1, leader=UserFactory())  # a rival led below the reserve
    _defaulted(defaulter, old.pk)
    assert Lot.objects.get(pk=old.pk).status == "defaulted"

    listing = editor.get(reverse("house_rules_relist_index"))
    assert f'data-relist="{old.pk}"'.encode() in listing.content
    form = editor.get(reverse("house_rules_relist", args=(old.pk,)))
    assert b'value="1000.00"' in form.content and b'value="2000.00"' in form.content  # pre-filled: the old terms
    response = _relist(editor, old, new_special)

    assert response.status_code == 302, response.content[:3000]
    new = Lot.objects.get(relisted_from=old)
    assert (new.special.page_id, new.title, new.start_price, new.reserve_price, new.deposit) == (
        new_special.pk, old.title, 100_000, 160_000, 50_000)
    assert list(new.images.values_list("image_id", flat=True)) == [image.pk] and new.is_published
    assert Lot.objects.get(pk=old.pk).relisted_as == new
    assert Event.objects.filter(kind="lot.relisted", lot=old, data__new_lot_id=new.pk).exists()
    assert client.get(f"/api/v1/lots/{new.pk}").json()["relisted_from"] == old.pk

    # bidding opens on the new special: the defaulter is barred there, the other bidder is not
    Lot.objects.filter(pk=new.pk).update(ends_at=timezone.now() + timedelta(hours=1))
    new.special.__class__.objects.filter(pk=new.special_id).update(starts_at=timezone.now() - timedelta(minutes=1))
    assert defaulter.get(f"/lots/{new.pk}").json()["my"]["barred"] is True
    assert_error(defaulter.post("/deposits", {"lot_id": new.pk}), 409, "bidder_barred")
    assert_error(bid(defaulter, new.pk, 100_000), 409, "bidder_barred")
    assert winner.get(f"/lots/{new.pk}").json()["my"]["barred"] is False
    pay_deposit(winner, lot_id=new.pk)
    assert bid(winner, new.pk, 170_000).status_code == 201
    hammer(new)
    order = lot_settle(lot_id=new.pk)
    assert order.user_id == winner.user.pk
    payment = pay(winner, order).json()["payment"]
    assert winner.post(f"/payments/sandbox/{payment['out_trade_no']}/succeed").status_code == 200
    assert Order.objects.get(pk=order.pk).status == "paid"


def test_relisting_twice_a_sold_lot_a_bidding_special_or_too_deep_a_step_down_is_refused(editor, client):  # noqa: F811
    old_special, new_special = _specials()
    old = Lot.objects.get(page_id=lot_page(old_special, start_price=100_000, reserve_price=200_000).pk)
    Lot.objects.filter(pk=old.pk).update(status="unsold")

    too_deep = _relist(editor, old, new_special, reserve_price="1599.99")
    assert too_deep.status_code == 200 and "最多下调 20%" in " ".join(too_deep.context["form"].errors["reserve_price"])
    bidding = _relist(editor, old, old_special)  # not offered: it is bidding
    assert bidding.status_code == 200 and "special" in bidding.context["form"].errors
    assert _relist(editor, old, new_special).status_code == 302
    again = editor.get(reverse("house_rules_relist", args=(old.pk,)), follow=True)
    assert "已二拍为拍品" in again.content.decode()
    assert Lot.objects.filter(relisted_from=old).count() == 1

    sold = LotFactory(status="sold")
    refused = editor.get(reverse("house_rules_relist", args=(sold.pk,)), follow=True)
    assert "只有流拍或逾期未付的拍品可以二拍" in refused.content.decode()


def test_after_two_defaults_a_user_is_barred_everywhere_until_ops_lift_it_with_a_reason(editor, client, settings):  # noqa: F811
    assert settings.AUCTION_DEFAULTS_BEFORE_BAN == 2
    me = bidder(client)
    _defaulted(me, LotFactory(deposit=0).pk)
    assert User.objects.get(pk=me.user.pk).barred_at is None
    _defaulted(me, LotFactory(deposit=0).pk)
    assert User.objects.get(pk=me.user.pk).barred_at is not None
    assert Event.objects.filter(kind="user.barred", user=me.user).count() == 1

    elsewhere = LotFactory()
    assert_error(me.post("/deposits", {"lot_id": elsewhere.pk}), 409, "bidder_barred")
    assert_error(bid(me, LotFactory(deposit=0).pk, 100_000), 409, "bidder_barred")
    assert_error(me.post(f"/lots/{LotFactory(deposit=0, buy_now_price=500_000).pk}/buy-now"), 409, "bidder_barred")
    assert me.get(f"/lots/{elsewhere.pk}").json()["my"]["barred"] is True

    listing = editor.get(reverse("house_rules_barred"))
    assert f'data-lift="{me.user.pk}"'.encode() in listing.content
    # lifting is a confirmation page first: who, since when, the defaults behind the bar
    lift_url = reverse("house_rules_bar_lift", args=(me.user.pk,))
    confirmation = editor.get(lift_url)
    assert confirmation.status_code == 200 and me.user.openid in confirmation.content.decode()
    assert User.objects.get(pk=me.user.pk).barred_at is not None
    no_reason = editor.post(lift_url, {"reason": "", "confirm": "on"})
    unconfirmed = editor.post(lift_url, {"reason": "paid by bank transfer"})
    assert no_reason.status_code == unconfirmed.status_code == 200 and User.objects.get(pk=me.user.pk).barred_at is not None
    lifted = editor.post(lift_url, {"reason": "paid by bank transfer", "confirm": "on"})
    assert lifted.status_code == 302
    assert User.objects.get(pk=me.user.pk).barred_at is None
    assert Event.objects.get(kind="user.bar_lifted", user=me.user).data == {"reason": "paid by bank transfer", "staff": "editor"}
    assert editor.get(lift_url).status_code == 302  # not barred any more: back to the list
    assert me.post("/deposits", {"lot_id": elsewhere.pk}).status_code == 201
    # the old defaults do not count again: one more default alone does not bar, a second does
    _defaulted(me, LotFactory(deposit=0).pk)
    assert User.objects.get(pk=me.user.pk).barred_at is None
    _defaulted(me, LotFactory(deposit=0).pk)
    assert User.objects.get(pk=me.user.pk).barred_at is not None
