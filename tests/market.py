"""Helpers for market tests: bidders with tokens, deposits paid through the sandbox."""

from datetime import timedelta

from django.utils import timezone

from auction.models import Lot, Order
from auction.services.reconcile import reconcile
from auction.services.settlement import lot_settle
from auction.services.tokens import token_issue
from tests.conftest import ApiClient
from tests.factories import LotFactory, UserFactory

ADDRESS = {"name": "收货人", "phone": "13800000000", "region": "北京市", "detail": "长安街 1 号"}


def bidder(client, nickname: str = "") -> ApiClient:
    user = UserFactory(nickname=nickname) if nickname else UserFactory()
    api = ApiClient(client, token=token_issue(user=user))
    api.user = user
    return api


def pay_deposit(api: ApiClient, **target) -> dict:
    created = api.post("/deposits", target)
    assert created.status_code in (200, 201), created.content
    out_trade_no = created.json()["payment"]["out_trade_no"]
    paid = api.post(f"/payments/sandbox/{out_trade_no}/succeed")
    assert paid.status_code == 200, paid.content
    return created.json()["deposit"]


def bid(api: ApiClient, lot_id: int, price: int):
    return api.post(f"/lots/{lot_id}/bids", {"price": price})


def hammer(lot: Lot) -> None:
    """The lot's end passes (a second ago)."""
    Lot.objects.filter(pk=lot.pk).update(ends_at=timezone.now() - timedelta(seconds=1))


def deadline_passes(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(pay_deadline=timezone.now() - timedelta(seconds=1))


def sweep() -> dict:
    """What the job cluster does every minute: everything due gets done."""
    return reconcile()


def sweep_until_quiet(times: int = 3) -> None:
    # Refunds go pending → processing → succeeded across sweeps, as with WeChat.
    from auction.services import reconcile as module

    original = module.REFUND_POLL_AFTER
    module.REFUND_POLL_AFTER = timedelta(0)
    try:
        for _ in range(times):
            reconcile()
    finally:
        module.REFUND_POLL_AFTER = original


def won_order(api: ApiClient, *, price: int = 100_000, deposit: int = 0, **lot_fields) -> Order:
    """``api``'s user won a lot at ``price`` (after paying its lot ``deposit``): their order, unpaid."""
    lot = LotFactory(start_price=price, deposit=deposit, **lot_fields)
    if deposit:
        pay_deposit(api, lot_id=lot.pk)
    placed = bid(api, lot.pk, price)
    assert placed.status_code == 201, placed.content
    hammer(lot)
    lot_settle(lot_id=lot.pk)
    return Order.objects.get(lot=lot)


def pay(api: ApiClient, order: Order, user_coupon_id: int | None = None):
    body = {"address": ADDRESS} if user_coupon_id is None else {"address": ADDRESS, "user_coupon_id": user_coupon_id}
    return api.post(f"/orders/{order.order_no}/pay", body)
