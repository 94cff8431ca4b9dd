"""Two job clusters at once (threads, each with its own connection): every
message goes once, every credit is spent once, the token is fetched once."""

import pytest
from django.core.cache import cache

from auction.gateways import wechat_subscribe
from auction.models import Notification, SubscriptionCredit
from auction.services.notifications import notifications_send, outbid_derive
from auction.services.tokens import token_issue
from tests.conftest import ApiClient
from tests.factories import LotFactory, UserFactory
from tests.market import won_order
from tests.notify_helpers import TEMPLATES, subscribe
from tests.threads import run_threads

pytestmark = pytest.mark.django_db(transaction=True)


def _bidder(client) -> ApiClient:
    user = UserFactory()
    api = ApiClient(client, token=token_issue(user=user))
    api.user = user
    return api


def test_two_clusters_sending_at_once_send_each_message_once(client, wechat):
    # given five winners and a lot with outbid bidders, each with two credits of each kind
    winners = [_bidder(client) for _ in range(5)]
    for api in winners:
        subscribe(api, wechat, "won", 2)
        subscribe(api, wechat, "outbid", 2)
    for api in winners:
        won_order(api)
    lot = LotFactory(start_price=100_000, deposit=0)
    price = 100_000
    for api in winners:
        assert api.post(f"/lots/{lot.pk}/bids", {"price": price}).status_code == 201
        price += 10_000
    # when four workers run the job at the same moment, twice each
    results = run_threads(4, lambda index: [notifications_send(), notifications_send()])
    # then
    assert not [r for r in results if isinstance(r, BaseException)], results
    won = [m["touser"] for m in wechat.messages if m["template_id"] == TEMPLATES["won"]]
    outbid = [m["touser"] for m in wechat.messages if m["template_id"] == TEMPLATES["outbid"]]
    assert sorted(won) == sorted(api.user.openid for api in winners)
    assert sorted(outbid) == sorted(api.user.openid for api in winners[:-1])  # all but the leader
    assert set(Notification.objects.filter(kind__in=("won", "outbid")).values_list("status", flat=True)) == {"sent"}
    credits = SubscriptionCredit.objects.values_list("user__openid", "template_id", "credits")
    leader = winners[-1].user.openid
    assert sorted(credits) == sorted(
        (api.user.openid, template, 2 if (api.user.openid, template) == (leader, TEMPLATES["outbid"]) else 1)
        for api in winners for template in (TEMPLATES["won"], TEMPLATES["outbid"])
    )


def test_outbids_derived_by_two_clusters_at_once_are_queued_once(client, wechat):
    lot = LotFactory(start_price=100_000, deposit=0)
    bidders = [_bidder(client) for _ in range(4)]
    price = 100_000
    for api in bidders * 2:
        assert api.post(f"/lots/{lot.pk}/bids", {"price": price}).status_code == 201
        price += 10_000
    results = run_threads(4, lambda index: outbid_derive())
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(results) == 3
    assert Notification.objects.filter(kind="outbid").count() == 3


def test_one_token_refresh_at_a_time_across_workers(wechat, db):
    cache.delete(wechat_subscribe.TOKEN_KEY)
    tokens = run_threads(6, lambda index: wechat_subscribe.access_token())
    assert not [t for t in tokens if isinstance(t, BaseException)], tokens
    assert len(set(tokens)) == 1
    assert len(wechat.token_requests) == 1
