"""Ops in the Wagtail admin: market state on the page editors, read-only ops screens,
"query now" on stuck refunds and payments, and the way to Django-Q2's job pages."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext

from auction.models import Deposit, Event, Lot, Order, Payment, Refund
from tests.factories import LotFactory, UserFactory
from tests.market import bid, bidder, hammer, pay_deposit, sweep
from tests.pages import lot_page, special_page

pytestmark = pytest.mark.django_db

SCREENS = ("market_orders", "market_deposits", "market_payments", "market_refunds", "market_events", "market_bids")


@pytest.fixture
def ops(client, django_user_model):
    admin = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345")
    client.force_login(admin)
    return client


@pytest.fixture
def market_day():
    """A wins a lot over B: A has an order to pay, B's deposit refund is with the gateway."""
    lot = LotFactory(title="宋代青瓷碗", start_price=100_000, deposit=50_000)
    # Bidders get their own client: the ops client carries a staff session.
    a, b = bidder(Client(), "阿甲"), bidder(Client(), "贝乙")
    deposit_a = pay_deposit(a, lot_id=lot.pk)
    deposit_b = pay_deposit(b, lot_id=lot.pk)
    for api, price in ((a, 100_000), (b, 110_000), (a, 120_000)):
        assert bid(api, lot.pk, price).status_code == 201
    hammer(lot)
    sweep()  # one sweep: settled and refund submitted; polling waits for the next ones
    order = Order.objects.get(lot=lot)
    refund = Refund.objects.get(payment__deposit_id=deposit_b["id"])
    assert refund.status == "processing" and order.status == "pending_payment"
    address = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}
    paying = a.post(f"/orders/{order.order_no}/pay", {"address": address})
    assert paying.status_code == 200, paying.content
    return {
        "lot": lot, "a": a, "b": b, "order": order, "refund": refund,
        "deposit_a": Deposit.objects.get(pk=deposit_a["id"]), "deposit_b": Deposit.objects.get(pk=deposit_b["id"]),
        "order_payment": Payment.objects.get(out_trade_no=paying.json()["payment"]["out_trade_no"]),
    }


def _writes_to_market(queries) -> list[str]:
    return [
        query["sql"] for query in queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and '"auction_' in query["sql"]
    ]


# --- the page editors ---------------------------------------------------------


def test_the_lot_editor_shows_the_market_state_and_writes_nothing(ops):
    # given: a published lot that has bids and deposits
    page = lot_page(special_page())
    lot = Lot.objects.get(page_id=page.pk)
    leader, depositor = UserFactory(nickname="张三丰"), UserFactory(nickname="李四")
    Lot.objects.filter(pk=lot.pk).update(current_price=123_456, leader=leader, bid_count=7)
    Deposit.objects.create(user=depositor, scope="lot", special=lot.special, lot=lot, amount=50_000, status="held")
    # when
    with CaptureQueriesContext(connection) as queries:
        response = ops.get(reverse("wagtailadmin_pages:edit", args=(page.pk,)))
    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-market-panel="lot"' in html and "市场状态" in html
    assert "¥1,234.56" in html and "张**" in html and "张三丰" not in html
    assert "李**" in html and "¥500" in html and "保证金冻结中: 1" in html
    assert "预展" in html  # the special's bidding starts in an hour
    assert f"{reverse('market_bids:index')}?lot={lot.pk}" in html
    assert f"{reverse('market_events:index')}?lot={lot.pk}" in html
    assert _writes_to_market(queries.captured_queries) == []


def test_a_lot_never_published_renders_with_no_market_yet(ops):
    special = special_page()
    page = lot_page(special, publish_now=False)
    assert not Lot.objects.filter(page_id=page.pk).exists()

    edit = ops.get(reverse("wagtailadmin_pages:edit", args=(page.pk,)))
    assert edit.status_code == 200 and "尚未发布" in edit.content.decode()

    add = ops.get(reverse("wagtailadmin_pages:add", args=("cms", "lotpage", special.pk)))
    assert add.status_code == 200 and "尚未发布" in add.content.decode()
    assert not Lot.objects.filter(page_id=page.pk).exists()  # looking made no market row


