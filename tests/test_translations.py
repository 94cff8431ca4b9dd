"""The admin in zh-hans: no project string left in English on any screen; English for who picks it.

The screens are found, not listed: every link of the Market menu (read from
the sidebar Wagtail renders), and every URL of every viewset registered under
it, filled in with a row of this test's market (index, inspect, edit, the
GET half of each action), plus the page editors with their Market tab, the
dashboard and the house rules. A screen fails when a text a person reads
(text nodes, title, aria-label, placeholder, menu labels) holds an English
word that is neither data of the test's rows nor Wagtail's or Django's own.
"""

import json
import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.db import models
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, reverse
from django.utils import timezone
from django_q.models import Task
from wagtail.admin.viewsets import viewsets as registered_viewsets

from auction.models import Lot, Notification, Order, Refund, Special
from auction.services.settlement import lot_settle
from jobs.schedules import sweep_every_minute
from tests.factories import CouponFactory, LotFactory, UserFactory
from tests.market import bid, bidder, hammer, pay, pay_deposit, sweep, won_order
from tests.pages import lot_page, special_page

pytestmark = pytest.mark.django_db

PO = Path(django_settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
SKIPPED_TAGS = ("script", "style", "code", "pre", "template", "textarea")
READ_ATTRIBUTES = ("title", "aria-label", "placeholder")
# What may stay Latin in a Chinese screen: codes, names of things, units people use as they are.
TOKENS = [re.compile(pattern) for pattern in (
    r"https?://\S+", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
    r"\b[a-z_]+(?:\.[a-z_0-9]+)+\b",  # event kinds, task functions
    r"\bwx:\S+", r"\b\w*[0-9_]\w*\b", r"\b[a-z]+(?:-[a-z0-9]+)+\b",  # ids, openids, humanhash task names
    r"Asia/Shanghai",
)]
LATIN_WORDS_KEPT = {"OpenID", "GMV", "CSV", "XLSX", "ID", "URL", "Cron", "qcluster", "Django", "Wagtail", "WeChat"}
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# The site's name is a name ("Auction" in "created in Auction"), not a sentence to translate.
LATIN_WORDS_KEPT |= set(LATIN_WORD.findall(django_settings.WAGTAIL_SITE_NAME))
KEPT = re.compile(r"\b(?:" + "|".join(sorted(LATIN_WORDS_KEPT, key=len, reverse=True)) + r")\b")


def _msgids(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {match.replace('\\"', '"') for match in re.findall(r'^msgid "((?:[^"\\]|\\.)+)"$', text, flags=re.M)}


def _po_msgids(path: Path) -> list[str]:
    """Every msgid of a catalogue, continuation lines joined."""
    text = path.read_text(encoding="utf-8", errors="replace")
    return [
        "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block)).replace('\\"', '"').replace("\\n", " ")
        for block in re.findall(r'^msgid(?:_plural)? ((?:".*"\n)+)', text, flags=re.M)
    ]


def _foreign_text() -> str:
    """The English source strings of Django, Wagtail, Django-Q2 and taggit, one blob: their words, not ours.

    From the English catalogues (which list every string of the release) and the Chinese ones; a
    text of theirs may be cut by markup or filled in with our words ("Sort by '状态' in ascending order.").
    """
    import django
    import django_q
    import taggit
    import wagtail

    found: set[str] = set()
    for package in (Path(module.__file__).parent for module in (django, wagtail, django_q, taggit)):
        for language in ("en", "zh_Hans"):
            for path in package.rglob(f"{language}/LC_MESSAGES/*.po"):
                found.update(" ".join(msgid.split()) for msgid in _po_msgids(path))
    return "\n".join(sorted(found))


@pytest.fixture
def compiled(settings, tmp_path):
    """The catalogue as `make` compiles it (msgfmt, from Debian's gettext), whatever is on disk."""
    target = tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES"
    target.mkdir(parents=True)
    shutil.copy(PO, target / "django.po")
    subprocess.run(["msgfmt", "--check-format", "-o", str(target / "django.mo"), str(target / "django.po")], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale"]  # resets Django's translation caches
    # A msgid shown as it is means it was not translated, unless Chinese keeps it too ("ID").
    text = PO.read_text(encoding="utf-8")
    kept = {msgid for msgid, msgstr in re.findall(r'^msgid "((?:[^"\\]|\\.)+)"\nmsgstr "((?:[^"\\]|\\.)*)"$', text, flags=re.M)
            if msgid == msgstr}
    return _msgids(PO) - kept


class ReadTexts(HTMLParser):
    """What a person reads on the page, and the sidebar's menu labels and links."""

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self.menu: list[dict] = []
        self._skip, self._sidebar = 0, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in SKIPPED_TAGS:
            self._skip += 1
            self._sidebar = tag == "script" and attrs.get("id") == "wagtail-sidebar-props"
        for name in READ_ATTRIBUTES:
            if attrs.get(name):
                self.texts.append(attrs[name].strip())

    def handle_endtag(self, tag):
        if tag in SKIPPED_TAGS:
            self._skip -= 1
            self._sidebar = False

    def handle_data(self, data):
        if self._sidebar:
            self.menu.extend(_menu_items(json.loads(data)))
        elif not self._skip and data.strip():
            self.texts.append(" ".join(data.split()))


def _menu_items(node) -> list[dict]:
    """Telepath-packed sidebar props: every dict with a label and a url, at any depth."""
    if isinstance(node, list):
        return [item for child in node for item in _menu_items(child)]
    if not isinstance(node, dict):
        return []
    # Links carry a url; submenus (Market itself) a name and their children.
    found = [node] if isinstance(node.get("label"), str) and ("url" in node or "name" in node) else []
    return found + [item for child in node.values() for item in _menu_items(child)]


def _is_data(field) -> bool:
    # A field with choices is shown by its label, which must be translated: its stored codes are not data here.
    if field.choices or (field.model._meta.model_name, field.name) == ("event", "actor"):
        return False
    return isinstance(field, (models.CharField, models.TextField, models.JSONField))


def _data_strings() -> list[str]:
    """Every text the test's rows hold (titles, names, task functions, event details...): data, shown as it is."""
    values: set[str] = set()
    for model in apps.get_models():
        if model._meta.app_label not in ("auction", "django_q", "wagtailcore", "wagtailimages", "cms"):
            continue
        names = [field.name for field in model._meta.concrete_fields if _is_data(field)]
        for row in model._default_manager.values_list(*names) if names else ():
            values.update(str(value) for value in row if value and len(str(value)) > 1)
    return sorted(values, key=len, reverse=True)


# What splits a text into the pieces another catalogue's string may have been filled in around.
FILLED_IN = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f0-9]+")


def _is_english(piece: str) -> bool:
    return any(word not in LATIN_WORDS_KEPT for word in LATIN_WORD.findall(piece))


def english_left(texts: list[str], *, data: list[str], foreign: str, catalogue: set[str]) -> set[str]:
    """Texts still in English: a project msgid shown untranslated, or English words of no one's catalogue."""
    left = set()
    for text in texts:
        if text in catalogue:
            left.add(text)
            continue
        # Data and codes are cut out, leaving the pieces of text around them.
        rest = text
        for value in data:
            if value in rest:
                rest = rest.replace(value, "\u4e00")
        for token in TOKENS:
            rest = token.sub("\u4e00", rest)
        pieces = [" ".join(piece.split()) for piece in FILLED_IN.split(KEPT.sub("\u4e00", rest))]
        if any(_is_english(piece) and piece not in foreign for piece in pieces):
            left.add(text)
    return left


@pytest.fixture
def ops(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("运营主管", "ops@example.com", "pw-ops-12345"))
    return client


@pytest.fixture
def market():
    """One of everything the Market screens list, in the states their actions apply to."""
    # A lot page sold through bidding: the Market tab shows price, winner, deposits, order.
    special = special_page()
    page = lot_page(special)
    Lot.objects.filter(page_id=page.pk).update(status="bidding")
    Special.objects.filter(page_id=special.pk).update(starts_at=timezone.now() - timedelta(minutes=5))
    lot = Lot.objects.get(page_id=page.pk)
    winner, loser = bidder(Client(), "阿甲"), bidder(Client(), "贝乙")
    for api in (winner, loser):
        pay_deposit(api, lot_id=lot.pk)
    assert bid(loser, lot.pk, 100_000).status_code == 201
    assert bid(winner, lot.pk, 110_000).status_code == 201
    hammer(lot)
    lot_settle(lot_id=lot.pk)
    sweep()
    sold = Order.objects.get(lot=lot)
    out_trade_no = pay(winner, sold).json()["payment"]["out_trade_no"]
    assert winner.post(f"/payments/sandbox/{out_trade_no}/succeed").status_code == 200
    # An order still awaiting payment (extend, cancel), a refund that failed (retry).
    pending = won_order(bidder(Client(), "丙丁"))
    refund = Refund.objects.first()
    Refund.objects.filter(pk=refund.pk).update(status="failed", last_error="FREQUENCY_LIMITED")
    # A failed message (resend), a failed task (retry), the core schedules.
    Notification.objects.create(
        user=winner.user, kind="won", object_id=sold.pk, lot=lot, not_before=timezone.now(), status="failed", errcode=43101,
        last_error="user refuse", template_id="tmpl-won",
    )
    Task.objects.create(
        id="f00d", name="sweep-failed", func="jobs.tasks.sweep", started=timezone.now(), stopped=timezone.now(),
        success=False, result="Traceback (most recent call last):\n  boom\nValueError: 坏了",
    )
    Task.objects.create(
        id="beef", name="sweep-done", func="jobs.tasks.sweep", started=timezone.now(), stopped=timezone.now(), success=True, result="0",
    )
    sweep_every_minute()
    # A coupon claimed, a bidder barred, an unsold lot page to re-auction into a special not yet bidding.
    coupon = CouponFactory()
    assert winner.post(f"/coupons/{coupon.pk}/claim").status_code == 201
    barred = UserFactory(nickname="戊己", barred_at=timezone.now())
    unsold_page = lot_page(special_page(title="秋拍"), title="粉彩盘")
    Lot.objects.filter(page_id=unsold_page.pk).update(status="unsold")
    special_page(title="冬拍", preview_at=timezone.now() + timedelta(days=1), starts_at=timezone.now() + timedelta(days=2),
                 ends_at=timezone.now() + timedelta(days=3))
    return {
        "lot_page": page, "special_page": special, "sold": sold, "pending": pending, "refund": refund, "barred": barred,
        "unsold": Lot.objects.get(page_id=unsold_page.pk), "factory_lot": LotFactory(),
    }


def _urls(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _urls(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield pattern.name


def _pk_for(viewset, url_name: str, market: dict):
    """The row an action of ``viewset`` applies to (a failed refund for retry, ...), else its first row."""
    model = viewset.model
    if model is Order:
        return (market["pending"] if url_name in ("extend", "cancel") else market["sold"]).pk
    if model is Refund:
        return market["refund"].pk
    if model is Notification:
        return Notification.objects.filter(status="failed").values_list("pk", flat=True).first()
    return model._default_manager.values_list("pk", flat=True).first()


def market_screens(market: dict) -> list[str]:
    """Every GET URL of every viewset under the Market menu, with a row where it takes one."""
    urls = []
    for viewset in registered_viewsets.viewsets:
        if not (getattr(viewset, "name", "") or "").startswith("market_"):
            continue
        for url_name in _urls(viewset.get_urlpatterns()):
            if url_name == "index_results":
                continue
            name = viewset.get_url_name(url_name)
            try:
                urls.append(reverse(name))
            except NoReverseMatch:
                pk = _pk_for(viewset, url_name, market)
                if pk is not None:
                    urls.append(reverse(name, args=(pk,)))
    return urls


def other_screens(market: dict) -> list[str]:
    page, special = market["lot_page"], market["special_page"]
    return [
        reverse("wagtailadmin_home"), reverse("market_overview"),
        reverse("wagtailadmin_pages:edit", args=(page.pk,)), reverse("wagtailadmin_pages:edit", args=(special.pk,)),
        reverse("wagtailadmin_pages:add", args=("cms", "lotpage", special.pk)),
        reverse("wagtailadmin_pages:add", args=("cms", "specialpage", special.get_parent().pk)),
        reverse("house_rules_relist", args=(market["unsold"].pk,)), reverse("house_rules_bar_lift", args=(market["barred"].pk,)),
    ]


def test_every_project_string_in_the_catalogue_is_translated():
    text = PO.read_text(encoding="utf-8")
    empty = re.findall(r'^msgid "((?:[^"\\]|\\.)+)"\nmsgstr ""$', text, flags=re.M)
    assert not empty


def test_every_admin_screen_this_project_adds_reads_in_chinese(ops, compiled, market):
    foreign = _foreign_text()
    home = ReadTexts()
    home.feed(ops.get(reverse("wagtailadmin_home")).content.decode())
    market_menu = [item for item in home.menu if item.get("url", "").startswith(("/admin/market", "/admin/house-rules"))]
    assert len(market_menu) >= 15, [item["label"] for item in market_menu]
    urls = sorted({item["url"] for item in market_menu} | set(market_screens(market)) | set(other_screens(market)))
    data = _data_strings()
    failures = {}
    menu_left = english_left([item["label"] for item in home.menu], data=data, foreign=foreign, catalogue=compiled)
    if menu_left:
        failures["menu"] = menu_left
    for url in urls:
        response = ops.get(url)
        if response.status_code == 405:  # a POST-only action: its screen is the inspect view's button
            continue
        assert response.status_code == 200, (url, response.status_code)
        page = ReadTexts()
        page.feed(response.content.decode())
        left = english_left(page.texts, data=data, foreign=foreign, catalogue=compiled)
        if left:
            failures[url] = left
    assert not failures, json.dumps({url: sorted(texts) for url, texts in failures.items()}, ensure_ascii=False, indent=1)
    assert len(urls) >= 40, urls


def test_validation_messages_read_in_chinese(ops, compiled, market):
    # A coupon form refused, a lift without a reason, a relist below the floor: the errors are Chinese too.
    foreign = _foreign_text()
    refused = ops.post(reverse("market_coupons:add"), {"title": "满减", "amount": "0", "total": "0"})
    lift = ops.post(reverse("house_rules_bar_lift", args=(market["barred"].pk,)), {"reason": ""})
    for response in (refused, lift):
        assert response.status_code == 200
        page = ReadTexts()
        page.feed(response.content.decode())
        assert not english_left(page.texts, data=_data_strings(), foreign=foreign, catalogue=compiled)
    assert "减免金额必须大于" in refused.content.decode()


def test_english_stays_for_a_user_who_picks_it(ops, compiled, django_user_model):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(django_user_model.objects.get(username="运营主管"))
    profile.preferred_language = "en"
    profile.save()
    html = ops.get(reverse("market_overview")).content.decode()
    assert "Orders awaiting payment" in html and "待支付订单" not in html
    deposits = ops.get(reverse("market_deposits:index")).content.decode()
    assert "Deposits" in deposits


def test_the_contract_words_name_the_statuses(compiled):
    from django.utils import translation

    from auction.models import DepositStatus, OrderStatus, PaymentStatus, RefundStatus

    with translation.override("zh-hans"):
        assert [str(OrderStatus(value).label) for value in ("pending_payment", "paid", "overdue")] == ["待支付", "已支付", "逾期未付款"]
        assert [str(DepositStatus(value).label) for value in ("held", "refunded", "forfeited")] == ["保证金冻结中", "已退还", "已扣除"]
        assert str(RefundStatus.SUCCEEDED.label) == "已退还" and str(PaymentStatus.PAID.label) == "已支付"
    with translation.override("en"):
        assert str(OrderStatus.PENDING_PAYMENT.label) == "awaiting payment"


def test_the_commands_people_read_speak_the_house_language(compiled, settings, tmp_path, monkeypatch):
    from io import StringIO

    from django.core.management import CommandError, call_command

    monkeypatch.delenv("AUCTION_ADMIN_USERNAME", raising=False)
    monkeypatch.delenv("AUCTION_ADMIN_PASSWORD", raising=False)
    settings.VAR_DIR = tmp_path / "var"
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert out.getvalue().startswith("Wagtail 管理后台：") and " 用户 admin 密码 " in out.getvalue()
    special_page()
    out = StringIO()
    call_command("demo", stdout=out)
    assert out.getvalue().strip() == "demo：目录非空，未生成演示数据"
    bad = tmp_path / "catalog.csv"
    bad.write_text("special,preview_at,starts_at,ends_at,lot,start_price\n春拍,昨天,2030-05-01 10:00,2030-05-01 20:00,瓷瓶,0\n", encoding="utf-8")
    errors = StringIO()
    with pytest.raises(CommandError, match="未导入任何内容"):
        call_command("import_catalog", str(bad), stdout=StringIO(), stderr=errors)
    assert "第 2 行：preview_at：" in errors.getvalue() and "起拍价必须大于 0。" in errors.getvalue()
