"""Fulfilment: a paid order awaits shipment, ops ship it, the buyer (or the clock) confirms receipt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auction.errors import OrderNotShippable
from auction.models import Event, Order
from auction.services.fulfilment import order_receipt_auto, order_ship
from jobs import tasks
from tests.conftest import assert_error
from tests.market import pay, sweep, won_order

pytestmark = pytest.mark.django_db


def paid_order(api) -> Order:
    order = won_order(api, price=100_000)
    paying = pay(api, order)
    out_trade_no = paying.json()["payment"]["out_trade_no"]
    assert api.post(f"/payments/sandbox/{out_trade_no}/succeed").status_code == 200
    order.refresh_from_db()
    return order


def test_an_unpaid_order_has_no_fulfilment_and_a_paid_one_awaits_shipment(user_api):
    order = won_order(user_api, price=100_000)
    assert user_api.get(f"/orders/{order.order_no}").json()["fulfilment"] is None

    paid_order_ = paid_order(user_api)

    body = user_api.get(f"/orders/{paid_order_.order_no}").json()
    assert body["status"] == "paid"
    assert body["fulfilment"] == {"status": "awaiting_shipment", "carrier": "", "tracking_no": "", "shipped_at": None, "received_at": None}


def test_the_address_is_kept_formatted_for_ops_to_search(user_api):
    order = paid_order(user_api)
    assert order.address_text == "收货人 13800000000 北京市 长安街 1 号"


def test_receipt_before_shipping_is_refused_with_order_not_shipped(user_api):
    order = paid_order(user_api)
    assert_error(user_api.post(f"/orders/{order.order_no}/confirm-receipt"), 409, "order_not_shipped")
    unpaid = won_order(user_api, price=100_000)
    assert_error(user_api.post(f"/orders/{unpaid.order_no}/confirm-receipt"), 409, "order_not_shipped")


def test_ops_ship_and_the_buyer_confirms_receipt_once(user_api, django_capture_on_commit_callbacks):
    # given: a paid order
    order = paid_order(user_api)
    # when: ops ship it
    order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1234567890", staff="ops")
    # then: the buyer sees the carrier and tracking number; an event says who
    fulfilment = user_api.get(f"/orders/{order.order_no}").json()["fulfilment"]
    assert fulfilment["status"] == "shipped" and fulfilment["carrier"] == "顺丰速运" and fulfilment["tracking_no"] == "SF1234567890"
    assert fulfilment["shipped_at"].endswith("+08:00")
    assert Event.objects.filter(kind="order.shipped", order=order, actor="ops").count() == 1
    # when: the buyer confirms, twice
    first = user_api.post(f"/orders/{order.order_no}/confirm-receipt")
    second = user_api.post(f"/orders/{order.order_no}/confirm-receipt")
    # then: received once, the same answer both times
    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["fulfilment"]["status"] == "received" and first.json() == second.json()
    assert Event.objects.filter(kind="order.received", order=order, actor="user").count() == 1


def test_another_users_order_cannot_be_confirmed(user_api, api):
    from tests.market import bidder

    order = paid_order(user_api)
    order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1")
    other = bidder(api.client)
    assert_error(other.post(f"/orders/{order.order_no}/confirm-receipt"), 404, "not_found")


def test_an_unpaid_order_cannot_be_shipped(user_api):
    order = won_order(user_api, price=100_000)
    with pytest.raises(OrderNotShippable):
        order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1")
    assert not Event.objects.filter(kind="order.shipped").exists()


def test_shipping_schedules_the_automatic_receipt(user_api, settings):
    from django_q.models import Schedule

    settings.AUCTION_AUTO_RECEIPT_DAYS = 7
    order = paid_order(user_api)
    order = order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1")
    schedule = Schedule.objects.get(name=f"order {order.pk}: auto receipt")
    assert schedule.func == "jobs.tasks.order_receipt_auto"
    assert schedule.next_run == order.shipped_at + timedelta(days=7)


def test_receipt_is_confirmed_automatically_after_the_days_and_only_once(user_api, settings):
    settings.AUCTION_AUTO_RECEIPT_DAYS = 7
    order = paid_order(user_api)
    order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1")
    # before the days have passed, the job changes nothing
    assert tasks.order_receipt_auto(order.pk) is False
    # after them, the job confirms; run twice, the second changes nothing
    Order.objects.filter(pk=order.pk).update(shipped_at=timezone.now() - timedelta(days=7, seconds=1))
    assert tasks.order_receipt_auto(order.pk) is True
    assert tasks.order_receipt_auto(order.pk) is False
    order.refresh_from_db()
    assert order.fulfilment_status == "received" and order.received_at is not None
    assert Event.objects.filter(kind="order.received", order=order, actor="job").count() == 1


def test_the_sweep_confirms_receipts_a_lost_schedule_missed(user_api, settings):
    settings.AUCTION_AUTO_RECEIPT_DAYS = 7
    order = paid_order(user_api)
    order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1")
    Order.objects.filter(pk=order.pk).update(shipped_at=timezone.now() - timedelta(days=8))
    assert sweep()["orders_received"] == 1
    assert sweep()["orders_received"] == 0
    assert order_receipt_auto(order_id=order.pk) is False


def test_ops_may_correct_a_tracking_number_once_shipped(user_api):
    order = paid_order(user_api)
    order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF1")
    shipped_at = Order.objects.get(pk=order.pk).shipped_at
    order_ship(order_id=order.pk, carrier="顺丰速运", tracking_no="SF2")
    order.refresh_from_db()
    assert order.tracking_no == "SF2" and order.shipped_at == shipped_at
    assert Event.objects.get(kind="order.shipping_corrected").data["previous"]["tracking_no"] == "SF1"
