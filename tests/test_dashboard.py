"""The ops dashboard: figures equal to the database, drawn as charts, each linked to its list,
read in a constant number of queries however many rows there are."""

from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from auction.dashboard import dashboard
from auction.models import Bid, Deposit, Lot, Order, Refund
from tests.factories import LotFactory, SpecialFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345"))
    return client


def market_of(size: int) -> dict:
    """``size`` orders (a third paid today, a third pending, a third overdue), a held and a
    forfeited deposit per order, ``size`` bids in the last hour; written in bulk."""
    now = timezone.now()
    special = SpecialFactory()
    first = Lot.objects.count()
    buyer = UserFactory()
    lots = Lot.objects.bulk_create(
        Lot(special=special, title=f"拍品 {i}", start_price=100_000, deposit=10_000, ends_at=now - timedelta(minutes=5), status="sold")
        for i in range(size)
    )
    statuses = ("paid", "pending_payment", "overdue")
    orders = Order.objects.bulk_create(
        Order(
            order_no=f"20261201{first + i:016d}", lot=lot, user=buyer, status=statuses[i % 3], price=100_000 + i, premium=10_000 + i,
            deposit_credit=10_000, pay_deadline=now + timedelta(hours=1) if i % 3 == 1 else now - timedelta(minutes=1),
            paid_at=now - timedelta(minutes=1) if i % 3 == 0 else None,
            fulfilment_status="awaiting_shipment" if i % 3 == 0 else "",
        )
        for i, lot in enumerate(lots)
    )
    Deposit.objects.bulk_create(
        Deposit(user=buyer, scope="lot", special=special, lot=lot, amount=10_000, status="held" if i % 2 else "forfeited")
        for i, lot in enumerate(lots)
    )
    Bid.objects.bulk_create(Bid(lot=lots[i % size], user=buyer, price=100_000 + i) for i in range(size))
    return {"orders": orders, "lots": lots}


def test_the_figures_are_those_of_the_database():
    market_of(30)
    board = dashboard()
    paid = Order.objects.filter(status="paid")
    assert board.gmv["today"].count == paid.count() == 10
    assert board.gmv["30d"].amount == sum(order.price + order.premium for order in paid)
    pending = Order.objects.filter(status="pending_payment")
    assert board.awaiting_payment.count == 10
    assert board.awaiting_payment.amount == sum(order.amount_due for order in pending)
    assert board.overdue["7d"].count == 10
    assert board.deposits_held.count == Deposit.objects.filter(status="held").count() == 15
    assert board.forfeited["today"].amount == 15 * 10_000
    assert board.bids["today"] == 30 and sum(count for _, count in board.bids_per_hour) == 30
    assert board.awaiting_shipment == 10
    assert board.refunds_failed.count == Refund.objects.filter(status="failed").count() == 0
    assert board.notifications_failed == 0


def test_the_dashboard_costs_the_same_queries_at_ten_or_thousands_of_orders(ops):
    market_of(10)
    with CaptureQueriesContext(connection) as few:
        dashboard()
    assert len(few) == 7
    market_of(3_000)
    with CaptureQueriesContext(connection) as many:
        board = dashboard()
    assert len(many) == len(few)
    assert board.gmv["today"].count == 4 + 1_000
    # And the page as a whole: the same number of queries either way.
    with CaptureQueriesContext(connection) as page:
        assert ops.get(reverse("market_overview")).status_code == 200
    Order.objects.all().delete()
    with CaptureQueriesContext(connection) as empty_page:
        assert ops.get(reverse("market_overview")).status_code == 200
    assert len(page) == len(empty_page)


def test_the_overview_draws_charts_and_links_each_figure_to_its_list(ops):
    market_of(9)
    html = ops.get(reverse("market_overview")).content.decode()
    assert html.count("<svg") >= 2 and 'data-chart="bids_per_hour"' in html and 'class="chart-bar"' in html
    assert "cdn" not in html.lower().replace("cdnjs", "cdn")  # nothing drawn from the internet
    assert "<script src=\"http" not in html
    # every figure is a link; following one shows the rows it counts
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self):
            super().__init__()
            self.figures = {}

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "a" and "data-figure" in attrs:
                self.figures[attrs["data-figure"]] = attrs["href"]

    links = Links()
    links.feed(html)
    assert len(links.figures) == 6 * 3 + 7
    gmv_today = links.figures["0-today"]
    assert parse_qs(urlparse(gmv_today).query)["status"] == ["paid"]
    listing = ops.get(gmv_today).content.decode()
    paid_orders = Order.objects.filter(status="paid")
    assert all(order.order_no in listing for order in paid_orders)
    assert not any(order.order_no in listing for order in Order.objects.exclude(status="paid"))
    awaiting = ops.get(links.figures["awaiting_payment"]).content.decode()
    assert all(order.order_no in awaiting for order in Order.objects.filter(status="pending_payment"))
    for url in links.figures.values():
        assert ops.get(url).status_code == 200, url


def test_the_home_page_shows_the_dashboard_panel_to_ops(ops):
    LotFactory()
    html = ops.get(reverse("wagtailadmin_home")).content.decode()
    assert "data-dashboard-panel" in html and 'data-chart="gmv_per_day"' in html


def test_failed_tasks_and_a_stalled_cluster_raise_a_warning(ops):
    from django_q.models import Schedule, Task

    from jobs.schedules import sweep_every_minute

    sweep = sweep_every_minute()
    Schedule.objects.filter(pk=sweep.pk).update(next_run=timezone.now() - timedelta(minutes=5))
    Task.objects.create(id="t1", name="t1", func="jobs.tasks.sweep", started=timezone.now(), stopped=timezone.now(), success=False, result="boom")
    html = ops.get(reverse("market_overview")).content.decode()
    assert "data-job-warnings" in html
    Schedule.objects.filter(pk=sweep.pk).update(next_run=timezone.now() + timedelta(seconds=30))
    Task.objects.all().delete()
    assert "data-job-warnings" not in ops.get(reverse("market_overview")).content.decode()
