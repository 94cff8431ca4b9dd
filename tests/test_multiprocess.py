"""The multi-process proof (issue 19): the seed's whole journey on production's
shape, on one box, with one of each process kind killed half way.

Two gunicorn masters on their own ports behind one nginx (the shipped
deploy/nginx.conf, both in its upstreams), two uvicorn socket processes
(watchers on each, and through nginx), two job clusters (``manage.py
runjobs``) on one Redis queue, all on the test database (MariaDB) and Redis:

1. the catalog is imported with its images (``manage.py import_catalog``, a
   process of its own), and ops put a coupon on the special;
2. what no process may keep to itself is shown shared: a session made on one
   master opens the admin on the other, wrong passwords counted on both lock
   the login, one throttle counts the requests sent to either, a keyed bid
   answered by one is replayed by the other, and two claims of the coupon's
   last one on the two masters give one;
3. deposits, then a bidding war sent through nginx (both masters take bids),
   watched on both socket processes; mid-war one gunicorn master and one
   uvicorn are SIGKILLed with their workers, and a job cluster before the
   hammer;
4. the survivors settle both lots, refund the losers, take A's payment with
   the coupon, and let B's order on the second lot go overdue.

At the end every invariant holds: one order per sold lot, one refund per
loser, the bid rows are the lot's bid_count and every 201 has its row, the
coupon's issued count is its rows, every exact-time schedule ran once, each
event once. The run prints how long each phase took.

MariaDB + Redis only (real processes on the services, like
tests/test_faults.py); skipped on SQLite with the reason.
"""

import logging
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule, Task

from auction.models import Bid, Coupon, Deposit, Event, Lot, Order, Refund, Special, User, UserCoupon
from tests.factories import CouponFactory, png_file
from tests.journey import (
    WAIT_SECONDS,
    Api,
    ConnectionPeak,
    Journey,
    War,
    admin_login,
    bids_by_master,
    deposit_status,
    login,
    lot_messages,
    media_environment,
    pay_deposit,
    start,
    still_watching,
    watching,
)
from tests.live_stack import Watcher
from tests.stack import spawn, tails

pytestmark = [
    pytest.mark.mariadb,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.mysql" or not settings.REDIS_URL,
        reason="the multi-process proof runs gunicorn, uvicorn and job clusters on MariaDB and Redis: services only",
    ),
    pytest.mark.django_db(transaction=True),
]

# Media on object storage (issue 19 item 1): True passes the AUCTION_MEDIA_STORAGE=s3
# settings to every process, against a moto server this test starts, and checks the
# images are in its bucket. False: media on the local disk every process here shares.
MEDIA_ON_S3 = True
BUCKET = "auction-media"

# From writing the catalog to the hammer: the import, logins, deposits, the war.
LOT_SECONDS = 80
PAY_WINDOW_SECONDS = 25
WAR_SECONDS_BEFORE_KILL = 3
WAR_SECONDS_AFTER_KILL = 3
PASSWORD = "a-long-right-password-4711"
ADDRESS = {"name": "阿甲", "phone": "13800000000", "region": "上海市", "detail": "南京东路 1 号"}
COUPON_AMOUNT = 30_000


# --- 1. the catalog ----------------------------------------------------------------------------------------


def wagtail_root() -> None:
    """The page tree's root, its locale and the root collection, which Wagtail's migrations made: a transactional
    test run before this one flushed every table, theirs too (pytest-django runs them last)."""
    from django.conf import settings as django_settings
    from django.utils.translation import get_supported_language_variant
    from wagtail.models import Collection, Locale, Page

    if Page.get_first_root_node() is None:
        Locale.objects.get_or_create(language_code=get_supported_language_variant(django_settings.LANGUAGE_CODE))
        Page.add_root(instance=Page(title="Root", slug="root"))
    if Collection.get_first_root_node() is None:
        Collection.add_root(name="Root")


