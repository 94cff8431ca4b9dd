"""预算: a user's budget across a special, set, shown and withdrawn (CONTRACT, ``PUT /specials/{id}/budget``).

The cap itself is applied where proxies answer (budget_caps.py). Here:

- Setting a first budget locks every lot of the special first, then creates
  the row: lot, then budget, the order every proxy answer takes. A proxy
  answer already running (it holds its lot) finishes before the budget
  exists; every answer after it sees the budget. Changing or withdrawing a
  budget locks only its row, which every answer for that user locks too.
- The special's row comes last, share-locked by InnoDB when the budget and
  its event rows are written (their foreign keys): lots, then the special,
  the order a publish takes too (catalog._lots_to_reschedule), so an editor
  moving the lots' ends while a first budget is set never deadlocks with it.
- A budget set below what the user already leads at is taken: leads stand
  (as bids do when a proxy is withdrawn); their proxies bid again only once
  leads are lost.
- After a budget is set, raised or withdrawn, the proxies it held answer at
  once (bidding.auto_bids_resume); so do they when the user loses a lead on
  a lot where they had a proxy. Otherwise a held proxy answers at the next
  bid on its own lot, as every proxy does.
"""

from dataclasses import dataclass

from django.db import transaction

from auction.errors import NotFound
from auction.models import AutoBid, Lot, Special, SpecialBudget, User
from auction.services.bidding import auto_bids_resume
from auction.services.budget_caps import committed_now
from auction.services.events import event_record

_LARGEST_ID = 2**63 - 1


@dataclass(frozen=True)
class BudgetView:
    max_total: int
    committed: int  # the prices at which the user leads on the special's lots now


def _published_special(special_id: int) -> Special:
    special = Special.objects.filter(pk=special_id, is_published=True).only("id").first() if 0 < special_id <= _LARGEST_ID else None
    if special is None:
        raise NotFound()
    return special


def budget_set(*, special_id: int, user: User, max_total: int) -> BudgetView:
    special = _published_special(special_id)
    with transaction.atomic():
        budget = SpecialBudget.objects.select_for_update().filter(user=user, special=special).first()
        if budget is None:
            # Lot before budget: no proxy answer is deciding without this budget while it is made.
            list(Lot.objects.select_for_update().filter(special=special).order_by("pk").values_list("pk", flat=True))
            budget = SpecialBudget.objects.select_for_update().filter(user=user, special=special).first()
        previous = budget.max_total if budget is not None else None
        committed = committed_now(special_id=special.pk, user_id=user.pk)
        if budget is None:
            budget = SpecialBudget.objects.create(user=user, special=special, max_total=max_total, committed=committed)
        else:
            budget.max_total, budget.committed = max_total, committed
            budget.save(update_fields=["max_total", "committed", "updated_at"])
        if previous != max_total:
            event_record(
                "budget.set", actor="user", user=user, special=special, amount=max_total,
                data={"previous_max_total": previous, "committed": committed},
            )
    auto_bids_resume(user_id=user.pk, special_id=special.pk)
    return BudgetView(max_total=max_total, committed=committed_now(special_id=special.pk, user_id=user.pk))


def budget_show(*, special_id: int, user: User) -> BudgetView:
    special = _published_special(special_id)
    budget = SpecialBudget.objects.filter(user=user, special=special).only("max_total").first()
    if budget is None:
        raise NotFound()
    return BudgetView(max_total=budget.max_total, committed=committed_now(special_id=special.pk, user_id=user.pk))


def budget_withdraw(*, special_id: int, user: User) -> bool:
    """The proxies it held answer at once, capped by their own maximums only."""
    special = _published_special(special_id)
    with transaction.atomic():
        budget = SpecialBudget.objects.select_for_update().filter(user=user, special=special).first()
        if budget is None:
            return False
        held = list(
            AutoBid.objects.filter(user=user, lot__special=special, held_by_budget=True).order_by("lot_id").values_list("pk", "lot_id")
        )
        lot_ids = [lot_id for _, lot_id in held]
        AutoBid.objects.filter(pk__in=[pk for pk, _ in held]).update(held_by_budget=False)
        event_record(
            "budget.withdrawn", actor="user", user=user, special=special, amount=budget.max_total,
            data={"committed": committed_now(special_id=special.pk, user_id=user.pk), "held_lot_ids": lot_ids},
        )
        budget.delete()
    auto_bids_resume(user_id=user.pk, special_id=special.pk, lot_ids=lot_ids)
    return True
