"""A budget across a special, where proxies answer: each budgeted proxy's maximum is capped.

The rule (DESIGN, Rules; CONTRACT, ``PUT /specials/{id}/budget``): a user's
proxies never commit them, across a special's lots, to more than
``max_total``: the prices at which they lead plus what a proxy is about to
bid. So while a lot's proxies answer (``bidding.Market.resolve_proxies``,
under the lot's row lock) a budgeted proxy bids at most

    min(its own maximum, max_total − the user's leads on the special's other lots)

and the rest of the resolution is the usual one, with that lower maximum.

Why this is safe under concurrency: the budget row is locked after the lot's
row, always in that order, by every transaction that lets the user's proxies
bid, and held to its commit; the leads on the other lots are summed after
that lock, at READ COMMITTED (project/settings.py), so they include what any
earlier proxy decision of the same user committed. Leads only grow through
such decisions or through the user's own plain bids; everyone else's bids
only take leads away, which leaves more room, never less. Several budget
rows in one transaction (two budgeted rivals on one lot) are locked
together, by primary key, so two lots' answers never wait on each other.
The special's row is share-locked after both, by the foreign key of the
events written here: lot, budget, special, as budgets.py takes them; the
one transaction that writes a special and locks its lots too (a publish
rescheduling them) takes the lots first (catalog._lots_to_reschedule).

What it costs others: users without a budget pay one indexed EXISTS per proxy
in the query that already loads a lot's proxies, and nothing on the
lock-free path of plain bids (a lot without proxies).

Why ``committed`` is summed, not counted: an exact running count would need
every plain bid that outbids a budgeted user, on the lock-free path too, to
find and update that user's row. The column holds the sum as the last
locked decision found it (each change an event); the API sums again when
it answers.

Plain bids by a budgeted user are their explicit choice: never refused by the
budget, but the leads they make count, so their proxies have less room.
At a lot's end a sold lot keeps counting (the winner pays that price), an
unsold or defaulted one stops counting.
"""

from dataclasses import dataclass, field

from django.db.models import OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from auction.models import AutoBid, Bid, Lot, LotStatus, SpecialBudget
from auction.services.events import event_record

# Leads that commit the user's money: still open, or won (the order pays it).
COMMITTED_LOT_STATUSES = (LotStatus.BIDDING, LotStatus.SOLD)


def leads_by_user(*, special_id: int, user_ids, exclude_lot_id: int | None = None) -> dict[int, int]:
    """The sum of the prices at which each user leads on the special's lots, in one query."""
    lots = Lot.objects.filter(special_id=special_id, leader_id__in=list(user_ids), status__in=COMMITTED_LOT_STATUSES)
    if exclude_lot_id is not None:
        lots = lots.exclude(pk=exclude_lot_id)
    rows = lots.order_by().values("leader_id").annotate(total=Sum("current_price")).values_list("leader_id", "total")
    return {user_id: int(total or 0) for user_id, total in rows}


def committed_now(*, special_id: int, user_id: int) -> int:
    return leads_by_user(special_id=special_id, user_ids=[user_id]).get(user_id, 0)


def with_committed_now(budgets: QuerySet) -> QuerySet:
    """Budgets annotated with ``leads_now`` (what ``committed_now`` says) in the list's
    own query: one correlated subquery on the lots' (special, leader) rows, not a query per row."""
    leads = (
        Lot.objects.filter(special_id=OuterRef("special_id"), leader_id=OuterRef("user_id"), status__in=COMMITTED_LOT_STATUSES)
        .order_by().values("leader_id").annotate(total=Sum("current_price")).values("total")
    )
    return budgets.annotate(leads_now=Coalesce(Subquery(leads), 0))