def test_the_special_editor_shows_a_market_summary(ops):
    special = special_page()
    lot_page(special)
    lot_page(special, title="第二件", slug="second")

    response = ops.get(reverse("wagtailadmin_pages:edit", args=(special.pk,)))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-market-panel="special"' in html and "2（已发布 2）" in html and "预展" in html


def test_a_special_never_published_renders(ops):
    special = special_page(publish_now=False)
    response = ops.get(reverse("wagtailadmin_pages:edit", args=(special.pk,)))
    assert response.status_code == 200 and "尚未发布" in response.content.decode()


# --- ops screens ----------------------------------------------------------------


def test_every_ops_listing_shows_a_known_row(ops, market_day):
    order, refund = market_day["order"], market_day["refund"]
    expected = {
        "market_orders": [order.order_no, "宋代青瓷碗", "¥1,200", "¥700"],
        "market_deposits": [str(market_day["deposit_b"].pk), "宋代青瓷碗", "¥500"],
        "market_payments": [market_day["order_payment"].out_trade_no, "¥700"],
        "market_refunds": [refund.out_refund_no, "¥500"],
        "market_events": ["order.created", "refund.submitted"],
        "market_bids": ["宋代青瓷碗", "阿**", "贝**", "¥1,100"],
    }
    for screen, texts in expected.items():
        response = ops.get(reverse(f"{screen}:index"))
        assert response.status_code == 200, screen
        html = response.content.decode()
        for text in texts:
            assert text in html, (screen, text)
    assert "贝乙" not in ops.get(reverse("market_bids:index")).content.decode()


def test_ops_listings_filter_and_search(ops, market_day):
    order_no = market_day["order"].order_no
    assert order_no in ops.get(reverse("market_orders:index"), {"status": "pending_payment"}).content.decode()
    assert order_no not in ops.get(reverse("market_orders:index"), {"status": "paid"}).content.decode()
    assert order_no in ops.get(reverse("market_orders:index"), {"q": order_no[-6:]}).content.decode()

    refund_no = market_day["refund"].out_refund_no
    assert refund_no in ops.get(reverse("market_refunds:index"), {"status": "processing"}).content.decode()
    assert refund_no not in ops.get(reverse("market_refunds:index"), {"status": "succeeded"}).content.decode()

    deposits = ops.get(reverse("market_deposits:index"), {"status": "refunding", "scope": "lot"}).context["object_list"]
    assert [deposit.pk for deposit in deposits] == [market_day["deposit_b"].pk]

    payments = ops.get(reverse("market_payments:index"), {"purpose": "order", "gateway": "sandbox"}).context["object_list"]
    assert [payment.pk for payment in payments] == [market_day["order_payment"].pk]

    events = ops.get(reverse("market_events:index"), {"kind": "refund", "actor": "job"}).context["object_list"]
    assert events and {event.kind.split(".")[0] for event in events} == {"refund"}

    lot = market_day["lot"]
    assert len(ops.get(reverse("market_bids:index"), {"lot": lot.pk}).context["object_list"]) == 3
    assert len(ops.get(reverse("market_bids:index"), {"lot": lot.pk + 1}).context["object_list"]) == 0
    assert len(ops.get(reverse("market_deposits:index"), {"lot": lot.pk}).context["object_list"]) == 2
    assert len(ops.get(reverse("market_bids:index"), {"is_auto": "true"}).context["object_list"]) == 0


@pytest.mark.parametrize(
    ("screen", "row", "kinds"),
    [
        ("market_orders", "order", ["order.created"]),
        ("market_deposits", "deposit_b", ["deposit.held", "deposit.refunding"]),
        ("market_payments", "order_payment", ["payment.created"]),
        ("market_refunds", "refund", ["refund.created", "refund.submitted"]),
    ],
)
def test_inspect_views_show_the_event_history_newest_first(ops, market_day, screen, row, kinds):
    response = ops.get(reverse(f"{screen}:inspect", args=(market_day[row].pk,)))
    assert response.status_code == 200
    html = response.content.decode()
    assert gettext("Event history") in html  # in the admin's language
    positions = [html.index(kind, html.index(gettext("Event history"))) for kind in kinds]
    assert positions == sorted(positions, reverse=True)  # the later event is listed first


