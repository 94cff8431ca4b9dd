"""Bids and proxy bids (代理出价) on one lot.

A bid is checked against the lot's market row read without a lock, then
written with a conditional UPDATE. It lands if the row is still the one read,
or if only other plain bids moved it since and this one still outbids the
price they left (a full step above, from another bidder, before the same
end): on a hot lot, bids sent together then land in the order they reach the
database instead of sending each other back to read again. Anything else
(a proxy set, terms edited, settlement) sends the bid back to read, and its
rules are checked again against the state it is written over. The clock is
read after the read, so a bid one millisecond after the end is refused
whether or not a job has run. Refusals (too low, already leading, ended)
come from a read: the state they cite held at that instant, and they write
nothing. A lot with proxies, or a bid that lost the race too often, goes
through the lot's row lock (``SELECT ... FOR UPDATE``) instead, where proxies
answer inside the same transaction, so the response to a rival already shows
the answer. A proxy whose user set a budget across the special bids only
within it: its maximum is capped there, under the budget row's lock taken
after the lot's (budget_caps.py).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from auction import signals
from auction.errors import AlreadyLeading, BidderBarred, BidTooLow, DepositRequired, LotNotOpen, NotFound
from auction.increments import highest_price_outbid_by
from auction.models import AutoBid, Bid, Lot, LotStatus, Special, SpecialBudget, User
from auction.models.catalog import LOT_OUTCOMES
from auction.services.budget_caps import proxy_budgets_lock
from auction.services.live import live_lot_changed
from auction.services.market_rows import (
    LOT_MARKET_COLUMNS,
    SPECIAL_TERM_COLUMNS,
    MarketRead,
    OverBids,
    market_read,
    market_write,
)
from auction.services.tokens import TokenKey

# Conditional writes a bid tries before it queues for the lot's lock: on a hot
# lot a retry usually lands, and the lock is there for the unlucky.
OPTIMISTIC_ATTEMPTS = 3


@dataclass
class Market:
    """One lot's market state inside the transaction that holds its lock."""

    lot: Lot
    special: Special
    now: datetime
    placed: list[Bid] = field(default_factory=list)
    extended: bool = False
    # Answering for a budget that freed elsewhere: what this frees in turn
    # waits for the next bid on those lots, so one bid sets off one round.
    resuming: bool = False

    def __post_init__(self) -> None:
        # What the bids placed here are judged against, before they move the lot.
        self.read_version = self.lot.version
        self.read_bid_count = self.lot.bid_count
        self.read_ends_at = self.lot.ends_at
        self.read_leader_id = self.lot.leader_id

    def place(self, user_id: int, price: int, *, auto: bool) -> Bid:
        bid = Bid(lot_id=self.lot.pk, user_id=user_id, price=price, is_auto=auto, created_at=self.now)
        self.placed.append(bid)
        self.lot.current_price = price
        self.lot.leader_id = user_id
        self.lot.bid_count += 1
        window = timedelta(seconds=self.special.extension_seconds)
        # 延时: a bid in the last window moves the end to a full window after it,
        # never past the original end plus the special's cap (when it has one).
        if window and self.lot.ends_at - self.now < window:
            new_end = self.now + window
            if self.special.extension_cap_seconds:
                cap = self.special.lot_ends_at(self.lot.position) + timedelta(seconds=self.special.extension_cap_seconds)
                new_end = min(new_end, cap)
            if new_end > self.lot.ends_at:
                self.lot.ends_at = new_end
                self.extended = True
        return bid

    def resolve_proxies(self) -> None:
        """Let proxies answer until none can: each bids only what beating the
        other side takes, one step over it, never past its own maximum (nor
        past what its user's budget across the special leaves: budget_caps)."""
        auto_bids = list(
            AutoBid.objects.filter(lot_id=self.lot.pk)
            .annotate(is_budgeted=Exists(SpecialBudget.objects.filter(user_id=OuterRef("user_id"), special_id=self.lot.special_id)))
            .order_by("-max_price", "set_at", "id")
        )
        budgets = proxy_budgets_lock(lot=self.lot, proxies=auto_bids)
        proxies = sorted(
            (_Proxy(a.user_id, budgets.maximum(a) if budgets else a.max_price, a.set_at, a.pk) for a in auto_bids),
            key=lambda proxy: (-proxy.max_price, proxy.set_at, proxy.pk),
        )
        self._resolve(proxies)
        if budgets is not None:
            freed = budgets.settle(proxies=auto_bids, placed=self.placed, read_leader_id=self.read_leader_id)
            if freed and not self.resuming:
                _resume_after_commit(user_ids=freed, special_id=self.lot.special_id, except_lot_id=self.lot.pk)

    def _resolve(self, proxies: list["_Proxy"]) -> None:
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

    def _fight(self, *, winner: "_Proxy", loser: "_Proxy") -> None:
        if winner.max_price == loser.max_price:
            # Equal maximums: the earlier one holds the price at that maximum.
            self.place(winner.user_id, winner.max_price, auto=True)
            return
        if loser.max_price > self.lot.current_price:
            self.place(loser.user_id, loser.max_price, auto=True)
        self.place(winner.user_id, min(winner.max_price, loser.max_price + self.lot.step_after(loser.max_price)), auto=True)

    def save(self, *, over_bids: bool = False) -> bool:
        """Write the bids placed and the lot's new state, unless the row has
        moved on since it was read (then nothing is written). ``over_bids``:
        a lone plain bid also lands where only other bids moved the row, as
        long as it still outbids the price there."""
        lot = self.lot
        if self.placed:
            lot.status = LotStatus.BIDDING
        allowance = self._over_bids() if over_bids else None
        if not market_write(lot=lot, read_version=self.read_version, bids=self.placed, over_bids=allowance):
            return False
        if self.placed:
            signals.bids_placed.send(sender=Bid, bids=self.placed)
        if self.extended:
            signals.lot_end_changed.send(sender=Lot, lot_id=lot.pk, ends_at=lot.ends_at)
        self._publish()
        return True

    def _publish(self) -> None:
        """Watchers see the new state after commit; whoever led before and leads no more is outbid."""
        lot = self.lot
        leaders = {self.read_leader_id, *(bid.user_id for bid in self.placed)}
        outbid = tuple(user_id for user_id in leaders if user_id is not None and user_id != lot.leader_id)
        # Only a lone plain bid lands over others (OverBids); it moves the version by one.
        lone_plain = len(self.placed) == 1 and not self.placed[0].is_auto
        landed_over_others = lone_plain and lot.version > self.read_version + 1
        live_lot_changed(
            lot_id=lot.pk, version=lot.version, price=lot.current_price,
            # Bids it did not read landed first: the one it outbid is found after commit.
            outbid_user_ids=() if landed_over_others else outbid,
            outbid_before_bid_id=self.placed[0].pk if landed_over_others else None,
        )

    def _over_bids(self) -> OverBids | None:
        if len(self.placed) != 1 or self.placed[0].is_auto:
            return None
        bid = self.placed[0]
        return OverBids(
            version_less_bids=self.read_version - self.read_bid_count,
            ends_at=self.read_ends_at,
            outbids=highest_price_outbid_by(bid.price, fixed_increment=self.lot.increment),
            bidder_id=bid.user_id,
        )

    def save_locked(self) -> None:
        """Under the lot's lock the row cannot move; if the write still fails,
        a bid row contradicts the market row, and nothing is written."""
        if not self.save():
            raise RuntimeError(f"lot {self.lot.pk}: market write refused under its own lock")