@dataclass
class ProxyBudgets:
    """The budgets of one lot's budgeted proxies, locked for one resolution."""

    lot: Lot
    rows: dict[int, SpecialBudget]  # by user id
    elsewhere: dict[int, int] = field(default_factory=dict)  # leads on the special's other lots

    def maximum(self, auto_bid: AutoBid) -> int:
        """What this proxy may bid here: its own maximum, or less where the budget says so."""
        budget = self.rows.get(auto_bid.user_id)
        if budget is None:
            return auto_bid.max_price
        room = budget.max_total - self.elsewhere.get(auto_bid.user_id, 0)
        return max(0, min(auto_bid.max_price, room))

    def settle(self, *, proxies: list[AutoBid], placed: list[Bid], read_leader_id: int | None) -> list[int]:
        """After the proxies answered, in the same transaction: write each budget's
        committed sum and each proxy's held mark where they moved, with events.
        Returns the users whose budget freed here (they lost this lot's lead)."""
        lot = self.lot
        last = placed[-1] if placed else None
        for user_id, budget in self.rows.items():
            leading = lot.leader_id == user_id
            committed = self.elsewhere.get(user_id, 0) + (lot.current_price if leading else 0)
            if committed == budget.committed:
                continue
            rows = SpecialBudget.objects.filter(pk=budget.pk)
            if leading and last is not None and last.is_auto and last.user_id == user_id:
                # The last line, as a unique constraint is: a proxy's lead never
                # leaves the budget over its maximum (its cap above keeps it so).
                rows = rows.filter(max_total__gte=committed)
            if rows.update(committed=committed) != 1:
                raise RuntimeError(f"budget {budget.pk}: a proxy would commit {committed} over {budget.max_total}")
            event_record(
                "budget.committed", user_id=user_id, special_id=lot.special_id, lot=lot, amount=committed,
                data={"before": budget.committed, "max_total": budget.max_total, "price": lot.current_price, "leading": leading},
            )
            budget.committed = committed
        self._mark_held(proxies)
        if read_leader_id in self.rows and lot.leader_id != read_leader_id:
            return [read_leader_id]
        return []

    def _mark_held(self, proxies: list[AutoBid]) -> None:
        lot = self.lot
        need = lot.next_min_bid()
        for auto_bid in proxies:
            budget = self.rows.get(auto_bid.user_id)
            held = (
                budget is not None and auto_bid.user_id != lot.leader_id
                and auto_bid.max_price >= need > self.maximum(auto_bid)
            )
            if held == auto_bid.held_by_budget:
                continue
            AutoBid.objects.filter(pk=auto_bid.pk).update(held_by_budget=held)
            auto_bid.held_by_budget = held
            if held:
                event_record(
                    "budget.held", user_id=auto_bid.user_id, special_id=lot.special_id, lot=lot, amount=need,
                    data={"max_total": budget.max_total, "elsewhere": self.elsewhere.get(auto_bid.user_id, 0),
                          "max_price": auto_bid.max_price},
                )
            else:
                event_record(
                    "budget.hold_ended", user_id=auto_bid.user_id, special_id=lot.special_id, lot=lot,
                    amount=lot.current_price if lot.leader_id == auto_bid.user_id else None,
                    data={"leading": lot.leader_id == auto_bid.user_id},
                )


def proxy_budgets_lock(*, lot: Lot, proxies: list[AutoBid]) -> ProxyBudgets | None:
    """Lock the budgets of ``lot``'s budgeted proxies (the lot's lock held), by
    primary key, and sum their users' leads elsewhere; None when none has one."""
    user_ids = [auto_bid.user_id for auto_bid in proxies if auto_bid.is_budgeted]
    if not user_ids:
        return None
    rows = {
        budget.user_id: budget
        for budget in SpecialBudget.objects.select_for_update().filter(special_id=lot.special_id, user_id__in=user_ids).order_by("pk")
    }
    if not rows:
        return None  # withdrawn since the proxies were read
    elsewhere = leads_by_user(special_id=lot.special_id, user_ids=rows, exclude_lot_id=lot.pk)
    return ProxyBudgets(lot=lot, rows=rows, elsewhere=elsewhere)
