"""Bids and proxy bids (代理出价) on one lot.

Every change to a lot's market state happens under a row lock on that lot
(``SELECT ... FOR UPDATE``), and every rule is checked after the lock is
taken, against the clock at that moment: a bid one millisecond after the end
is refused whether or not a job has run. Proxies answer inside the same
transaction, so the response to a rival already shows the answer.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from auction import signals
from auction.errors import AlreadyLeading, BidTooLow, DepositRequired, LotNotOpen, NotFound
from auction.models import AutoBid, Bid, Lot, LotStatus, Special, User
from auction.models.catalog import LOT_OUTCOMES
from auction.services.deposits import has_bidding_deposit

# Only the market columns: the lock and the update never carry the description.
MARKET_FIELDS = (
    "id", "special_id", "is_published", "status", "ends_at", "start_price", "reserve_price", "deposit",
    "increment", "current_price", "leader_id", "bid_count", "version",
)


@dataclass
class Market:
    """One lot's market state inside the transaction that holds its lock."""

    lot: Lot
    special: Special
    now: datetime
    placed: list[Bid] = field(default_factory=list)
    extended: bool = False

    def place(self, user_id: int, price: int, *, auto: bool) -> Bid:
        bid = Bid.objects.create(lot_id=self.lot.pk, user_id=user_id, price=price, is_auto=auto)
        self.placed.append(bid)
        self.lot.current_price = price
        self.lot.leader_id = user_id
        self.lot.bid_count += 1
        window = timedelta(seconds=self.special.extension_seconds)
        # 延时: a bid in the last window moves the end to a full window after it.
        if window and self.lot.ends_at - self.now < window:
            self.lot.ends_at = self.now + window
            self.extended = True
        return bid

    def resolve_proxies(self) -> None:
        """Let proxies answer until none can: each bids only what beating the
        other side takes, one step over it, never past its own maximum."""
        proxies = list(AutoBid.objects.filter(lot_id=self.lot.pk).order_by("-max_price", "set_at", "id"))
        for _ in range(2 * len(proxies) + 2):
            need = self.lot.next_min_bid()
            leader = self.lot.leader_id
            challenger = next((a for a in proxies if a.user_id != leader and a.max_price >= need), None)
            if challenger is None:
                return
            defender = next((a for a in proxies if a.user_id == leader), None)
            if defender is None or defender.max_price < need:
                self.place(challenger.user_id, need, auto=True)
            elif _beats(defender, challenger):
                self._fight(winner=defender, loser=challenger)
            else:
                self._fight(winner=challenger, loser=defender)

    def _fight(self, *, winner: AutoBid, loser: AutoBid) -> None:
        if winner.max_price == loser.max_price:
            # Equal maximums: the earlier one holds the price at that maximum.
            self.place(winner.user_id, winner.max_price, auto=True)
            return
        if loser.max_price > self.lot.current_price:
            self.place(loser.user_id, loser.max_price, auto=True)
        self.place(winner.user_id, min(winner.max_price, loser.max_price + self.lot.step_after(loser.max_price)), auto=True)

    def save(self) -> None:
        lot = self.lot
        lot.version += 1
        fields = ["current_price", "leader_id", "bid_count", "ends_at", "version"]
        if lot.status != LotStatus.BIDDING:
            lot.status = LotStatus.BIDDING
            fields.append("status")
        lot.save(update_fields=fields)
        if self.extended:
            signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)


def _beats(first: AutoBid, second: AutoBid) -> bool:
    return first.max_price > second.max_price or (
        first.max_price == second.max_price and (first.set_at, first.pk) < (second.set_at, second.pk)
    )


def _check_open(lot: Lot, special: Special, now: datetime) -> None:
    if lot.status in LOT_OUTCOMES or now >= lot.ends_at:
        raise LotNotOpen("Bidding on this lot has ended.", ends_at=timezone.localtime(lot.ends_at).isoformat())
    if now < special.starts_at:
        raise LotNotOpen("Bidding on this lot has not started.", starts_at=timezone.localtime(special.starts_at).isoformat())