def import_catalog(journey: Journey, env: dict[str, str]) -> tuple[Special, Lot, Lot]:
    wagtail_root()
    """The editors' spreadsheet with two images, imported by the command in a process of its own."""
    folder = journey.tmp_path / "catalog"
    folder.mkdir()
    for name, color in (("vase.png", "#1f4e79"), ("plate.png", "#b03a2e")):
        (folder / name).write_bytes(png_file(name, size=(1200, 900), color=color).read())
    now = timezone.localtime()
    preview, starts, ends = (moment.isoformat(timespec="seconds") for moment in
                             (now - timedelta(minutes=2), now - timedelta(minutes=1), now + timedelta(seconds=LOT_SECONDS)))
    special = f"多进程专场 {uuid.uuid4().hex[:6]}"
    rows = [
        "special,preview_at,starts_at,ends_at,special_deposit,extension_seconds,lot,start_price,deposit,increment,image",
        f"{special},{preview},{starts},{ends},0,0,清乾隆 青花缠枝莲纹瓶,1000,500,100,vase.png",
        f"{special},{preview},{starts},{ends},0,0,民国 粉彩花鸟盘,800,400,100,plate.png",
    ]
    (folder / "catalog.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    command = spawn("import", [sys.executable, "manage.py", "import_catalog", str(folder / "catalog.csv"), "--no-progress"],
                    env, journey.tmp_path, signal.SIGTERM)
    command.popen.wait(timeout=120)
    assert command.popen.returncode == 0, command.tail()
    assert "导入 1 个专场、2 件拍品" in command.tail(), command.tail()  # the command speaks LANGUAGE_CODE (zh-hans)
    market = Special.objects.get(title=special)
    first, second = Lot.objects.filter(special=market).order_by("position")
    return market, first, second


# --- 2. nothing one process keeps to itself -----------------------------------------------------------------


def sessions_and_lockouts_are_shared(journey: Journey) -> None:
    web1, web2 = journey.web_urls
    User.objects.create_superuser(username="ops-multi", email="ops@example.com", password=PASSWORD)
    User.objects.create_superuser(username="editor-multi", email="editor@example.com", password=PASSWORD)
    # One cookie jar for both masters (cookies do not tell ports apart), as a browser behind nginx has.
    with httpx.Client(trust_env=False, timeout=15) as browser:
        assert admin_login(browser, web1, "ops-multi", PASSWORD).status_code == 302
        assert browser.get(f"{web2}/admin/").status_code == 200, "the session made on web1 is unknown to web2"
    with httpx.Client(trust_env=False, timeout=15) as browser:
        for attempt in range(settings.AXES_FAILURE_LIMIT):
            wrong = admin_login(browser, journey.web_urls[attempt % 2], "editor-multi", f"guess-{attempt}")
            assert wrong.status_code in (200, 429), wrong.status_code
        locked = admin_login(browser, web2, "editor-multi", PASSWORD)
        assert locked.status_code == 429, "wrong passwords counted on both masters did not lock the login"


def one_throttle_counts_both_masters(journey: Journey, token: str) -> None:
    apis = [Api(url, token) for url in journey.web_urls]
    statuses = [apis[index % 2].post("/orders/20260101NOSUCHORDER0/quote").status_code for index in range(6)]
    assert statuses == [404] * 4 + [429] * 2, statuses  # AUCTION_THROTTLE_QUOTE=4/h over both
    for api in apis:
        api.close()


def a_keyed_bid_is_replayed_by_the_other_master(journey: Journey, token: str, lot: Lot) -> int:
    key = uuid.uuid4().hex
    first = Api(journey.web_urls[0], token).post(f"/lots/{lot.pk}/bids", {"price": lot.start_price}, key=key)
    assert first.status_code == 201, first.text
    again = Api(journey.web_urls[1], token).post(f"/lots/{lot.pk}/bids", {"price": lot.start_price}, key=key)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true", again.text
    assert again.json()["bid"]["id"] == first.json()["bid"]["id"]
    return first.json()["bid"]["id"]