@dataclass(frozen=True)
class _Proxy:
    """A proxy as it answers here: ``max_price`` is its maximum, capped by its user's budget."""

    user_id: int
    max_price: int
    set_at: datetime
    pk: int


def _beats(first: _Proxy, second: _Proxy) -> bool:
    return first.max_price > second.max_price or (
        first.max_price == second.max_price and (first.set_at, first.pk) < (second.set_at, second.pk)
    )


def _check_open(lot: Lot, special: Special, now: datetime) -> None:
    if lot.status in LOT_OUTCOMES or now >= lot.ends_at:
        raise LotNotOpen("Bidding on this lot has ended.", ends_at=timezone.localtime(lot.ends_at).isoformat())
    if now < special.starts_at:
        raise LotNotOpen("Bidding on this lot has not started.", starts_at=timezone.localtime(special.starts_at).isoformat())


def _read_checked(lot_id: int, bidder: int | TokenKey, *, price: int | None = None) -> MarketRead:
    """Check, without a lock or a transaction, what cannot turn in the bidder's favour.

    The special's terms and the lot's deposit are frozen once bidding opens,
    and a held deposit stays held while the lot is open, so those checks need
    no lock. Status and time are checked again by the clock read after this.
    """
    read = market_read(lot_id=lot_id, bidder=bidder)
    if read is None or not read.lot.is_published or not read.special.is_published:
        raise NotFound()
    _check_open(read.lot, read.special, timezone.now())
    if read.barred:
        raise BidderBarred()
    if not read.has_deposit:
        raise DepositRequired(deposit=read.lot.deposit)
    if price is not None and price < read.lot.next_min_bid():
        # Prices only rise, so a bid below the minimum read now is below it
        # later too: most refusals of a contested lot write nothing.
        raise BidTooLow(next_min_bid=read.lot.next_min_bid())
    return read


