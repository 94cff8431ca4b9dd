"""The fake WeChat for subscribe messages, wired into settings, and credits granted on both sides."""

import copy

import pytest

from tests.fakes.wechat_messages import FakeWechatMessages

TEMPLATES = {
    "won": "tmpl-won",
    "payment_due": "tmpl-payment-due",
    "refunded": "tmpl-refunded",
    "outbid": "tmpl-outbid",
    "lot_opening": "tmpl-lot-opening",
}


@pytest.fixture
def wechat(settings):
    templates = copy.deepcopy(settings.WECHAT_SUBSCRIBE_TEMPLATES)
    for kind, template_id in TEMPLATES.items():
        templates[kind]["template_id"] = template_id
    fake = FakeWechatMessages(templates={templates[kind]["template_id"]: set(templates[kind]["fields"]) for kind in TEMPLATES})
    fake.start()
    settings.WECHAT_API_BASE = fake.base_url
    settings.WECHAT_APPID = fake.appid
    settings.WECHAT_SECRET = fake.secret
    settings.WECHAT_SUBSCRIBE_TEMPLATES = templates
    yield fake
    fake.stop()


def subscribe(api, wechat: FakeWechatMessages, kind: str, times: int = 1, *, at_wechat: bool = True) -> dict:
    """The user tapped "accept" for ``kind``'s template ``times`` times; the client reported each."""
    template_id = TEMPLATES[kind]
    for _ in range(times):
        answer = api.post("/me/subscriptions", {"results": {template_id: "accept"}})
        assert answer.status_code == 200, answer.content
    if at_wechat:
        wechat.grant(api.user.openid, template_id, times)
    return api.get("/me/subscriptions").json()


def messages_of(wechat: FakeWechatMessages, kind: str, user=None) -> list[dict]:
    return [
        message for message in wechat.messages
        if message["template_id"] == TEMPLATES[kind] and (user is None or message["touser"] == user.openid)
    ]
