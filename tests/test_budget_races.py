"""The budget under a race: rivals bid on several lots of a special at once, each bid
answered by the budgeted user's proxies, and the user's commitment never passes
the budget. Threads for real, each with its own database connection (on
MariaDB the lots' and the budget's row locks decide; on SQLite the IMMEDIATE
transactions do)."""

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from auction.errors import AlreadyLeading, BidTooLow
from auction.models import Bid, Event, Lot, SpecialBudget
from auction.services.bidding import auto_bid_set, bid_place
from auction.services.budget_caps import committed_now
from auction.services.budgets import budget_set
from tests.factories import LotFactory, SpecialFactory, UserFactory
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)

LOTS = 4
RIVALS = 6
BUDGET = 60_000
PROXY_MAX = 30_000  # each lot's proxy alone could commit 4 × 30,000 = 120,000


def test_the_committed_total_never_passes_the_budget_while_rivals_bid_on_several_lots_at_once():
    # given a budgeted user with a proxy on every lot, leading each at its start
    special = SpecialFactory()
    lots = [LotFactory(special=special, position=k, start_price=10_000, increment=1_000, deposit=0) for k in range(LOTS)]
    me = UserFactory()
    budget_set(special_id=special.pk, user=me, max_total=BUDGET)
    for lot in lots:
        auto_bid_set(lot_id=lot.pk, user=me, max_price=PROXY_MAX)
    assert committed_now(special_id=special.pk, user_id=me.pk) == LOTS * 10_000
    rivals = [UserFactory() for _ in range(RIVALS)]
    deadline = timezone.now() + timedelta(seconds=4)
    samples: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        # What anyone reading the lots sees at any instant, while the race runs.
        try:
            while not sampling.is_set():
                samples.append(committed_now(special_id=special.pk, user_id=me.pk))
                time.sleep(0.002)
        finally:
            connection.close()

    def rival_bids(index: int) -> int:
        accepted, rng = 0, random.Random(index)
        while timezone.now() < deadline:
            lot = rng.choice(lots)
            current = Lot.objects.only("current_price", "bid_count", "start_price", "increment").get(pk=lot.pk)
            try:
                bid_place(lot_id=lot.pk, user=rivals[index], price=current.next_min_bid() + rng.choice([0, 0, 1_000]))
                accepted += 1
            except (BidTooLow, AlreadyLeading):
                pass
        return accepted

    # when the rivals bid at once
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results = run_threads(RIVALS, rival_bids)
    finally:
        sampling.set()
        sampler.join(timeout=30)

    print(f"\nbudget race: {sum(results)} rival bids, "
          f"{Bid.objects.filter(user=me, is_auto=True).count()} proxy answers, "
          f"{Event.objects.filter(kind='budget.held', user=me).count()} holds, {len(samples)} samples, "
          f"highest committed seen {max(samples or [0])} of {BUDGET}")
    # then no answer ever committed the user past the budget
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(results) > RIVALS
    assert samples and max(samples) <= BUDGET, max(samples)
    final = committed_now(special_id=special.pk, user_id=me.pk)
    assert final <= BUDGET
    assert SpecialBudget.objects.get(user=me, special=special).committed <= BUDGET
    movements = list(Event.objects.filter(kind="budget.committed", user=me).values_list("amount", flat=True))
    assert movements and max(movements) <= BUDGET
    # and the budget did bite: proxies answered, were held, and went on elsewhere
    assert Bid.objects.filter(user=me, is_auto=True, lot__in=lots).count() > LOTS
    assert Event.objects.filter(kind="budget.held", user=me).exists()
    assert Event.objects.filter(kind="budget.hold_ended", user=me).exists()
    # every lot's history is intact: prices strictly rising, the row agreeing with its bids
    for lot in lots:
        lot.refresh_from_db()
        prices = list(Bid.objects.filter(lot=lot).order_by("id").values_list("price", flat=True))
        assert prices == sorted(set(prices)) and len(prices) == lot.bid_count
        assert lot.current_price == prices[-1]