def _terms_checked(lot_id: int, user: User, *, price: int | None = None) -> Lot:
    """Check, without a lock or a transaction, what cannot turn in the bidder's favour.

    The special's terms and the lot's deposit are frozen once bidding opens,
    and a held deposit stays held while the lot is open, so those checks need
    no lock; keeping them outside it keeps the hot lot's lock short. Status
    and time are checked again after the lock, by the clock read after it.
    """
    terms = (
        Lot.objects.select_related("special")
        .only(
            "id", "special_id", "deposit", "status", "ends_at", "is_published", "current_price", "bid_count",
            "start_price", "increment", "special__is_published", "special__starts_at", "special__extension_seconds",
        )
        .filter(pk=lot_id)
        .first()
    )
    if terms is None or not terms.is_published or not terms.special.is_published:
        raise NotFound()
    _check_open(terms, terms.special, timezone.now())
    if not has_bidding_deposit(user_id=user.pk, lot=terms):
        raise DepositRequired(deposit=terms.deposit)
    if price is not None and price < terms.next_min_bid():
        # Prices only rise, so a bid below the minimum read now is below it
        # under the lock too: most refusals of a contested lot never queue for it.
        raise BidTooLow(next_min_bid=terms.next_min_bid())
    return terms


def _open_market(terms: Lot) -> Market:
    """Lock the lot, then check status and time again by the clock read after the lock."""
    lot = Lot.objects.select_for_update().only(*MARKET_FIELDS).get(pk=terms.pk)
    now = timezone.now()
    _check_open(lot, terms.special, now)
    return Market(lot=lot, special=terms.special, now=now)


@dataclass(frozen=True)
class BidResult:
    bid: Bid
    lot: Lot
    answers: list[Bid]  # what proxies bid in reply, in order


def bid_place(*, lot_id: int, user: User, price: int) -> BidResult:
    terms = _terms_checked(lot_id, user, price=price)
    with transaction.atomic():
        market = _open_market(terms)
        if market.lot.leader_id == user.pk:
            raise AlreadyLeading()
        minimum = market.lot.next_min_bid()
        if price < minimum:
            raise BidTooLow(next_min_bid=minimum)
        bid = market.place(user.pk, price, auto=False)
        market.resolve_proxies()
        market.save()
    return BidResult(bid=bid, lot=market.lot, answers=market.placed[1:])


def auto_bid_set(*, lot_id: int, user: User, max_price: int) -> tuple[AutoBid, Lot]:
    """Set or change a proxy; while the user is not leading it bids at once."""
    terms = _terms_checked(lot_id, user)
    with transaction.atomic():
        market = _open_market(terms)
        lot = market.lot
        floor = lot.current_price + 1 if lot.leader_id == user.pk else lot.next_min_bid()
        if max_price < floor:
            raise BidTooLow("The maximum is below what the next bid must be.", next_min_bid=lot.next_min_bid())
        auto_bid = AutoBid.objects.filter(lot_id=lot.pk, user=user).first()
        if auto_bid is None:
            auto_bid = AutoBid.objects.create(lot_id=lot.pk, user=user, max_price=max_price, set_at=market.now)
        elif auto_bid.max_price != max_price:
            auto_bid.max_price = max_price
            auto_bid.set_at = market.now
            auto_bid.save(update_fields=["max_price", "set_at"])
        market.resolve_proxies()
        if market.placed:
            market.save()
    return auto_bid, market.lot


def auto_bid_withdraw(*, lot_id: int, user: User) -> bool:
    """Bids already placed stand; the lock keeps a running answer from using it."""
    with transaction.atomic():
        if Lot.objects.select_for_update().only("id").filter(pk=lot_id).first() is None:
            raise NotFound()
        deleted, _ = AutoBid.objects.filter(lot_id=lot_id, user=user).delete()
    return bool(deleted)

