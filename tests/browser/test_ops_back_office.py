"""An operator in headless Chromium: the dashboard's charts and figures, an XLSX export read back,
an order shipped; and the API docs drawn with every request to the internet refused."""

import io
import json
from urllib.parse import urlparse

import openpyxl
import pytest

from tests.browser.conftest import _manage, _server_env
from tests.browser.test_editor_publishes import log_in

pytestmark = pytest.mark.browser

SEED = """
import json
from datetime import timedelta
from django.utils import timezone
from auction.models import Lot, Order, Special, User
now = timezone.now()
special = Special.objects.create(title="运营专场", description="", preview_at=now - timedelta(days=2), starts_at=now - timedelta(days=1), ends_at=now - timedelta(hours=1), is_published=True)
buyer = User.objects.create(username="wx:browser-buyer", openid="browser-buyer", nickname="阿甲")
lot = Lot.objects.create(special=special, title="运营拍品", description="", start_price=100_000, deposit=0, ends_at=now - timedelta(hours=1), is_published=True, status="sold", current_price=123_450, bid_count=1, leader=buyer)
address = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}
order = Order.objects.create(order_no="20261201BROWSERTEST000001", lot=lot, user=buyer, status="paid", price=123_450, pay_deadline=now, paid_at=now - timedelta(minutes=5), address=address, address_text="阿甲 13800000000 上海市 南京东路 1 号", fulfilment_status="awaiting_shipment")
print(json.dumps({"order_id": order.pk, "order_no": order.order_no}))
"""


