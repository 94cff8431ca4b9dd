"""Each back-office role sees and does exactly its part (cms.roles), and nothing else."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from auction.models import Order, Refund
from tests.factories import CouponFactory
from tests.market import bidder, pay, won_order
from tests.pages import lot_page, special_page

pytestmark = pytest.mark.django_db

MARKET = ("market_orders", "market_deposits", "market_payments", "market_refunds", "market_events", "market_bids", "market_coupons", "market_user_coupons")


def member_of(role: str, django_user_model) -> Client:
    user = django_user_model.objects.create_user(f"staff-{role}", password="pw-role-12345")
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def menu_labels(client: Client) -> list[str]:
    """The sidebar's labels, as Wagtail packs them into the page for its JavaScript."""
    from tests.test_translations import ReadTexts

    page = ReadTexts()
    page.feed(client.get(reverse("wagtailadmin_home")).content.decode())
    return [item["label"] for item in page.menu]


def opens(client: Client, url: str) -> bool:
    """Wagtail answers a refusal by sending the user home (302) or with 403."""
    return client.get(url).status_code == 200


@pytest.fixture
def paid_order():
    buyer = bidder(Client())
    order = won_order(buyer)
    out_trade_no = pay(buyer, order).json()["payment"]["out_trade_no"]
    assert buyer.post(f"/payments/sandbox/{out_trade_no}/succeed").status_code == 200
    return Order.objects.get(pk=order.pk)


def test_the_roles_exist_after_migrating():
    assert set(Group.objects.filter(name__in=("编辑", "运营", "财务")).values_list("name", flat=True)) == {"编辑", "运营", "财务"}


def test_an_editor_edits_pages_and_images_and_sees_no_market(django_user_model):
    editor = member_of("编辑", django_user_model)
    page = lot_page(special_page())
    assert opens(editor, reverse("wagtailadmin_home"))
    assert opens(editor, reverse("wagtailadmin_pages:edit", args=(page.pk,)))
    assert opens(editor, reverse("wagtailimages:index"))
    assert not opens(editor, reverse("market_overview"))
    for screen in MARKET:
        assert not opens(editor, reverse(f"{screen}:index")), screen
    assert "data-dashboard-panel" not in editor.get(reverse("wagtailadmin_home")).content.decode()
    assert not opens(editor, reverse("wagtailusers_users:index"))


def test_an_operator_runs_coupons_orders_and_fulfilment_but_not_money(django_user_model, paid_order):
    operator = member_of("运营", django_user_model)
    for screen in ("market_orders", "market_coupons", "market_user_coupons", "market_deposits", "market_bids", "market_events"):
        assert opens(operator, reverse(f"{screen}:index")), screen
    assert opens(operator, reverse("market_overview"))
    assert opens(operator, reverse("market_coupons:add"))
    response = operator.post(reverse("market_orders:ship", args=(paid_order.pk,)), {"carrier": "顺丰", "tracking_no": "SF1"})
    assert response.status_code == 302 and Order.objects.get(pk=paid_order.pk).fulfilment_status == "shipped"
    for screen in ("market_payments", "market_refunds"):
        assert not opens(operator, reverse(f"{screen}:index")), screen
    refund = Refund.objects.first()
    if refund is not None:
        assert operator.post(reverse("market_refunds:query", args=(refund.pk,))).status_code in (302, 403)
        assert Refund.objects.get(pk=refund.pk).status == refund.status
    assert not opens(operator, reverse("wagtailadmin_pages:edit", args=(lot_page(special_page()).pk,)))


def test_finance_sees_money_and_exports_but_cannot_ship_or_edit_coupons(django_user_model, paid_order):
    finance = member_of("财务", django_user_model)
    for screen in ("market_payments", "market_refunds", "market_orders", "market_deposits", "market_user_coupons", "market_events"):
        assert opens(finance, reverse(f"{screen}:index")), screen
    assert finance.get(reverse("market_orders:index"), {"export": "xlsx"}).status_code == 200
    assert finance.post(reverse("market_orders:ship", args=(paid_order.pk,)), {"carrier": "顺丰", "tracking_no": "SF1"}).status_code in (302, 403)
    assert Order.objects.get(pk=paid_order.pk).fulfilment_status == "awaiting_shipment"
    assert not opens(finance, reverse("market_coupons:add"))
    coupon = CouponFactory()
    assert not opens(finance, reverse("market_coupons:edit", args=(coupon.pk,)))
    assert not opens(finance, reverse("wagtailimages:index"))


@pytest.fixture
def barred_bidder(django_user_model):
    from django.utils import timezone

    return django_user_model.objects.create_user("wx:barred", openid="openid-barred", nickname="戊己", barred_at=timezone.now())


def test_an_operator_lifts_a_bar_after_confirming_and_it_is_in_the_events(django_user_model, barred_bidder):
    from auction.models import Event

    operator = member_of("运营", django_user_model)
    assert opens(operator, reverse("house_rules_barred"))
    assert opens(operator, reverse("house_rules_relist_index"))
    assert "禁拍竞买人" in menu_labels(operator)
    lift = reverse("house_rules_bar_lift", args=(barred_bidder.pk,))
    assert opens(operator, lift)
    assert operator.post(lift, {"reason": "已线下付款", "confirm": "on"}).status_code == 302
    barred_bidder.refresh_from_db()
    assert barred_bidder.barred_at is None
    assert Event.objects.get(kind="user.bar_lifted", user=barred_bidder).data == {"reason": "已线下付款", "staff": "staff-运营"}


@pytest.mark.parametrize("role", ["编辑", "财务"])
def test_editors_and_finance_cannot_lift_a_bar_or_relist(role, django_user_model, barred_bidder):
    staff = member_of(role, django_user_model)
    lift = reverse("house_rules_bar_lift", args=(barred_bidder.pk,))
    for url in (reverse("house_rules_barred"), lift, reverse("house_rules_relist_index")):
        assert not opens(staff, url), url
    assert staff.post(lift, {"reason": "想解除", "confirm": "on"}).status_code in (302, 403)
    barred_bidder.refresh_from_db()
    assert barred_bidder.barred_at is not None
    assert "禁拍竞买人" not in menu_labels(staff) and "二拍" not in menu_labels(staff)