def test_inspect_shows_amounts_in_yuan_and_links_related_rows(ops, market_day):
    html = ops.get(reverse("market_orders:inspect", args=(market_day["order"].pk,))).content.decode()
    assert "¥1,200" in html and "¥700" in html and "¥500" in html  # price, amount due, deposit credit
    refund_html = ops.get(reverse("market_refunds:inspect", args=(market_day["refund"].pk,))).content.decode()
    payment = market_day["refund"].payment
    assert reverse("market_payments:inspect", args=(payment.pk,)) in refund_html


def test_ops_screens_have_no_add_edit_or_delete(ops, market_day):
    for screen in SCREENS:
        for view in ("add", "edit", "delete", "copy"):
            with pytest.raises(NoReverseMatch):
                reverse(f"{screen}:{view}", args=() if view == "add" else (1,))
        index = ops.get(reverse(f"{screen}:index")).content.decode()
        assert f"/admin/market/{screen.removeprefix('market_')}/new/" not in index
    assert ops.get("/admin/market/orders/new/").status_code == 404
    assert ops.get(f"/admin/market/orders/edit/{market_day['order'].pk}/").status_code == 404
    assert ops.get(f"/admin/market/refunds/delete/{market_day['refund'].pk}/").status_code == 404


def test_group_permissions_offer_only_view_and_the_changes_actions_make(ops):
    from wagtail import hooks

    offered = {
        permission.codename
        for hook in hooks.get_hooks("register_permissions")
        for permission in hook()
        if permission.content_type.app_label == "auction"
    }
    # "change" is "query now" on payments and refunds, ship / extend / cancel on orders.
    assert {"view_order", "change_order", "view_refund", "change_refund", "change_payment"} <= offered
    assert not offered & {"add_order", "delete_refund", "delete_order", "add_event", "change_event"}
    assert ops.get(reverse("wagtailusers_groups:add")).status_code == 200


def test_the_market_menu_groups_the_screens_and_links_to_jobs(ops):
    home = ops.get(reverse("wagtailadmin_home")).content.decode()
    jobs_url = reverse("admin:app_list", args=("django_q",))
    assert jobs_url == "/django-admin/django_q/"
    assert gettext("Market") in home and jobs_url in home and reverse("market_refunds:index") in home
    for url in (jobs_url, "/django-admin/django_q/schedule/", "/django-admin/django_q/failure/"):
        assert ops.get(url).status_code == 200, url


# --- query now -------------------------------------------------------------------


def test_query_now_finishes_a_processing_refund(ops, market_day):
    refund = market_day["refund"]
    inspect_url = reverse("market_refunds:inspect", args=(refund.pk,))
    assert reverse("market_refunds:query", args=(refund.pk,)) in ops.get(inspect_url).content.decode()
    # when
    response = ops.post(reverse("market_refunds:query", args=(refund.pk,)), follow=True)
    # then: the sandbox reports success, and the deposit is refunded
    assert response.redirect_chain[-1][0] == inspect_url
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert Deposit.objects.get(pk=market_day["deposit_b"].pk).status == "refunded"
    assert "succeeded" in response.content.decode()
    assert Event.objects.filter(kind="ops.query_now", refund=refund, actor="ops", data__staff="ops").exists()
    # and pressing again changes nothing
    again = ops.post(reverse("market_refunds:query", args=(refund.pk,)))
    assert again.status_code == 302
    assert Event.objects.filter(kind="refund.succeeded", refund=refund).count() == 1