def local_only(refused: list):
    """A route handler: the page may reach this machine only; anything else is refused and noted."""

    def handle(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    return handle


@pytest.fixture(scope="module")
def paid_order(auction_server):
    import subprocess
    import sys

    from tests.browser.conftest import BASE_DIR

    env = _server_env(auction_server.log_path.parent, auction_server.url)
    _manage(env, "check")
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", SEED], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_api_docs_show_the_operations_offline(page, auction_server):
    refused = []
    page.route("**/*", local_only(refused))
    page.goto(f"{auction_server.url}/api/v1/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    assert page.locator(".opblock").count() >= 20
    assert page.get_by_text("/api/v1/orders/{order_no}/confirm-receipt").count() >= 1
    assert not refused


def test_an_operator_reads_the_dashboard_exports_orders_and_ships_one(page, auction_server, paid_order):
    page.route("**/*", local_only([]))
    log_in(page, auction_server)
    # the dashboard: charts drawn, figures those of the database
    page.goto(f"{auction_server.url}/admin/market/overview/")
    assert page.locator('svg[data-chart="gmv_per_day"] rect.chart-bar').count() == 30
    assert page.locator('svg[data-chart="bids_per_hour"] rect.chart-bar').count() == 24
    assert page.locator('[data-figure="awaiting_shipment"]').inner_text().strip() == "1"
    assert page.locator('[data-figure="0-today"]').inner_text().strip() == "¥1,234.50 · 1"
    # the figure links to the list behind it
    page.locator('[data-figure="awaiting_shipment"]').click()
    page.wait_for_url("**/admin/market/orders/?fulfilment_status=awaiting_shipment")
    assert page.get_by_text(paid_order["order_no"]).count() >= 1
    # export the filtered list to XLSX and read it back
    # (the export buttons on the list are checked in tests/test_exports.py)
    with page.expect_download() as download_info:
        page.evaluate(
            "url => { const link = document.createElement('a'); link.href = url; document.body.appendChild(link); link.click(); }",
            f"{auction_server.url}/admin/market/orders/?fulfilment_status=awaiting_shipment&export=xlsx",
        )
    workbook = openpyxl.load_workbook(io.BytesIO(open(download_info.value.path(), "rb").read()))
    header, *rows = list(workbook.active.values)
    assert len(rows) == 1 and paid_order["order_no"] in rows[0]
    assert 1234.5 in [float(value) for value in rows[0] if isinstance(value, (int, float))]
    # ship it, through the confirmation page
    page.goto(f"{auction_server.url}/admin/market/orders/inspect/{paid_order['order_id']}/")
    page.locator(f'a[href$="/admin/market/orders/ship/{paid_order["order_id"]}/"]').click()
    page.fill('input[name="carrier"]', "顺丰速运")
    page.fill('input[name="tracking_no"]', "SF1234567890")
    page.locator("[data-order-action-submit]").click()
    page.wait_for_url(f"**/admin/market/orders/inspect/{paid_order['order_id']}/")
    body = page.locator("main").inner_text()
    assert "SF1234567890" in body and "已发货" in body


FAILED_REFUND = """
import json
from datetime import timedelta
from django.contrib.auth.models import Group
from django.utils import timezone
from auction.models import Deposit, Lot, Payment, Refund, Special, User
now = timezone.now()
special = Special.objects.create(title="退款专场", description="", preview_at=now - timedelta(days=2), starts_at=now - timedelta(days=1), ends_at=now - timedelta(hours=1), is_published=True)
lot = Lot.objects.create(special=special, title="退款拍品", description="", start_price=100_000, deposit=50_000, ends_at=now - timedelta(hours=1), is_published=True, status="sold")
loser = User.objects.create(username="wx:browser-loser", openid="browser-loser", nickname="贝乙")
deposit = Deposit.objects.create(user=loser, scope="lot", special=special, lot=lot, amount=50_000, status="refunding")
payment = Payment.objects.create(out_trade_no="D20261201BROWSER0001", purpose="deposit", user=loser, deposit=deposit, amount=50_000, status="paid", gateway="sandbox", expires_at=now, paid_at=now - timedelta(days=1))
refund = Refund.objects.create(out_refund_no=Refund.number_for(payment), payment=payment, amount=50_000, reason="outbid", status="failed", attempts=3, last_error="NOTENOUGH: 商户余额不足")
finance = User.objects.create_user("browser-finance", password="pw-finance-browser-1", is_staff=False)
finance.groups.add(Group.objects.get(name="财务"))
print(json.dumps({"refund_id": refund.pk, "out_refund_no": refund.out_refund_no}))
"""


@pytest.fixture(scope="module")
def failed_refund(auction_server):
    import subprocess
    import sys

    from tests.browser.conftest import BASE_DIR

    env = _server_env(auction_server.log_path.parent, auction_server.url)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", FAILED_REFUND], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_finance_retries_a_failed_refund_after_confirming(page, auction_server, failed_refund):
    from dataclasses import replace

    page.route("**/*", local_only([]))
    # 财务 retries refunds (cms.roles): log in as one
    log_in(page, replace(auction_server, username="browser-finance", password="pw-finance-browser-1"))
    # the failed refunds, found from the list's status filter
    page.goto(f"{auction_server.url}/admin/market/refunds/?status=failed")
    page.get_by_text(failed_refund["out_refund_no"]).first.click()
    inspect_url = f"**/admin/market/refunds/inspect/{failed_refund['refund_id']}/"
    page.wait_for_url(inspect_url)
    assert "退款失败（需运营处理）" in page.locator("main").inner_text()
    # retry: a confirmation page first, saying what is sent again and why it is safe
    page.locator("[data-refund-retry-link]").click()
    page.wait_for_url(f"**/admin/market/refunds/retry/{failed_refund['refund_id']}/")
    confirmation = page.locator("main").inner_text()
    assert failed_refund["out_refund_no"] in confirmation and "¥500" in confirmation and "商户余额不足" in confirmation
    page.locator("[data-refund-retry] button[type=submit]").click()
    # then: back on the refund, sent again under the same number, now with the gateway, and in its history
    page.wait_for_url(inspect_url)
    body = page.locator("body").inner_text()
    assert "已重新提交" in body and "退款处理中" in body
    assert "退款已重试" in body and "退款已提交支付网关" in body
