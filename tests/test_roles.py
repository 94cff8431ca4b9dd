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
