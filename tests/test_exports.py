"""Every Market list exports to CSV and XLSX through Wagtail's list export: its filters,
yuan with two decimals, Asia/Shanghai times, rows streamed."""

import csv
import io
from datetime import datetime
from decimal import Decimal

import openpyxl
import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from auction.models import Order
from auction.services.fulfilment import order_ship
from cms.export_columns import ORDERS
from tests.market import bidder, pay, won_order

pytestmark = pytest.mark.django_db

# The test's English names for the columns it reads.
KEYS = {
    "Order number": "order_no", "Hammer price (yuan)": "price", "Amount due (yuan)": "amount_due", "Status": "status",
    "Fulfilment": "fulfilment_status", "Phone": "phone", "Tracking number": "tracking_no", "Buyer": "buyer", "Paid": "paid_at",
    "Shipped": "shipped_at",
}


class _Headings(dict):
    def __missing__(self, name):
        return heading(KEYS[name])


H = _Headings()

SCREENS = ("market_orders", "market_deposits", "market_payments", "market_refunds", "market_events", "market_bids", "market_user_coupons")


@pytest.fixture
def ops(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345"))
    return client


@pytest.fixture
def orders():
    buyer = bidder(Client(), "阿甲")
    paid = won_order(buyer, price=123_450)
    out_trade_no = pay(buyer, paid).json()["payment"]["out_trade_no"]
    assert buyer.post(f"/payments/sandbox/{out_trade_no}/succeed").status_code == 200
    order_ship(order_id=paid.pk, carrier="顺丰速运", tracking_no="SF1234567890")
    unpaid = won_order(bidder(Client(), "贝乙"), price=100_000)
    return Order.objects.get(pk=paid.pk), unpaid


def heading(key: str) -> str:
    """As the export writes it, in the admin's language (Wagtail's own catalogue already has some)."""
    return next(str(column.heading) for column in ORDERS if column.key == key)


def _csv_rows(response) -> list[dict]:
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))


def test_orders_export_to_csv_with_the_lists_filter_yuan_and_local_times(ops, orders):
    paid, unpaid = orders
    response = ops.get(reverse("market_orders:index"), {"status": "paid", "export": "csv"})
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    rows = _csv_rows(response)
    assert [row[H["Order number"]] for row in rows] == [paid.order_no]
    row = rows[0]
    assert row[H["Hammer price (yuan)"]] == "1234.50" and row[H["Amount due (yuan)"]] == "1234.50"
    assert row[H["Status"]] == "已支付" and row[H["Fulfilment"]] == "已发货"
    assert row[H["Phone"]] == "13800000000" and row[H["Tracking number"]] == "SF1234567890" and row[H["Buyer"]] == "阿甲"
    assert row[H["Paid"]] == f"{timezone.localtime(paid.paid_at):%Y-%m-%d %H:%M:%S}"


def test_orders_export_to_xlsx_read_back(ops, orders):
    paid, unpaid = orders
    response = ops.get(reverse("market_orders:index"), {"q": "阿甲", "export": "xlsx"})
    assert response.status_code == 200
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    sheet = workbook.active
    header, *rows = list(sheet.values)
    assert len(rows) == 1
    row = dict(zip(header, rows[0], strict=True))
    assert row[H["Order number"]] == paid.order_no
    assert Decimal(str(row[H["Hammer price (yuan)"]])) == Decimal("1234.50")
    price_cell = sheet.cell(row=2, column=header.index(H["Hammer price (yuan)"]) + 1)
    assert price_cell.number_format == "0.00"
    # Excel has no zones: the cell holds the time as read in Shanghai.
    local = timezone.localtime(paid.shipped_at).replace(tzinfo=None, microsecond=0)
    assert isinstance(row[H["Shipped"]], datetime) and row[H["Shipped"]].replace(microsecond=0) == local


def test_every_market_list_exports_in_both_formats(ops, orders):
    for screen in SCREENS:
        for export in ("csv", "xlsx"):
            response = ops.get(reverse(f"{screen}:index"), {"export": export})
            assert response.status_code == 200, (screen, export)
            body = b"".join(response.streaming_content)
            assert body, (screen, export)
    # The export buttons are on the list page.
    html = ops.get(reverse("market_orders:index")).content.decode()
    assert "export=xlsx" in html and "export=csv" in html
