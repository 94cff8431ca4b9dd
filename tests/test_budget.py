"""预算: PUT /specials/{id}/budget caps what the caller's proxies commit across the special's lots.

Lots here start at 100,000 fen with a fixed step of 10,000 and no deposit;
``committed`` is the sum of the prices at which the caller leads.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.test import Client
from django.urls import reverse

from auction.models import AutoBid, Event, Lot, SpecialBudget
from auction.services.settlement import lot_settle
from tests.conftest import assert_error
from tests.factories import LotFactory, SpecialFactory
from tests.market import bid, bidder, hammer

pytestmark = pytest.mark.django_db


def _lots(special, count: int, **fields) -> list[Lot]:
    values = {"start_price": 100_000, "increment": 10_000, "deposit": 0, **fields}
    return [LotFactory(special=special, position=k, **values) for k in range(count)]


def _leading(lot: Lot) -> tuple[int | None, int]:
    lot.refresh_from_db()
    return lot.leader_id, lot.current_price


def _budget(api, special, max_total: int) -> dict:
    response = api.put(f"/specials/{special.pk}/budget", {"max_total": max_total})
    assert response.status_code == 200, response.content
    return response.json()


# The endpoint ---------------------------------------------------------------------


def test_a_budget_is_set_shown_changed_and_withdrawn(client):
    special = SpecialFactory()
    me = bidder(client)

    assert _budget(me, special, 500_000) == {"max_total": 500_000, "committed": 0}
    assert me.get(f"/specials/{special.pk}/budget").json() == {"max_total": 500_000, "committed": 0}
    assert _budget(me, special, 300_000) == {"max_total": 300_000, "committed": 0}
    assert SpecialBudget.objects.get(user=me.user, special=special).max_total == 300_000

    assert me.delete(f"/specials/{special.pk}/budget").status_code == 204
    assert_error(me.get(f"/specials/{special.pk}/budget"), 404, "not_found")
    assert me.delete(f"/specials/{special.pk}/budget").status_code == 204  # nothing left to withdraw: the same answer
    kinds = list(Event.objects.filter(user=me.user, special=special).order_by("id").values_list("kind", "amount"))
    assert kinds == [("budget.set", 500_000), ("budget.set", 300_000), ("budget.withdrawn", 300_000)]


@pytest.mark.parametrize("max_total", [0, -1, "100000", 100_000.0, 1e5, True, None, 10**20])
def test_a_max_total_that_is_not_a_positive_integer_of_fen_is_422(client, max_total):
    special = SpecialFactory()
    assert_error(bidder(client).put(f"/specials/{special.pk}/budget", {"max_total": max_total}), 422, "validation_error")
    assert not SpecialBudget.objects.exists()


def test_a_missing_max_total_is_422_and_no_token_is_401(client, api):
    special = SpecialFactory()
    assert_error(bidder(client).put(f"/specials/{special.pk}/budget", {}), 422, "validation_error")
    assert_error(api.put(f"/specials/{special.pk}/budget", {"max_total": 100_000}), 401, "unauthenticated")
    assert_error(api.get(f"/specials/{special.pk}/budget"), 401, "unauthenticated")
    assert_error(api.delete(f"/specials/{special.pk}/budget"), 401, "unauthenticated")


def test_an_unknown_or_unpublished_special_is_404(client):
    me = bidder(client)
    hidden = SpecialFactory(is_published=False)
    for special_id in (hidden.pk, 987_654, 2**64):
        assert_error(me.put(f"/specials/{special_id}/budget", {"max_total": 100_000}), 404, "not_found")
        assert_error(me.get(f"/specials/{special_id}/budget"), 404, "not_found")
        assert_error(me.delete(f"/specials/{special_id}/budget"), 404, "not_found")
    assert not SpecialBudget.objects.exists()


def test_a_budget_is_the_callers_own(client):
    special = SpecialFactory()
    owner, other = bidder(client), bidder(client)
    _budget(owner, special, 400_000)

    assert_error(other.get(f"/specials/{special.pk}/budget"), 404, "not_found")
    assert other.delete(f"/specials/{special.pk}/budget").status_code == 204
    assert owner.get(f"/specials/{special.pk}/budget").json()["max_total"] == 400_000
    assert _budget(other, special, 100_000) == {"max_total": 100_000, "committed": 0}
    assert SpecialBudget.objects.filter(special=special).count() == 2


# Proxies under a budget -----------------------------------------------------------


def test_proxies_stop_where_the_budget_would_be_passed(client):
    special = SpecialFactory()
    first, second = _lots(special, 2)
    me, rival = bidder(client, "预算"), bidder(client, "对手")
    _budget(me, special, 250_000)
    me.put(f"/lots/{first.pk}/auto-bid", {"max_price": 200_000})
    me.put(f"/lots/{second.pk}/auto-bid", {"max_price": 200_000})
    assert me.get(f"/specials/{special.pk}/budget").json()["committed"] == 200_000

    # given the second lot's lead at 100,000, the first may go to 150,000
    assert bid(rival, first.pk, 110_000).json()["lot"]["current_price"] == 120_000
    assert bid(rival, first.pk, 130_000).json()["lot"]["current_price"] == 140_000
    assert me.get(f"/specials/{special.pk}/budget").json() == {"max_total": 250_000, "committed": 240_000}

    # when the rival bids 150,000 the proxy would need 160,000: over the budget, so it holds
    answered = bid(rival, first.pk, 150_000).json()
    assert answered["lot"]["current_price"] == 150_000
    assert _leading(first) == (rival.user.pk, 150_000)
    assert me.get(f"/specials/{special.pk}/budget").json()["committed"] == 100_000
    assert AutoBid.objects.get(user=me.user, lot=first).held_by_budget
    held = Event.objects.get(kind="budget.held", user=me.user, lot=first)
    assert (held.amount, held.data["elsewhere"], held.data["max_total"]) == (160_000, 100_000, 250_000)
    assert SpecialBudget.objects.get(user=me.user).committed == 100_000
    movements = list(Event.objects.filter(kind="budget.committed", user=me.user).order_by("id").values_list("amount", flat=True))
    assert movements == [100_000, 200_000, 220_000, 240_000, 100_000]
    assert max(movements) <= 250_000


def test_a_held_proxy_goes_on_elsewhere_when_the_user_is_outbid_on_another_lot(client, django_capture_on_commit_callbacks):
    special = SpecialFactory()
    first, second = _lots(special, 2)
    me, rival, other = bidder(client), bidder(client), bidder(client)
    _budget(me, special, 200_000)
    me.put(f"/lots/{first.pk}/auto-bid", {"max_price": 300_000})
    me.put(f"/lots/{second.pk}/auto-bid", {"max_price": 100_000})  # leads at its start, never more
    bid(rival, first.pk, 110_000)  # room on the first lot: 200,000 − 100,000; the proxy holds
    assert _leading(first) == (rival.user.pk, 110_000)
    assert AutoBid.objects.get(user=me.user, lot=first).held_by_budget

    # when another bidder takes the second lot, its 100,000 is free and the first lot's proxy answers at once
    with django_capture_on_commit_callbacks(execute=True):
        assert bid(other, second.pk, 110_000).status_code == 201

    assert _leading(second) == (other.user.pk, 110_000)
    assert _leading(first) == (me.user.pk, 120_000)
    assert not AutoBid.objects.get(user=me.user, lot=first).held_by_budget
    assert Event.objects.filter(kind="budget.hold_ended", user=me.user, lot=first, amount=120_000).exists()
    assert me.get(f"/specials/{special.pk}/budget").json()["committed"] == 120_000


def test_a_held_proxy_answers_the_next_bid_on_its_lot_once_there_is_room(client):
    special = SpecialFactory()
    first, second = _lots(special, 2)
    me, rival, other = bidder(client), bidder(client), bidder(client)
    assert bid(me, second.pk, 100_000).status_code == 201  # a plain lead: counted, never refused
    _budget(me, special, 150_000)
    me.put(f"/lots/{first.pk}/auto-bid", {"max_price": 300_000})  # room 50,000: below the start, it holds
    bid(rival, first.pk, 110_000)
    assert _leading(first) == (rival.user.pk, 110_000)

    bid(other, second.pk, 110_000)  # a plain bid over a plain lead: the budget frees, nothing is resumed yet
    assert _leading(first) == (rival.user.pk, 110_000)
    bid(other, first.pk, 120_000)  # the next bid on the first lot is answered
    assert _leading(first) == (me.user.pk, 130_000)


def test_raising_or_withdrawing_the_budget_lets_held_proxies_answer_at_once(client):
    special = SpecialFactory()
    first, second, third = _lots(special, 3)
    me, rival = bidder(client), bidder(client)
    _budget(me, special, 100_000)
    me.put(f"/lots/{first.pk}/auto-bid", {"max_price": 300_000})  # leads at 100,000: the whole budget
    me.put(f"/lots/{second.pk}/auto-bid", {"max_price": 300_000})
    me.put(f"/lots/{third.pk}/auto-bid", {"max_price": 300_000})
    assert (_leading(second), _leading(third)) == ((None, 0), (None, 0))
    bid(rival, second.pk, 100_000)

    assert _budget(me, special, 220_000) == {"max_total": 220_000, "committed": 210_000}
    assert _leading(second) == (me.user.pk, 110_000)
    assert _leading(third) == (None, 0)  # 10,000 of room is below its start price

    assert me.delete(f"/specials/{special.pk}/budget").status_code == 204
    assert _leading(third) == (me.user.pk, 100_000)
    assert not AutoBid.objects.filter(user=me.user, held_by_budget=True).exists()


def test_a_budget_below_what_the_user_leads_at_is_taken_and_holds_their_proxies(client):
    special = SpecialFactory()
    first, second = _lots(special, 2)
    me, rival = bidder(client), bidder(client)
    me.put(f"/lots/{first.pk}/auto-bid", {"max_price": 300_000})
    me.put(f"/lots/{second.pk}/auto-bid", {"max_price": 300_000})
    assert _budget(me, special, 150_000) == {"max_total": 150_000, "committed": 200_000}

    bid(rival, first.pk, 110_000)
    assert _leading(first) == (rival.user.pk, 110_000)  # room 150,000 − 100,000 is below 120,000
    assert me.get(f"/specials/{special.pk}/budget").json()["committed"] == 100_000


def test_plain_bids_are_never_refused_by_the_budget_but_leave_proxies_less_room(client):
    special = SpecialFactory()
    first, second = _lots(special, 2)
    me = bidder(client)
    _budget(me, special, 150_000)
    assert bid(me, second.pk, 100_000).status_code == 201

    response = me.put(f"/lots/{first.pk}/auto-bid", {"max_price": 300_000})
    assert response.status_code == 200, response.content
    assert response.json()["lot"]["current_price"] == 0  # 50,000 of room: below the start price
    assert me.get(f"/lots/{first.pk}").json()["my"]["leading"] is False

    assert bid(me, first.pk, 200_000).status_code == 201  # the bidder's explicit choice
    assert me.get(f"/specials/{special.pk}/budget").json() == {"max_total": 150_000, "committed": 300_000}


def test_two_budgeted_proxies_on_one_lot_each_stop_at_their_own_room(client):
    special = SpecialFactory()
    (lot,) = _lots(special, 1)
    a, b = bidder(client), bidder(client)
    _budget(a, special, 150_000)
    _budget(b, special, 180_000)
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 500_000})
    b.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 500_000})
    # A's room is 150,000, B's 180,000: B wins one step over A's room
    assert _leading(lot) == (b.user.pk, 160_000)
    assert a.get(f"/specials/{special.pk}/budget").json()["committed"] == 0
    assert b.get(f"/specials/{special.pk}/budget").json()["committed"] == 160_000
    assert AutoBid.objects.get(user=a.user).held_by_budget and not AutoBid.objects.get(user=b.user).held_by_budget


def test_after_the_end_a_sold_lot_stays_committed_and_an_unsold_one_does_not(client):
    special = SpecialFactory()
    sold, unsold = _lots(special, 2)
    Lot.objects.filter(pk=unsold.pk).update(reserve_price=500_000)
    me = bidder(client)
    _budget(me, special, 300_000)
    me.put(f"/lots/{sold.pk}/auto-bid", {"max_price": 200_000})
    me.put(f"/lots/{unsold.pk}/auto-bid", {"max_price": 200_000})
    assert me.get(f"/specials/{special.pk}/budget").json()["committed"] == 200_000

    for lot in (sold, unsold):
        hammer(lot)
        lot_settle(lot_id=lot.pk)

    assert (Lot.objects.get(pk=sold.pk).status, Lot.objects.get(pk=unsold.pk).status) == ("sold", "unsold")
    assert me.get(f"/specials/{special.pk}/budget").json() == {"max_total": 300_000, "committed": 100_000}


def test_users_without_a_budget_bid_as_before(client):
    special = SpecialFactory()
    (lot,) = _lots(special, 1)
    a, b = bidder(client), bidder(client)
    _budget(bidder(client), special, 100_000)  # someone else's budget changes nothing here
    a.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 300_000})
    assert bid(b, lot.pk, 150_000).json()["lot"]["current_price"] == 160_000
    assert not Event.objects.filter(kind__startswith="budget.", user__in=[a.user, b.user]).exists()


def test_ops_see_each_budget_read_only_in_the_admin(client, django_user_model):
    special = SpecialFactory(title="春拍")
    (lot,) = _lots(special, 1)
    me = bidder(client, "预算人")
    _budget(me, special, 300_000)
    me.put(f"/lots/{lot.pk}/auto-bid", {"max_price": 200_000})
    ops = Client()
    ops.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345"))

    listing = ops.get(reverse("market_budgets:index"))
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "春拍" in html and "¥3,000" in html and "¥1,000" in html
    budget = SpecialBudget.objects.get(user=me.user)
    assert ops.get(reverse("market_budgets:inspect", args=(budget.pk,))).status_code == 200
    assert ops.get(f"/admin/market/budgets/edit/{budget.pk}/").status_code == 404  # no edit view at all

    # the list reads the leads in its own query: as many statements for twelve budgets as for one
    with CaptureQueriesContext(connection) as one:
        ops.get(reverse("market_budgets:index"))
    for index in range(11):
        _budget(bidder(client, f"买家{index}"), special, 100_000 + index)
    with CaptureQueriesContext(connection) as twelve:
        assert "¥1,000.10" in ops.get(reverse("market_budgets:index")).content.decode()
    assert len(twelve) == len(one), [query["sql"][:90] for query in twelve.captured_queries]
