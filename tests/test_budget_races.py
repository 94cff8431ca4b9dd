"""The budget under a race: rivals bid on several lots of a special at once, each bid
answered by the budgeted user's proxies, and the user's commitment never passes
the budget. Threads for real, each with its own database connection (on
MariaDB the lots' and the budget's row locks decide; on SQLite the IMMEDIATE
transactions do)."""

import random
import threading
import time
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from auction.errors import AlreadyLeading, BidTooLow
from auction.models import Bid, Event, Lot, Special, SpecialBudget
from auction.services.bidding import auto_bid_set, bid_place
from auction.services.budget_caps import committed_now
from auction.services.budgets import budget_set
from auction.services.catalog import Content, LotTerms, SpecialTerms, lot_publish, special_publish
from auction.services.tokens import token_issue
from tests.conftest import ApiClient, ProductionChainsHandler
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


# --- a first budget racing a publish of the special --------------------------------

PUBLISHED_LOTS = 12
BUDGETERS = 6
ROUNDS = 25
SPECIAL_PAGE_ID = 9_300


def _special_in_preview() -> tuple[SpecialTerms, list[int]]:
    """A special published from its page with its lots, bidding an hour away: its terms still move."""
    now = timezone.now()
    terms = SpecialTerms(preview_at=now - timedelta(hours=1), starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2))
    special_publish(page_id=SPECIAL_PAGE_ID, content=Content(title="秋拍"), terms=terms)
    lot_page_ids = [SPECIAL_PAGE_ID + 1 + k for k in range(PUBLISHED_LOTS)]
    for position, page_id in enumerate(lot_page_ids):
        lot_publish(page_id=page_id, special_page_id=SPECIAL_PAGE_ID, position=position,
                    content=Content(title=f"拍品 {position}"), terms=LotTerms(start_price=10_000))
    return terms, lot_page_ids


@pytest.mark.mariadb
@pytest.mark.skipif(connection.vendor != "mysql", reason="SQLite's IMMEDIATE transactions take one write lock: no row-lock order to get wrong")
def test_first_budgets_set_while_an_editor_republishes_the_special_never_deadlock():
    """A first budget locks the special's lots, then its row is share-locked by the
    budget's foreign key; a publish that locked the row before the lots deadlocked
    with it here within a round or two (MariaDB's victim: a 503 or a failed publish)."""
    # given a special in preview, and bidders each about to set their first budget on it
    terms, lot_page_ids = _special_in_preview()
    special = Special.objects.get(page_id=SPECIAL_PAGE_ID)
    users = [[UserFactory() for _ in range(ROUNDS)] for _ in range(BUDGETERS)]
    tokens = {user.pk: token_issue(user=user) for row in users for user in row}

    def republish() -> list[str]:
        # The editor moves the staggered ends back and forth: every publish locks all the lots and the special's row.
        outcomes = []
        for round_ in range(ROUNDS):
            try:
                special_publish(page_id=SPECIAL_PAGE_ID, content=Content(title="秋拍"), lot_page_ids=lot_page_ids,
                                terms=replace(terms, stagger_seconds=60 * (round_ % 2 + 1)))
                outcomes.append("published")
            except OperationalError as error:
                outcomes.append(f"publish failed: {error}")
        return outcomes

    def first_budgets(index: int) -> list[int]:
        client = Client()  # this thread's own, through the production chains, on this thread's connection
        client.handler = ProductionChainsHandler(False)
        statuses = []
        for round_, user in enumerate(users[index]):
            response = ApiClient(client, token=tokens[user.pk]).put(f"/specials/{special.pk}/budget", {"max_total": 100_000 + round_})
            statuses.append(response.status_code)
        return statuses

    # when the editor republishes while the bidders set their first budgets
    results = run_threads(1 + BUDGETERS, lambda index: republish() if index == 0 else first_budgets(index - 1))

    # then nothing failed: no deadlock victim on either side, no 503 to a bidder
    assert not [r for r in results if isinstance(r, BaseException)], results
    failed_publishes = [outcome for outcome in results[0] if outcome != "published"]
    assert not failed_publishes, f"{len(failed_publishes)} of {ROUNDS} publishes failed, the first: {failed_publishes[0]}"
    statuses = Counter(status for row in results[1:] for status in row)
    assert statuses == {200: BUDGETERS * ROUNDS}, statuses
    # and every budget is there once, as set, with its event
    for row in users:
        for round_, user in enumerate(row):
            assert SpecialBudget.objects.get(user=user, special=special).max_total == 100_000 + round_
    assert Event.objects.filter(kind="budget.set", special=special).count() == BUDGETERS * ROUNDS
    # and the lots end where the last publish put them
    special.refresh_from_db()
    assert special.stagger_seconds == 60 * ((ROUNDS - 1) % 2 + 1)
    for lot in Lot.objects.filter(special=special):
        assert lot.ends_at == special.lot_ends_at(lot.position)