def _open_market(read: MarketRead) -> Market:
    """Lock the lot, then check status and time again by the clock read after the lock."""
    lot = Lot.objects.select_for_update().only("id", *LOT_MARKET_COLUMNS).get(pk=read.lot.pk)
    now = timezone.now()
    _check_open(lot, read.special, now)
    return Market(lot=lot, special=read.special, now=now)


@dataclass(frozen=True)
class BidResult:
    bid: Bid
    lot: Lot
    answers: list[Bid]  # what proxies bid in reply, in order


def bid_place(*, lot_id: int, user: User | TokenKey, price: int) -> BidResult:
    """``user`` may be a token not looked up yet: it is checked in the lot's read."""
    bidder = user.pk if isinstance(user, User) else user
    for _ in range(OPTIMISTIC_ATTEMPTS):
        read = _read_checked(lot_id, bidder, price=price)
        bidder = read.bidder_id
        if read.lot.leader_id == bidder:
            # Like a too-low bid, refused by the state read: the bidder did lead
            # at that instant, and a refusal writes nothing.
            raise AlreadyLeading()
        if read.has_proxies:
            break  # proxies answer under the lot's lock
        market = Market(lot=read.lot, special=read.special, now=timezone.now())
        _check_open(market.lot, market.special, market.now)
        bid = market.place(bidder, price, auto=False)
        if market.save(over_bids=True):
            return BidResult(bid=bid, lot=market.lot, answers=[])
    with transaction.atomic():
        market = _open_market(read)
        if market.lot.leader_id == bidder:
            raise AlreadyLeading()
        minimum = market.lot.next_min_bid()
        if price < minimum:
            raise BidTooLow(next_min_bid=minimum)
        bid = market.place(bidder, price, auto=False)
        market.resolve_proxies()
        market.save_locked()
    return BidResult(bid=bid, lot=market.lot, answers=market.placed[1:])


def auto_bid_set(*, lot_id: int, user: User, max_price: int) -> tuple[AutoBid, Lot]:
    """Set or change a proxy; while the user is not leading it bids at once."""
    read = _read_checked(lot_id, user.pk)
    with transaction.atomic():
        market = _open_market(read)
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
        # Saved even without a bid: the new version sends bids read before
        # this proxy existed back to be read again, so it answers them.
        market.save_locked()
    return auto_bid, market.lot


def auto_bid_withdraw(*, lot_id: int, user: User) -> bool:
    """Bids already placed stand; the lock keeps a running answer from using it."""
    with transaction.atomic():
        if Lot.objects.select_for_update().only("id").filter(pk=lot_id).first() is None:
            raise NotFound()
        deleted, _ = AutoBid.objects.filter(lot_id=lot_id, user=user).delete()
    return bool(deleted)


def _resume_after_commit(*, user_ids: list[int], special_id: int, except_lot_id: int) -> None:
    def resume() -> None:
        for user_id in user_ids:
            auto_bids_resume(user_id=user_id, special_id=special_id, except_lot_id=except_lot_id)

    # robust: the bid that freed the budget is committed; a failure here is logged, never its answer.
    transaction.on_commit(resume, robust=True)


# Held proxies one freeing answers at most; the rest answer at the next bid on their lots.
RESUME_LIMIT = 20


def auto_bids_resume(*, user_id: int, special_id: int, except_lot_id: int | None = None, lot_ids: list[int] | None = None) -> int:
    """Let the user's proxies that their budget held answer now that it may have
    room: each lot in its own transaction (its lock, then the budget's), in id
    order. Returns how many bid."""
    if lot_ids is None:
        held = AutoBid.objects.filter(
            user_id=user_id, lot__special_id=special_id, held_by_budget=True, lot__ends_at__gt=timezone.now()
        ).exclude(lot__status__in=LOT_OUTCOMES)
        lot_ids = list(held.order_by("lot_id").values_list("lot_id", flat=True)[:RESUME_LIMIT])
    lot_ids = [lot_id for lot_id in lot_ids if lot_id != except_lot_id]
    if not lot_ids:
        return 0
    special = Special.objects.only("id", *SPECIAL_TERM_COLUMNS).get(pk=special_id)
    answered = 0
    for lot_id in lot_ids:
        with transaction.atomic():
            lot = Lot.objects.select_for_update().only("id", *LOT_MARKET_COLUMNS).get(pk=lot_id)
            market = Market(lot=lot, special=special, now=timezone.now(), resuming=True)
            try:
                _check_open(lot, special, market.now)
            except LotNotOpen:
                continue
            market.resolve_proxies()
            if market.placed:
                market.save_locked()
                answered += 1
    return answered
