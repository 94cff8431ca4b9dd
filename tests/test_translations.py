"""The admin in zh-hans: no project string left in English on the screens; English for who picks it."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from tests.market import bidder, pay, won_order

pytestmark = pytest.mark.django_db

PO = Path(django_settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
SCREENS = (
    "market_orders", "market_deposits", "market_payments", "market_refunds", "market_events", "market_bids",
    "market_budgets", "market_coupons", "market_user_coupons", "market_jobs_schedules", "market_jobs_queued", "market_jobs_succeeded",
    "market_jobs_failed",
)


@pytest.fixture
def compiled(settings, tmp_path):
    """The catalogue as `make` compiles it (msgfmt, from Debian's gettext), whatever is on disk."""
    target = tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(PO, target / "django.po")
    subprocess.run(["msgfmt", "--check-format", "-o", str(target / "django.mo"), str(target / "django.po")], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]  # resets Django's translation caches
    return _msgids()


def _msgids() -> set[str]:
    text = PO.read_text(encoding="utf-8")
    return {match.replace('\\"', '"') for match in re.findall(r'^msgid "((?:[^"\\]|\\.)+)"$', text, flags=re.M)}


class TextNodes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.texts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "code", "pre"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "aria-label", "placeholder") and value:
                self.texts.append(value.strip())

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "pre"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.texts.append(data.strip())


def untranslated(html: str, msgids: set[str]) -> set[str]:
    parser = TextNodes()
    parser.feed(html)
    return {text for text in parser.texts if text in msgids}


@pytest.fixture
def ops(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-12345"))
    return client


def test_every_project_string_in_the_catalogue_is_translated():
    text = PO.read_text(encoding="utf-8")
    empty = re.findall(r'^msgid "((?:[^"\\]|\\.)+)"\nmsgstr ""$', text, flags=re.M)
    assert not empty


def test_the_market_screens_have_no_untranslated_project_string(ops, compiled):
    buyer = bidder(Client(), "阿甲")
    order = won_order(buyer)
    pay(buyer, order)
    urls = [reverse(f"{screen}:index") for screen in SCREENS]
    urls += [
        reverse("market_overview"), reverse("wagtailadmin_home"), reverse("market_orders:inspect", args=(order.pk,)),
        reverse("market_orders:extend", args=(order.pk,)), reverse("market_orders:cancel", args=(order.pk,)),
    ]
    for url in urls:
        response = ops.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not untranslated(html, compiled), (url, untranslated(html, compiled))
    assert "市场概览" in ops.get(reverse("wagtailadmin_home")).content.decode()
    assert "订单" in ops.get(reverse("market_orders:index")).content.decode()


def test_english_stays_for_a_user_who_picks_it(ops, compiled, django_user_model):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(django_user_model.objects.get(username="ops"))
    profile.preferred_language = "en"
    profile.save()
    html = ops.get(reverse("market_overview")).content.decode()
    assert "Orders awaiting payment" in html and "待支付订单" not in html
