"""Subscribe messages end to end: from the event that causes each, through the
outbox and the sending job, to a real local HTTP fake of WeChat."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from auction.models import Lot, Notification, Order, Special, SubscriptionCredit
from auction.services.notifications import notifications_failed_count, notifications_send
from auction.services.settlement import special_advance
from jobs import tasks
from tests.conftest import assert_error
from tests.factories import LotFactory, SpecialFactory
from tests.market import bid, bidder, hammer, pay, pay_deposit, sweep_until_quiet, won_order
from tests.notify_helpers import TEMPLATES, messages_of, subscribe

pytestmark = pytest.mark.django_db


def _statuses(kind: str) -> list[str]:
    return list(Notification.objects.filter(kind=kind).order_by("pk").values_list("status", flat=True))


# --- Credits ------------------------------------------------------------------

def test_each_accept_is_one_credit_and_ban_stops_the_kind_until_the_next_accept(client, wechat):
    # given
    api = bidder(client)
    # when
    answer = api.post("/me/subscriptions", {"results": {"tmpl-won": "accept", "tmpl-outbid": "accept", "unknown": "accept"}})
    api.post("/me/subscriptions", {"results": {"tmpl-won": "accept", "tmpl-outbid": "reject"}})
    # then
    assert answer.status_code == 200
    mine = api.get("/me/subscriptions").json()
    assert mine["templates"] == TEMPLATES
    assert mine["credits"] == {"won": 2, "payment_due": 0, "refunded": 0, "outbid": 1, "lot_opening": 0}
    banned = api.post("/me/subscriptions", {"results": {"tmpl-won": "ban"}}).json()
    assert banned["credits"]["won"] == 0
    assert api.post("/me/subscriptions", {"results": {"tmpl-won": "accept"}}).json()["credits"]["won"] == 3


def test_subscriptions_need_a_token_and_a_bounded_body(api, user_api):
    assert_error(api.get("/me/subscriptions"), 401, "unauthenticated")
    assert_error(user_api.post("/me/subscriptions", {"results": {"x" * 65: "accept"}}), 422, "validation_error")
    assert_error(user_api.post("/me/subscriptions", {"results": ["accept"]}), 422, "validation_error")


# --- won and payment_due ------------------------------------------------------

def test_the_winner_gets_won_once_with_the_amount_due_and_the_deadline(client, wechat, settings):
    # given a winner who accepted the won template
    winner = bidder(client)
    subscribe(winner, wechat, "won")
    # when the lot is settled and the job runs twice
    order = won_order(winner, price=120_050, title="清 乾隆 青花缠枝莲纹赏瓶")
    first, second = tasks.notifications_send(), tasks.notifications_send()
    # then one message, in yuan and Shanghai time, opening the order page
    [message] = messages_of(wechat, "won", winner.user)
    deadline = timezone.localtime(order.pay_deadline)
    assert message["data"] == {
        "thing1": "清 乾隆 青花缠枝莲纹赏瓶", "amount2": "¥1200.50",
        "time3": f"{deadline.year}年{deadline.month}月{deadline.day}日 {deadline:%H:%M}", "thing4": "恭喜得标，请在截止时间前付款",
    }
    assert message["page"] == f"pages/order/index?no={order.order_no}"
    assert first["sent"] == 1 and "sent" not in second
    assert winner.get("/me/subscriptions").json()["credits"]["won"] == 0  # spent on success


def test_payment_due_goes_before_the_deadline_unless_paid(client, wechat):
    # given two winners with a payment_due credit each; one of them pays
    payer, late = bidder(client), bidder(client)
    for api in (payer, late):
        subscribe(api, wechat, "payment_due")
    paid_order, unpaid_order = won_order(payer), won_order(late)
    assert pay(payer, paid_order).status_code == 200
    from auction.services.payments import payment_apply_success

    payment = paid_order.payments.get()
    payment_apply_success(out_trade_no=payment.out_trade_no, transaction_id="t-paid", amount=payment.amount)
    # when the job runs now, and then two hours before the deadline
    notifications_send()
    assert not messages_of(wechat, "payment_due")
    reminder_time = unpaid_order.pay_deadline - timedelta(seconds=7200) + timedelta(seconds=1)
    notifications_send(now=reminder_time)
    notifications_send(now=reminder_time + timedelta(minutes=1))
    # then only the unpaid one is reminded, once
    [message] = messages_of(wechat, "payment_due")
    assert message["touser"] == late.user.openid
    assert message["data"]["thing4"].startswith("付款截止前约2小时")
    assert Notification.objects.get(kind="payment_due", user=payer.user).status == "skipped"


# --- refunded -----------------------------------------------------------------

def test_a_loser_hears_when_the_deposit_refund_completes(client, wechat):
    # given two bidders with deposits; the loser accepted "refunded"
    lot = LotFactory(start_price=100_000, deposit=20_000, title="宋 汝窑天青釉洗")
    winner, loser = bidder(client), bidder(client)
    subscribe(loser, wechat, "refunded")
    pay_deposit(winner, lot_id=lot.pk)
    pay_deposit(loser, lot_id=lot.pk)
    bid(loser, lot.pk, 100_000)
    bid(winner, lot.pk, 110_000)
    hammer(lot)
    # when the refund goes through (submitted, then completed), and the job runs
    sweep_until_quiet()
    assert not Notification.objects.filter(kind="refunded").exists() or _statuses("refunded") == ["pending"]
    notifications_send()
    sweep_until_quiet()
    notifications_send()
    # then
    [message] = messages_of(wechat, "refunded", loser.user)
    assert message["data"]["thing1"] == "宋 汝窑天青釉洗"
    assert message["data"]["amount2"] == "¥200"
    assert message["page"] == f"pages/lot/index?id={lot.pk}"


# --- lot_opening --------------------------------------------------------------

def test_lot_opening_goes_to_those_who_asked_when_bidding_opens(client, wechat):
    # given a lot in preview; one user asks to be reminded, another asks and withdraws
    now = timezone.now()
    special = SpecialFactory(preview_at=now - timedelta(hours=1), starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=3))
    lot = LotFactory(special=special, start_price=880_000)
    keen, fickle, other = bidder(client), bidder(client), bidder(client)
    for api in (keen, fickle, other):
        subscribe(api, wechat, "lot_opening")
    assert keen.put(f"/lots/{lot.pk}/remind").status_code == 204
    assert keen.put(f"/lots/{lot.pk}/remind").status_code == 204
    assert fickle.put(f"/lots/{lot.pk}/remind").status_code == 204
    assert fickle.delete(f"/lots/{lot.pk}/remind").status_code == 204
    special_advance(special_id=special.pk)  # still preview: nothing
    notifications_send()
    assert not wechat.messages
    # when bidding opens (the start job, then the sweep again) and the job runs twice
    Special.objects.filter(pk=special.pk).update(starts_at=now - timedelta(seconds=1))
    special_advance(special_id=special.pk)
    special_advance(special_id=special.pk)
    notifications_send()
    notifications_send()
    # then only the user who asked hears, once
    [message] = messages_of(wechat, "lot_opening")
    assert message["touser"] == keen.user.openid
    assert message["data"]["amount3"] == "¥8800"
    assert message["page"] == f"pages/lot/index?id={lot.pk}"


def test_a_reminder_is_refused_once_bidding_has_opened(client, wechat):
    lot = LotFactory()
    assert_error(bidder(client).put(f"/lots/{lot.pk}/remind"), 409, "lot_not_open")
    assert_error(bidder(client).put("/lots/999999/remind"), 404, "not_found")


# --- outbid -------------------------------------------------------------------

def _outbid_setup(client, wechat, credits: int = 3):
    lot = LotFactory(start_price=100_000, deposit=0, title="明 宣德 铜鎏金佛像")
    first, second = bidder(client), bidder(client)
    subscribe(first, wechat, "outbid", credits)
    return lot, first, second


def test_an_outbid_bidder_hears_at_most_once_per_lot_in_ten_minutes(client, wechat):
    # given A bids, B outbids A
    lot, a, b = _outbid_setup(client, wechat)
    bid(a, lot.pk, 100_000)
    bid(b, lot.pk, 110_000)
    # when the job runs (twice)
    notifications_send()
    notifications_send()
    # then A hears once, with the price now
    [message] = messages_of(wechat, "outbid", a.user)
    assert message["data"]["amount2"] == "¥1100"
    assert message["page"] == f"pages/lot/index?id={lot.pk}"
    # when A leads again and B outbids again within ten minutes
    bid(a, lot.pk, 120_000)
    bid(b, lot.pk, 130_000)
    notifications_send()
    # then nothing more until the ten minutes have passed, then one message
    assert len(messages_of(wechat, "outbid", a.user)) == 1
    notifications_send(now=timezone.now() + timedelta(minutes=10, seconds=1))
    assert [m["data"]["amount2"] for m in messages_of(wechat, "outbid", a.user)] == ["¥1100", "¥1300"]
    assert not messages_of(wechat, "outbid", b.user)


def test_an_outbid_user_leading_again_before_sending_gets_nothing(client, wechat):
    # given A is outbid, the outbid is derived, and A leads again before it is sent
    lot, a, b = _outbid_setup(client, wechat)
    bid(a, lot.pk, 100_000)
    bid(b, lot.pk, 110_000)
    from auction.services.notifications import outbid_derive

    assert outbid_derive() == 1
    assert bid(a, lot.pk, 120_000).status_code == 201
    # when the job runs
    notifications_send()
    # then A gets nothing and keeps the credit
    assert not messages_of(wechat, "outbid")
    assert Notification.objects.get(kind="outbid", user=a.user).last_error == "leading again"
    assert a.get("/me/subscriptions").json()["credits"]["outbid"] == 3


def test_a_bidder_outbid_and_leading_again_between_runs_gets_nothing(client, wechat):
    lot, a, b = _outbid_setup(client, wechat)
    bid(a, lot.pk, 100_000)
    bid(b, lot.pk, 110_000)
    assert bid(a, lot.pk, 120_000).status_code == 201
    notifications_send()
    assert not messages_of(wechat, "outbid", a.user)
    assert not Notification.objects.filter(user=a.user).exists()


# --- credits, tokens, failures ------------------------------------------------

def test_no_credit_is_skipped_and_credits_of_other_kinds_are_kept(client, wechat):
    # given a winner who accepted "won" but never "payment_due"... and an outbid they had no credit for
    winner, rival = bidder(client), bidder(client)
    subscribe(winner, wechat, "won")
    lot = LotFactory(start_price=100_000, deposit=0)
    bid(winner, lot.pk, 100_000)
    bid(rival, lot.pk, 110_000)
    notifications_send()
    # then the outbid is skipped without asking WeChat, and the won credit is still there
    assert _statuses("outbid") == ["skipped"]
    assert not wechat.send_requests
    assert winner.get("/me/subscriptions").json()["credits"]["won"] == 1
    # when the user wins another lot, the won credit is spent on that
    won_order(winner)
    notifications_send()
    assert len(messages_of(wechat, "won", winner.user)) == 1


def test_wechat_saying_43101_skips_the_message_and_zeroes_the_count(client, wechat):
    # given the client reported an accept WeChat never registered
    winner = bidder(client)
    subscribe(winner, wechat, "won", at_wechat=False)
    won_order(winner)
    # when
    notifications_send()
    # then
    notification = Notification.objects.get(kind="won")
    assert (notification.status, notification.errcode) == ("skipped", 43101)
    assert SubscriptionCredit.objects.get(user=winner.user, template_id="tmpl-won").credits == 0


def test_a_shared_template_keeps_its_last_credit_for_the_more_important_kinds(client, wechat, settings):
    # given outbid and won share one template, and the user has one credit on it
    settings.WECHAT_SUBSCRIBE_TEMPLATES["outbid"] = dict(settings.WECHAT_SUBSCRIBE_TEMPLATES["won"])
    wechat.templates["tmpl-won"] = set(settings.WECHAT_SUBSCRIBE_TEMPLATES["won"]["fields"])
    a, b = bidder(client), bidder(client)
    a.post("/me/subscriptions", {"results": {"tmpl-won": "accept"}})
    wechat.grant(a.user.openid, "tmpl-won", 1)
    lot = LotFactory(start_price=100_000, deposit=0)
    bid(a, lot.pk, 100_000)
    bid(b, lot.pk, 110_000)
    # when the outbid comes first
    notifications_send()
    # then it is held back, and the credit is there for the win
    assert Notification.objects.get(kind="outbid").last_error.startswith("credit kept")
    won_order(a)
    notifications_send()
    assert [m["data"]["thing4"] for m in wechat.messages] == ["恭喜得标，请在截止时间前付款"]


def test_a_token_expiring_mid_run_is_refreshed_once(client, wechat):
    # given two winners, and a token already cached
    winners = [bidder(client) for _ in range(3)]
    for api in winners:
        subscribe(api, wechat, "won")
    won_order(winners[0])
    notifications_send()
    assert len(wechat.token_requests) == 1
    for api in winners[1:]:
        won_order(api)
    # when WeChat's token lapses before the next run
    wechat.expire_tokens()
    notifications_send()
    # then one refresh (forced) serves the rest of the run
    assert len(wechat.messages) == 3
    assert len(wechat.token_requests) == 2 and wechat.token_requests[1].get("force_refresh") is True


def test_the_token_is_cached_with_its_expiry_and_refreshed_before_it_runs_out(client, wechat):
    from auction.gateways import wechat_subscribe

    wechat.expires_in = 400  # WeChat hands out one with 400 s left
    first = wechat_subscribe.access_token()
    assert wechat_subscribe.access_token() == first
    assert len(wechat.token_requests) == 1
    wechat.expires_in = 7200
    from django.core.cache import cache

    cached = cache.get(wechat_subscribe.TOKEN_KEY)
    cache.set(wechat_subscribe.TOKEN_KEY, {**cached, "expires_at": cached["expires_at"] - 200}, 600)  # 200 s left: inside the margin
    wechat.tokens.clear()  # WeChat's next answer is a new token
    assert wechat_subscribe.access_token() != first
    assert len(wechat.token_requests) == 2


def test_wechat_down_is_retried_with_backoff_then_fails_visibly(client, wechat, settings, admin_client):
    # given WeChat answers 503 to everything
    settings.AUCTION_NOTIFY_MAX_ATTEMPTS = 3
    winner = bidder(client)
    subscribe(winner, wechat, "won")
    won_order(winner)
    wechat.down_for = -1
    now = timezone.now()
    # when the job runs, each time after the backoff
    notifications_send(now=now)
    notification = Notification.objects.get(kind="won")
    assert notification.status == "pending" and notification.not_before == now + timedelta(seconds=30)
    notifications_send(now=now + timedelta(seconds=29))  # not yet
    assert Notification.objects.get(kind="won").attempts == 1
    notifications_send(now=now + timedelta(seconds=31))
    assert Notification.objects.get(kind="won").not_before == now + timedelta(seconds=31 + 60)
    notifications_send(now=now + timedelta(seconds=92))
    # then it failed, visibly, the credit is kept
    notification = Notification.objects.get(kind="won")
    assert (notification.status, notification.attempts) == ("failed", 3)
    assert notification.last_error == "0: HTTP 503"
    assert notifications_failed_count() == 1
    assert winner.get("/me/subscriptions").json()["credits"]["won"] == 1
    listing = admin_client.get("/admin/market/notifications/?status=failed")
    assert listing.status_code == 200
    assert "HTTP 503" in listing.content.decode()
    # when WeChat is back and ops resend
    wechat.down_for = 0
    resent = admin_client.post(f"/admin/market/notifications/resend/{notification.pk}/")
    assert resent.status_code == 302
    notifications_send()
    assert Notification.objects.get(kind="won").status == "sent"
    assert len(wechat.messages) == 1


def test_the_access_token_is_never_logged(client, wechat, caplog):
    caplog.set_level(logging.DEBUG)
    winner = bidder(client)
    subscribe(winner, wechat, "won")
    won_order(winner)
    wechat.expire_tokens()
    notifications_send()
    wechat.down_for = -1
    won_order(winner)
    notifications_send()
    tokens = list(wechat.tokens)
    assert tokens
    logged = caplog.text + "".join(Notification.objects.values_list("last_error", flat=True))
    assert not [token for token in tokens if token in logged]


def test_long_texts_are_cut_to_each_key_limit_and_wechat_takes_them(client, wechat):
    winner = bidder(client)
    subscribe(winner, wechat, "won")
    won_order(winner, price=12_345_678_901, title="清代 御制珐琅彩 缠枝花卉纹 天球瓶 一对\n附原装木匣及旧藏标签")
    notifications_send()
    [message] = messages_of(wechat, "won")
    assert len(message["data"]["thing1"]) <= 20 and message["data"]["thing1"].endswith("…")
    assert message["data"]["amount2"] == "¥123456789"  # ten digits at most: the fen go


def test_a_send_interrupted_halfway_fails_visibly_instead_of_sending_twice(client, wechat):
    winner = bidder(client)
    subscribe(winner, wechat, "won")
    won_order(winner)
    Notification.objects.filter(kind="won").update(status="sending", lease_until=timezone.now() - timedelta(seconds=1))
    notifications_send()
    notification = Notification.objects.get(kind="won")
    assert notification.status == "failed" and "interrupted" in notification.last_error
    assert not wechat.messages


def test_the_notifications_job_is_scheduled_every_minute(db):
    from django_q.models import Schedule

    from jobs import schedules

    schedules.notifications_every_minute()
    schedules.notifications_every_minute()
    assert Schedule.objects.filter(name=schedules.NOTIFICATIONS_NAME, func="jobs.tasks.notifications_send").count() == 1


def test_nothing_is_queued_for_kinds_without_a_template(client, settings):
    winner = bidder(client)
    won_order(winner)
    assert not Notification.objects.exists()
    assert Order.objects.count() == 1 and Lot.objects.count() == 1