def the_last_coupon_goes_once(journey: Journey, coupon: Coupon, tokens: list[str]) -> list[int]:
    """Two claims of the last one at the same moment, one on each master: one gets it."""
    answers_: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda url=url, token=token: answers_.append(
        Api(url, token).post(f"/coupons/{coupon.pk}/claim"))) for url, token in zip(journey.web_urls, tokens, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(answer.status_code for answer in answers_)
    assert statuses == [201, 409], [answer.text for answer in answers_]
    assert next(a for a in answers_ if a.status_code == 409).json()["code"] == "coupon_sold_out"
    return [answer.json()["id"] for answer in answers_ if answer.status_code == 201]


# --- the proof ----------------------------------------------------------------------------------------------


@pytest.fixture
def journey(transactional_db, tmp_path):
    # Hundreds of polls: keep httpx's line per request out of a failure's report.
    httpx_logger = logging.getLogger("httpx")
    level = httpx_logger.level
    httpx_logger.setLevel(logging.WARNING)
    journey = Journey(tmp_path)
    yield journey
    httpx_logger.setLevel(level)
    journey.stop()
    print(journey.report())
    print(tails(list(journey.procs.values()), 3_000))


def test_the_whole_journey_on_two_of_each_process_survives_one_of_each_killed(journey):
    env = start(journey, pay_window_seconds=PAY_WINDOW_SECONDS,
                media=media_environment(journey, on_s3=MEDIA_ON_S3, bucket=BUCKET))
    connections = journey.connections = ConnectionPeak()
    journey.phase("start 2 gunicorn, 2 uvicorn, 2 runjobs, nginx")

    # 1. the catalog with its images, and ops' coupon for the special (¥300, two to claim)
    special, lot1, lot2 = import_catalog(journey, env)
    coupon = CouponFactory(special=special, amount=COUPON_AMOUNT, total=2, title="多进程专场券")
    journey.phase("import the catalog (manage.py import_catalog)")
    front = journey.nginx.url
    cover = httpx.get(f"{front}/api/v1/lots/{lot1.pk}", trust_env=False, timeout=15).json()["cover"]
    assert cover and cover["width"] == 750, cover
    media_checked(journey, cover["url"])

    # 2. state that every process must see alike
    a, b, c, d = (login(front, name) for name in ("阿甲", "贝乙", "丙丙", "丁丁"))
    deposits = {(name, lot.pk): pay_deposit(api, lot.pk)["id"]
                for name, api, lot in (("a", a, lot1), ("b", b, lot1), ("c", c, lot1), ("a", a, lot2), ("b", b, lot2))}
    sessions_and_lockouts_are_shared(journey)
    one_throttle_counts_both_masters(journey, d.token)
    replayed_bid = a_keyed_bid_is_replayed_by_the_other_master(journey, a.token, lot2)
    assert Api(front, a.token).post(f"/coupons/{coupon.pk}/claim").status_code == 201
    the_last_coupon_goes_once(journey, coupon, [b.token, c.token])
    mine = a.get("/me/coupons?status=unused").json()["items"]
    assert [item["coupon"]["id"] for item in mine] == [coupon.pk]
    journey.phase("deposits (5); sessions, lockout, throttle, idempotency, coupon race")

    # 3. deposits, watchers on both socket processes, and the war
    lots = [lot1.pk, lot2.pk]
    on_live1 = watching(journey, "anonymous on live1", journey.live_urls[0], lots)
    on_live2 = watching(journey, "A on live2", journey.live_urls[1], lots, token=a.token)
    through_nginx = [watching(journey, "B via nginx", front, lots, token=b.token),
                     watching(journey, "anonymous via nginx", front, lots)]
    held = [httpx.get(f"{url}/ws/health", trust_env=False, timeout=5).json()["sockets"] for url in journey.live_urls]
    assert all(count >= 1 for count in held), held
    second_bid = b.post(f"/lots/{lot2.pk}/bids", {"price": b.get(f"/lots/{lot2.pk}").json()["next_min_bid"]})
    assert second_bid.status_code == 201, second_bid.text  # B leads the second lot; A's was replayed above
    journey.phase("4 watchers on both socket processes")
    with War(front, lot1.pk, [a, b, c], lot1.start_price) as war:
        time.sleep(WAR_SECONDS_BEFORE_KILL)
        # mid-war: one gunicorn master and one uvicorn die with their workers, no handler run
        journey.procs["web1"].kill()
        journey.procs["live1"].kill()
        time.sleep(WAR_SECONDS_AFTER_KILL)
    journey.phase(f"the war ({len(war.answers)} bids), web1 and live1 SIGKILLed in it")
    refused = Counter(body.get("code") for _, status, body in war.answers if status != 201)
    assert all(status in (201, 409) for _, status, _ in war.answers), refused
    assert len(war.accepted()) >= 5, f"hardly a war: {len(war.accepted())} bids accepted, {refused}"
    # A makes sure of the first lot
    for _ in range(10):
        price = a.get(f"/lots/{lot1.pk}").json()["next_min_bid"]
        last = a.post(f"/lots/{lot1.pk}/bids", {"price": price})
        if last.status_code == 201 or last.json()["code"] == "already_leading":
            break
    lot1.refresh_from_db()
    assert lot1.leader_id == a_user(a), "A does not lead the first lot"
    # and a job cluster dies before the hammer
    journey.procs["jobs1"].kill()
    ends_at = Lot.objects.get(pk=lot1.pk).ends_at
    assert timezone.now() < ends_at, "the journey took longer than the lots were open: raise LOT_SECONDS"
    served = bids_by_master(journey, lot1.pk)
    assert served["web1"] and served["web2"], f"the war did not reach both masters: {served}"
    on_live1.pump(0.5)
    assert on_live1.closed, "the socket on the killed uvicorn is still open"
    on_live2.pump(0.3)
    assert not on_live2.closed, "the socket on the surviving uvicorn was closed"
    on_live2.send(op="ping")
    watchers = [on_live2, still_watching(journey, on_live1, lots), *(still_watching(journey, w, lots) for w in through_nginx)]

    # 4. the survivors settle both lots at the hammer
    journey.wait("the hammer", lambda: timezone.now() > ends_at, timeout=LOT_SECONDS + 10)
    journey.phase("wait for the hammer; jobs1 SIGKILLed before it")
    won = journey.wait("A's order", lambda: next((o for o in a.get("/orders").json()["items"] if o["lot"]["id"] == lot1.pk), None))
    lost_then_won = journey.wait("B's order", lambda: next(
        (o for o in b.get("/orders").json()["items"] if o["lot"]["id"] == lot2.pk), None))
    assert won["status"] == "pending_payment" and lost_then_won["status"] == "pending_payment"
    for watcher in watchers:
        watcher.wait_for("the first lot sold", lambda m: m["type"] == "lot" and m["lot"]["id"] == lot1.pk
                         and m["lot"]["status"] == "sold")
    # A's own socket, on the surviving process, is told it won: a personal event the job process published
    on_live2.wait_for("A's won", lambda m: m["type"] == "won" and m["lot_id"] == lot1.pk and m["order_no"] == won["order_no"])
    journey.phase("settlement by the surviving cluster, seen by every watcher")

    # A pays with the coupon (what the deposit leaves, less ¥300)
    quote = a.post(f"/orders/{won['order_no']}/quote", {"user_coupon_id": mine[0]["id"]}).json()
    assert quote["coupon_discount"] == COUPON_AMOUNT and quote["amount_due"] == won["amount_due"] - COUPON_AMOUNT, quote
    paying = a.post(f"/orders/{won['order_no']}/pay", {"user_coupon_id": mine[0]["id"], "address": ADDRESS})
    assert paying.status_code == 200 and paying.json()["payment"]["amount"] == quote["amount_due"], paying.text
    paid = a.post(f"/payments/sandbox/{paying.json()['payment']['out_trade_no']}/succeed")
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text
    assert a.get(f"/orders/{won['order_no']}").json()["status"] == "paid"
    losers = [(b, deposits[("b", lot1.pk)]), (c, deposits[("c", lot1.pk)]), (a, deposits[("a", lot2.pk)])]
    for api, deposit_id in losers:
        journey.wait("a loser's deposit refunded", lambda api=api, deposit_id=deposit_id: deposit_status(api, deposit_id) == "refunded")
    journey.phase("A pays with the coupon; three losers refunded")
    # B lets the window pass on the second lot
    journey.wait("B's order overdue", lambda: b.get(f"/orders/{lost_then_won['order_no']}").json()["status"] == "overdue",
                 timeout=PAY_WINDOW_SECONDS + WAIT_SECONDS)
    assert deposit_status(b, deposits[("b", lot2.pk)]) == "forfeited"
    assert deposit_status(a, deposits[("a", lot1.pk)]) == "applied"
    journey.phase("B's order on the second lot overdue")

    # then every invariant holds
    ran_once(journey)
    invariants(lots=[lot1, lot2], coupon=coupon, war=war, replayed_bid=replayed_bid,
               winners={lot1.pk: a_user(a), lot2.pk: a_user(b)},
               loser_deposits={deposit_id for _, deposit_id in losers})
    every_bid_reached_the_socket_that_stayed(on_live2, lot1)
    assert {name for name, proc in journey.procs.items() if proc.is_alive()} == {"web2", "live2", "jobs2"}
    journey.phase("invariants")
    print(f"bids by master (nginx's log): {dict(served)}; answers lost and sent again: {sum(x.retries for x in (a, b, c))}")
    print(f"database connections at most: {connections.stop()} (2 masters x 2 workers, 2 uvicorn, 2 clusters x 2 workers,"
          " and this test's 2)")
    print(journey.report())


def a_user(api: Api) -> int:
    return api.get("/me").json()["id"]


def media_checked(journey: Journey, url: str) -> None:
    """The rendition a web process made is there for anyone: in the bucket, or on the disk nginx serves."""
    if MEDIA_ON_S3:
        assert url.startswith("http://127.0.0.1:") and f"/{BUCKET}/" in url, url
        fetched = httpx.get(url, trust_env=False, timeout=15)
        keys = [item["Key"] for item in journey.s3.client().list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert len(keys) >= 4, keys  # two originals and their renditions (publishing warms them)
    else:
        fetched = httpx.get(journey.nginx.url + "/" + url.split("/", 3)[3], trust_env=False, timeout=15)
    assert fetched.status_code == 200 and fetched.content[:3] == b"\xff\xd8\xff", (url, fetched.status_code)


def ran_once(journey: Journey) -> None:
    """Each exact-time schedule of the journey made one task, which succeeded; none is left due."""
    funcs = ("jobs.tasks.lots_end", "jobs.tasks.special_phase", "jobs.tasks.orders_expire")
    # The monitor saves a result a moment after its task ends.
    journey.wait("the schedules' results", lambda: {f for f in Task.objects.values_list("func", flat=True)} >= set(funcs))
    for func in funcs:
        # A schedule's task is in the schedule's group (its name); one enqueued by a request has none.
        groups = Counter(Task.objects.filter(func=func, group__isnull=False).values_list("group", flat=True))
        assert groups and set(groups.values()) == {1}, (func, groups)
        assert all(Task.objects.filter(func=func).values_list("success", flat=True)), func
    assert not Schedule.objects.filter(schedule_type=Schedule.ONCE, next_run__lte=timezone.now()).exists()
    # two clusters started together wrote the periodic schedules once (auction/migrations/0013)
    names = Counter(Schedule.objects.exclude(name=None).values_list("name", flat=True))
    assert set(names.values()) == {1}, names


def invariants(*, lots: list[Lot], coupon: Coupon, war: War, replayed_bid: int, winners: dict[int, int],
               loser_deposits: set[int]) -> None:
    # one order per sold lot, the winner's
    orders = list(Order.objects.values_list("lot_id", "user_id", "status"))
    assert sorted(orders) == sorted([(lots[0].pk, winners[lots[0].pk], "paid"), (lots[1].pk, winners[lots[1].pk], "overdue")])
    assert dict(Lot.objects.filter(pk__in=[lot.pk for lot in lots]).values_list("pk", "status")) == {
        lots[0].pk: "sold", lots[1].pk: "defaulted"}
    # one refund per loser, succeeded, and none for anyone else
    refunds = Counter(Refund.objects.values_list("payment__deposit_id", flat=True))
    assert set(refunds) == loser_deposits and set(refunds.values()) == {1}, refunds
    assert set(Refund.objects.values_list("status", flat=True)) == {"succeeded"}
    assert set(Deposit.objects.filter(pk__in=loser_deposits).values_list("status", flat=True)) == {"refunded"}
    # the bid rows are the lots' bid_count; every 201 has its row at its price, one row per key
    for lot in lots:
        lot.refresh_from_db()
        assert Bid.objects.filter(lot=lot).count() == lot.bid_count
    accepted = war.accepted()
    rows = dict(Bid.objects.filter(lot=lots[0]).values_list("pk", "price"))
    assert all(rows.get(bid_id) == price for bid_id, price in accepted.values()), "a 201 without its row"
    assert len({bid_id for bid_id, _ in accepted.values()}) == len(accepted), "one bid answered for two keys"
    assert Bid.objects.filter(pk=replayed_bid).count() == 1
    # the coupon: issued is its rows, and A's was used on the order
    coupon.refresh_from_db()
    assert coupon.issued == UserCoupon.objects.filter(coupon=coupon).count() == 2
    assert UserCoupon.objects.get(coupon=coupon, user_id=winners[lots[0].pk]).status == "used"
    # each consequence once
    kinds = Counter(Event.objects.values_list("kind", flat=True))
    expected = {"lot.sold": 2, "order.created": 2, "order.paid": 1, "order.overdue": 1, "lot.defaulted": 1,
                "deposit.refunded": 3, "deposit.forfeited": 1, "deposit.applied": 1}
    assert {kind: kinds[kind] for kind in expected} == expected, kinds


def every_bid_reached_the_socket_that_stayed(watcher: Watcher, lot: Lot) -> None:
    messages = lot_messages(watcher, lot.pk)
    versions = [m["version"] for m in messages]
    assert versions == sorted(versions), versions
    carried = {bid["id"] for m in messages for bid in m["bids"]}
    assert carried == set(Bid.objects.filter(lot=lot).values_list("pk", flat=True))
    assert messages[-1]["lot"]["status"] == "sold" and messages[-1]["lot"]["current_price"] == lot.current_price