def test_query_now_is_post_only_csrf_protected_and_permission_checked(ops, market_day, django_user_model):
    refund = market_day["refund"]
    url = reverse("market_refunds:query", args=(refund.pk,))
    assert ops.get(url).status_code == 405

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(django_user_model.objects.get(username="ops"))
    assert csrf_client.post(url).status_code == 403

    outsider = Client()
    outsider.force_login(UserFactory())
    assert outsider.post(url).status_code == 302  # to the admin login

    viewer = _staff_with(django_user_model, "view_refund")
    viewing = Client()
    viewing.force_login(viewer)
    assert viewing.get(reverse("market_refunds:inspect", args=(refund.pk,))).status_code == 200
    assert url not in viewing.get(reverse("market_refunds:inspect", args=(refund.pk,))).content.decode()
    assert viewing.post(url).status_code == 302  # permission denied: back to the dashboard
    menu = viewing.get(reverse("wagtailadmin_home")).content.decode()
    assert reverse("market_refunds:index") in menu and reverse("market_orders:index") not in menu
    assert viewing.get(reverse("market_orders:index")).status_code == 302

    refund.refresh_from_db()
    assert refund.status == "processing"


def test_a_staff_member_with_change_refund_may_query_now(market_day, django_user_model):
    refund = market_day["refund"]
    client = Client()
    client.force_login(_staff_with(django_user_model, "view_refund", "change_refund"))
    assert client.post(reverse("market_refunds:query", args=(refund.pk,))).status_code == 302
    refund.refresh_from_db()
    assert refund.status == "succeeded"


def test_query_now_closes_an_expired_payment_the_gateway_says_is_unpaid(ops, market_day):
    payment = market_day["order_payment"]
    url = reverse("market_payments:query", args=(payment.pk,))
    # while the window is open the bidder may be paying: refused, nothing changes
    response = ops.post(url, follow=True)
    payment.refresh_from_db()
    assert payment.status == "created" and "买家可能仍在支付" in response.content.decode()
    # once it has passed
    Payment.objects.filter(pk=payment.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert url in ops.get(reverse("market_payments:inspect", args=(payment.pk,))).content.decode()
    response = ops.post(url, follow=True)
    payment.refresh_from_db()
    assert payment.status == "closed" and "未付款，已关闭" in response.content.decode()
    assert Event.objects.filter(kind="payment.closed", payment=payment).count() == 1


def _staff_with(django_user_model, *codenames):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(f"staff-{'-'.join(codenames)}", password="pw-staff-12345", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="wagtailadmin", codename="access_admin"),
        *Permission.objects.filter(content_type__app_label="auction", codename__in=codenames),
    )
    return user


def test_the_lot_market_tab_shows_the_winner_unmasked_to_ops_and_masked_to_editors(ops, django_user_model):
    from auction.models import Special
    from auction.services.settlement import lot_settle
    from cms.market_panels import lot_market
    from tests.market import pay
    from tests.test_roles import member_of

    # given: a lot page won by 张三丰, who gave his phone with the shipping address when paying
    special = special_page()
    page = lot_page(special, deposit=0)
    Special.objects.filter(page_id=special.pk).update(starts_at=timezone.now() - timedelta(minutes=5))
    lot = Lot.objects.get(page_id=page.pk)
    winner = bidder(Client(), "张三丰")
    assert bid(winner, lot.pk, 100_000).status_code == 201
    hammer(lot)
    lot_settle(lot_id=lot.pk)
    assert pay(winner, Order.objects.get(lot=lot)).status_code == 200
    url = reverse("wagtailadmin_pages:edit", args=(page.pk,))
    # then: ops see who won, with openid and phone, on the Market tab
    html = ops.get(url).content.decode()
    assert 'data-winner="unmasked"' in html and "张三丰" in html and winner.user.openid in html and "13800000000" in html
    # and so do 运营 and 财务 (they cannot edit pages; the tab's rule is the panel's)
    unmasked = {"is_masked": False, "nickname": "张三丰", "openid": winner.user.openid, "phone": "13800000000", "user_id": winner.user.pk}
    for role in ("运营", "财务"):
        member_of(role, django_user_model)
        staff = django_user_model.objects.get(username=f"staff-{role}")
        assert lot_market(page_id=page.pk, viewer=staff)["winner"] == unmasked, role
    # and an editor sees the winner masked, as bidders see each other
    html = member_of("编辑", django_user_model).get(url).content.decode()
    assert 'data-winner="masked"' in html and "张**" in html
    assert "张三丰" not in html and winner.user.openid not in html and "13800000000" not in html
