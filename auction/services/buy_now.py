"""一口价: a bidder ends the lot at once at its buy-now price.

Under the lot's row lock, like a bid that queues for it and like settlement:
the lot is sold and its order made in the same transaction, and the market
row's version moves (by more than one, so ``version - bid_count`` moves too),
so a bid read before it matches no row, is read again and finds the lot ended.
The end itself is settlement's own (``lots_settle_locked``): the order, other
lot deposits back, events, the won message and the live room, as at any end.
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from auction.errors import BidderBarred, BuyNowUnavailable, DepositRequired, LotNotOpen, NotFound
from auction.models import Bid, Deposit, DepositScope, DepositStatus, Lot, Order, User
from auction.models.catalog import LOT_OUTCOMES
from auction.services.bars import is_barred
from auction.services.events import event_record
from auction.services.market_rows import market_row_save
from auction.services.settlement import lots_settle_locked


@dataclass(frozen=True)
class BuyNowResult:
    order: Order
    lot: Lot


def has_held_deposit(*, lot: Lot, user_id: int) -> bool:
    if not lot.deposit:
        return True
    return Deposit.objects.filter(user_id=user_id, status=DepositStatus.HELD).filter(
        lot_id=lot.pk, scope=DepositScope.LOT
    ).exists() or Deposit.objects.filter(
        user_id=user_id, status=DepositStatus.HELD, scope=DepositScope.SPECIAL, special_id=lot.special_id
    ).exists()


def buy_now(*, lot_id: int, user: User) -> BuyNowResult:
    with transaction.atomic():
        lot = Lot.objects.select_for_update().filter(pk=lot_id).first()
        if lot is None or not lot.is_published:
            raise NotFound()
        special = lot.special
        if not special.is_published:
            raise NotFound()
        now = timezone.now()
        if lot.status in LOT_OUTCOMES or now >= lot.ends_at:
            raise LotNotOpen("Bidding on this lot has ended.", ends_at=timezone.localtime(lot.ends_at).isoformat())
        if now < special.starts_at:
            raise LotNotOpen("Bidding on this lot has not started.", starts_at=timezone.localtime(special.starts_at).isoformat())
        if is_barred(user_id=user.pk, lot_id=lot.pk):
            raise BidderBarred()
        if not has_held_deposit(lot=lot, user_id=user.pk):
            raise DepositRequired(deposit=lot.deposit)
        if not lot.buy_now_price or lot.current_price >= lot.buy_now_price:
            raise BuyNowUnavailable(buy_now_price=lot.buy_now_price, current_price=lot.current_price)
        price = lot.buy_now_price
        # In the bid history as any bid: no bid can be at this price (all are below it).
        Bid.objects.create(lot=lot, user=user, price=price, is_auto=False, created_at=now)
        lot.current_price, lot.leader_id, lot.bid_count = price, user.pk, lot.bid_count + 1
        lot.ends_at = now
        lot.version += 1  # with market_row_save's step: two, never mistaken for one plain bid
        market_row_save(lot, "current_price", "leader", "bid_count", "ends_at", "updated_at")
        order = lots_settle_locked([lot])[lot.pk]
        event_record("lot.bought_now", actor="user", user_id=user.pk, lot=lot, special_id=lot.special_id, order=order, amount=price)
    return BuyNowResult(order=order, lot=lot)
