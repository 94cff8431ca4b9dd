"""Settings, read from the environment only (CONTRACT.md, Operations).

With nothing set this is the embedded default: SQLite in ``var/``, the
database as Django-Q2's broker and as the cache, the payment sandbox on.
``DATABASE_URL=mysql://...`` and ``REDIS_URL=redis://...`` switch to the
production engines; ``DJANGO_DEBUG=0`` switches on every deploy safeguard.
"""

import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from project import media

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("AUCTION_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", True)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG=0")
    SECRET_KEY = "embedded-default-not-secret-" + "x" * 40

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "auction",
    "cms",
    "api",
    "jobs",
    # Ninja serves its Swagger UI assets from static files only when installed;
    # otherwise /api/v1/docs loads them from a CDN and is blank offline.
    "ninja",
    "wagtail.contrib.forms",
    "wagtail.contrib.settings",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django_q",
    "axes",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    # Outermost: counts every answer, the refusals of the middleware below too (project/metrics.py).
    "project.metrics.RequestMetricsMiddleware",
    # First: a bad Host or an oversized body on /api/ is refused before anything reads them.
    "api.middleware.RequestEdgesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Outside CommonMiddleware, so it also sees the slash redirects it makes.
    "api.middleware.ContractErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as axes asks: turns a locked-out login into its refusal (HTTP 429).
    "axes.middleware.AxesMiddleware",
]
# /api/ is served by its own handler (project/wsgi.py) with only these: it
# authenticates by bearer token, so sessions, CSRF, users, messages and frame
# options would only cost every bid their time.
API_PATH_PREFIX = "/api/"
API_MIDDLEWARE = [
    # Outermost: counts every answer, the refusals of the middleware below too (project/metrics.py).
    "project.metrics.RequestMetricsMiddleware",
    # First: a bad Host or an oversized body on /api/ is refused before anything reads them.
    "api.middleware.RequestEdgesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "api.middleware.ContractErrorMiddleware",  # also sets Content-Length (api/middleware.py)
    "api.idempotency.IdempotencyMiddleware",  # before the bid's route, so both routes replay alike
    "api.bid_route.BidRouteMiddleware",  # last: a bid goes straight to its view (api/bid_route.py)
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60))}
DATABASE_ENGINE = DATABASES["default"]["ENGINE"]
# A persistent connection idle this long is pinged before a request uses it (project/dbhealth.py).
AUCTION_DB_IDLE_PING_SECONDS = float(os.environ.get("AUCTION_DB_IDLE_PING_SECONDS", "1"))

if DATABASE_ENGINE == "django.db.backends.sqlite3":
    # A fresh clone has no var/ yet, and SQLite will not make the folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write
        # lock at BEGIN so two writers queue on the busy timeout instead of
        # failing with "database is locked" when one upgrades a read lock.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    # A file, not memory: end-to-end tests run the web server and the job
    # cluster as separate processes against the test database.
    # One per test process, so two test runs never share it.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("SQLITE_TEST_NAME") or str(Path(tempfile.gettempdir()) / f"auction-test-{os.getpid()}.sqlite3")
    }
elif DATABASE_ENGINE == "django.db.backends.mysql":
    DATABASES["default"]["OPTIONS"] = {
        # CLIENT_FOUND_ROWS (2) is Django's own (rowcount = rows matched);
        # CLIENT_MULTI_STATEMENTS (1 << 16) lets a bid be written in one round
        # trip (auction/services/market_rows.py). The protocol's numbers, so
        # reading settings needs no MySQL driver (tests/test_settings.py).
        "client_flag": 2 | 1 << 16,
        # No "collation" here: the connection takes the database's own at
        # connect (auction/db.py, collation_from_database), whatever it was
        # created with; one forced here and different from the tables' fails
        # Wagtail's CAST(... AS char) comparisons ("Illegal mix of collations").
        "charset": "utf8mb4",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO'",
        "isolation_level": "read committed",
    }
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "auction.User"

# Axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Cache and jobs -------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
# Clearing the cache empties its whole Redis database: give it its own so a
# clear never takes the job queue with it (REDIS_URL keeps the broker).
REDIS_CACHE_URL = os.environ.get("REDIS_CACHE_URL", REDIS_URL)

# A cache is never needed for correctness (project/cache.py): each call gives
# Redis this long, and after a failure the process skips it for a while.
AUCTION_CACHE_TIMEOUT_MS = env_int("AUCTION_CACHE_TIMEOUT_MS", 50)
AUCTION_CACHE_BREAKER_SECONDS = env_int("AUCTION_CACHE_BREAKER_SECONDS", 5)
# The same for a request that enqueues a job (jobs/schedules.py): with the
# broker unreachable the sweep does the work a minute later.
AUCTION_BROKER_TIMEOUT_MS = env_int("AUCTION_BROKER_TIMEOUT_MS", 200)
# How long a process keeps a lot card it read from the shared cache (auction/selectors.py);
# 0: every bid answer reads the shared cache (the fault tests use it, to reach Redis).
AUCTION_LOT_CARD_LOCAL_SECONDS = float(os.environ.get("AUCTION_LOT_CARD_LOCAL_SECONDS", "60"))

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "project.cache.DegradingRedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "auction"),
            "OPTIONS": {"timeout_ms": AUCTION_CACHE_TIMEOUT_MS, "breaker_seconds": AUCTION_CACHE_BREAKER_SECONDS},
        }
    }
else:
    # In the database, not in process memory: the web workers and the job
    # process share throttle counters and lot cards. migrate creates the
    # table (auction/apps.py).
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "django_cache",
            # Culling (past MAX_ENTRIES) drops live entries too: throttle
            # counters among them. Expired ones go first.
            "OPTIONS": {"MAX_ENTRIES": env_int("AUCTION_DATABASE_CACHE_MAX_ENTRIES", 20_000)},
        },
        # Wagtail looks up every rendition it shows in this cache when there is
        # one (else in "default"): a query each in the table above, where the
        # rows it caches are a join away anyway. Kept in memory, as before.
        "renditions": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }

Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "auction"),
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 60,
    # The database broker redelivers a task whose ack never came after
    # `retry` seconds: it must exceed `timeout` or a slow task runs twice.
    "retry": 90,
    "max_attempts": 3,
    # Successes: the last few per task function (an exact-time trigger's
    # result for ops); failures are always kept. With 1000 the monitor locked
    # up to 1000 rows per result saved: recording a big sale's end cost 2.5x
    # the work itself (issue 13).
    "save_limit": env_int("Q_SAVE_LIMIT", 10),
    "save_limit_per": "func",
    # Tasks pulled off the broker ahead of the workers: each is finished on
    # SIGTERM before the cluster stops, so keep few (the batch jobs are long).
    "queue_limit": env_int("Q_WORKERS", 2),
    "catch_up": False,
    "label": "Jobs",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Internationalisation ---------------------------------------------------

LANGUAGE_CODE = "zh-hans"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
# The project's own translations (zh-hans); compiled by `make` (compilemessages).
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True
WAGTAIL_I18N_ENABLED = False

# --- Admin login lockout (django-axes) -------------------------------------
# Both admin logins (Wagtail's /admin/, Django's /django-admin/) go through
# django.contrib.auth's authenticate: after AXES_FAILURE_LIMIT wrong passwords
# for one username from one client IP, that pair is refused, the right
# password too, for AXES_COOLOFF_MINUTES. Ops unlock with
# `manage.py axes_reset_username NAME` (README, Operations). Failures are rows
# in the database, so every worker counts together. /api/ has no passwords.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client's address from our proxy only (AUCTION_NUM_PROXIES), as the throttles take it.
AXES_CLIENT_IP_CALLABLE = "project.client_ip.client_ip"

# --- Static and media -------------------------------------------------------

STATIC_URL = os.environ.get("DJANGO_STATIC_URL", "/static/")
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
# Local disk (the embedded default) or an S3-compatible bucket: README, "Media on
# object storage"; project/media.py reads AUCTION_MEDIA_STORAGE, AUCTION_S3_* and
# AUCTION_MEDIA_BASE_URL (the CDN's address, which media URLs are built on).
AUCTION_MEDIA_STORAGE = (os.environ.get("AUCTION_MEDIA_STORAGE") or media.LOCAL).strip().lower()
MEDIA_URL = media.media_base_url(os.environ) or os.environ.get("DJANGO_MEDIA_URL", "/media/")
try:
    STORAGES = {
        "default": media.media_storage(os.environ, media_root=str(MEDIA_ROOT), media_url=MEDIA_URL),
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
except media.MediaSettingsError as error:
    raise ImproperlyConfigured(str(error)) from error
# In production nginx (or object storage) serves media; Django only does it
# for the embedded default, and never from a bucket.
AUCTION_SERVE_MEDIA = env_bool("AUCTION_SERVE_MEDIA", DEBUG and AUCTION_MEDIA_STORAGE == media.LOCAL)

# --- Wagtail -----------------------------------------------------------------

WAGTAIL_SITE_NAME = "Auction"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILIMAGES_MAX_UPLOAD_SIZE = 20 * 1024 * 1024
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["csv", "pdf", "xlsx", "txt"]

# --- The auction -------------------------------------------------------------

AUCTION_SANDBOX = env_bool("AUCTION_SANDBOX", DEBUG)
AUCTION_PAYMENT_WINDOW_SECONDS = env_int("AUCTION_PAYMENT_WINDOW_SECONDS", 86400)
# Overdue orders after which a user is barred from every new deposit and bid until ops lift it.
AUCTION_DEFAULTS_BEFORE_BAN = env_int("AUCTION_DEFAULTS_BEFORE_BAN", 2)
# 二拍: how far below the old reserve a relisted lot's reserve may step down, in percent per round.
AUCTION_RELIST_MAX_STEP_DOWN_PERCENT = env_int("AUCTION_RELIST_MAX_STEP_DOWN_PERCENT", 20)
AUCTION_PAYMENT_GATEWAY = os.environ.get("AUCTION_PAYMENT_GATEWAY", "sandbox")
# A deposit's payment stays open this long; then the deposit is cancelled.
# Refunds sent to the gateway at most this many a second across every job
# process sharing the cache (WeChat Pay allows about 150), this many at once.
AUCTION_REFUND_RATE_PER_SECOND = env_int("AUCTION_REFUND_RATE_PER_SECOND", 150)
AUCTION_REFUND_CONCURRENCY = env_int("AUCTION_REFUND_CONCURRENCY", 16)
# Refunds per batch: one claim, one round of calls, one transaction applying the answers.
AUCTION_REFUND_BATCH = env_int("AUCTION_REFUND_BATCH", 200)
AUCTION_DEPOSIT_PAYMENT_SECONDS = env_int("AUCTION_DEPOSIT_PAYMENT_SECONDS", 900)
AUCTION_TOKEN_TTL_SECONDS = env_int("AUCTION_TOKEN_TTL_SECONDS", 30 * 86400)
# The sweep polls a refund the gateway took this long ago and nothing has
# finished since (its poll task lost with a crashed cluster, say).
AUCTION_REFUND_POLL_AFTER_SECONDS = env_int("AUCTION_REFUND_POLL_AFTER_SECONDS", 30)
# Seconds between sweeps. ``runjobs`` runs the sweep in a thread of its own
# (jobs/sweeper.py), not through the queue: it never waits behind a backlog.
AUCTION_SWEEP_SECONDS = env_int("AUCTION_SWEEP_SECONDS", 60)
# A refund batch claimed by a sender that died is anyone's again after this (auction/services/refund_batches.py).
AUCTION_REFUND_CLAIM_LEASE_SECONDS = env_int("AUCTION_REFUND_CLAIM_LEASE_SECONDS", 60)

# Live tokens per user (phones, re-installs): a new login revokes the oldest beyond it.
AUCTION_TOKENS_PER_USER = env_int("AUCTION_TOKENS_PER_USER", 10)
# The daily purge deletes expired tokens, and revoked ones after this long.
AUCTION_TOKEN_REVOKED_KEEP_SECONDS = env_int("AUCTION_TOKEN_REVOKED_KEEP_SECONDS", 7 * 86400)

# --- Limits (api/throttling.py) --------------------------------------------
# Requests per window, "N/[k](s|m|h|d)"; empty: no limit. Per user: a bidding
# war at human speed (a bid a second) stays far below these; a script does not.
AUCTION_THROTTLE_BID = os.environ.get("AUCTION_THROTTLE_BID", "30/10s")
AUCTION_THROTTLE_AUTO_BID = os.environ.get("AUCTION_THROTTLE_AUTO_BID", "30/m")
AUCTION_THROTTLE_DEPOSIT = os.environ.get("AUCTION_THROTTLE_DEPOSIT", "30/m")
AUCTION_THROTTLE_COUPON_CLAIM = os.environ.get("AUCTION_THROTTLE_COUPON_CLAIM", "30/m")
AUCTION_THROTTLE_PAY = os.environ.get("AUCTION_THROTTLE_PAY", "30/m")
AUCTION_THROTTLE_QUOTE = os.environ.get("AUCTION_THROTTLE_QUOTE", "60/m")
# Per client IP, loosely: a mobile carrier puts thousands of users behind one address.
AUCTION_THROTTLE_LOGIN_IP = os.environ.get("AUCTION_THROTTLE_LOGIN_IP") or os.environ.get("AUCTION_LOGIN_RATE", "300/m")
AUCTION_THROTTLE_ANONYMOUS_READ_IP = os.environ.get("AUCTION_THROTTLE_ANONYMOUS_READ_IP", "3000/m")
# How many proxies of ours stand in front (nginx: 1). The client's address is
# the n-th entry from the right of X-Forwarded-For; 0: REMOTE_ADDR (no proxy).
AUCTION_NUM_PROXIES = env_int("AUCTION_NUM_PROXIES", 0)
# Idempotency-Key (CONTRACT.md, Retries; auction/services/idempotency.py): answers
# are kept this long; a retry waits this long for a first request still in
# flight; a claim older than the lease is a dead process's (more than
# gunicorn's timeout, deploy/gunicorn.conf.py) and a retry takes it over.
AUCTION_IDEMPOTENCY_TTL_SECONDS = env_int("AUCTION_IDEMPOTENCY_TTL_SECONDS", 86400)
AUCTION_IDEMPOTENCY_WAIT_SECONDS = float(os.environ.get("AUCTION_IDEMPOTENCY_WAIT_SECONDS", "3"))
AUCTION_IDEMPOTENCY_LEASE_SECONDS = env_int("AUCTION_IDEMPOTENCY_LEASE_SECONDS", 60)
# A shipped order the buyer has not confirmed is confirmed received this many days after shipping.
AUCTION_AUTO_RECEIPT_DAYS = env_int("AUCTION_AUTO_RECEIPT_DAYS", 10)

WECHAT_APPID = os.environ.get("WECHAT_APPID", "")
WECHAT_SECRET = os.environ.get("WECHAT_SECRET", "")
WECHAT_API_BASE = os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/")
WECHAT_TIMEOUT_SECONDS = float(os.environ.get("WECHAT_TIMEOUT_SECONDS", "5"))

# Subscribe messages (README, "Notifications"): a template id per kind (empty:
# that kind is not sent) and each template's keys -> the value put there.
# WECHAT_SUBSCRIBE_TEMPLATES, JSON, overrides any part: {"won": {"template_id":
# "...", "fields": {"thing1": "lot_title", ...}}, ...}.
WECHAT_SUBSCRIBE_TEMPLATES = {
    "won": {"template_id": os.environ.get("WECHAT_TEMPLATE_WON", ""),
            "fields": {"thing1": "lot_title", "amount2": "amount_due", "time3": "pay_deadline", "thing4": "note"}},
    "payment_due": {"template_id": os.environ.get("WECHAT_TEMPLATE_PAYMENT_DUE", ""),
                    "fields": {"thing1": "lot_title", "amount2": "amount_due", "time3": "pay_deadline", "thing4": "note"}},
    "refunded": {"template_id": os.environ.get("WECHAT_TEMPLATE_REFUNDED", ""),
                 "fields": {"thing1": "lot_title", "amount2": "amount", "time3": "refunded_at", "thing4": "note"}},
    "outbid": {"template_id": os.environ.get("WECHAT_TEMPLATE_OUTBID", ""),
               "fields": {"thing1": "lot_title", "amount2": "current_price", "time3": "ends_at", "thing4": "note"}},
    "lot_opening": {"template_id": os.environ.get("WECHAT_TEMPLATE_LOT_OPENING", ""),
                    "fields": {"thing1": "lot_title", "time2": "starts_at", "amount3": "start_price", "thing4": "note"}},
}
for _kind, _override in json.loads(os.environ.get("WECHAT_SUBSCRIBE_TEMPLATES") or "{}").items():
    WECHAT_SUBSCRIBE_TEMPLATES.setdefault(_kind, {"template_id": "", "fields": {}}).update(_override)
# Where a message opens the mini-program; {lot_id} and {order_no} are filled in.
WECHAT_PAGE_LOT = os.environ.get("WECHAT_PAGE_LOT", "pages/lot/index?id={lot_id}")
WECHAT_PAGE_ORDER = os.environ.get("WECHAT_PAGE_ORDER", "pages/order/index?no={order_no}")
# formal, trial or developer: which version of the mini-program a message opens.
WECHAT_MINIPROGRAM_STATE = os.environ.get("WECHAT_MINIPROGRAM_STATE", "formal")
# payment_due goes this long before the order's deadline.
AUCTION_PAYMENT_REMINDER_SECONDS = env_int("AUCTION_PAYMENT_REMINDER_SECONDS", 7200)
# At most one outbid message per lot and user in this long.
AUCTION_OUTBID_INTERVAL_SECONDS = env_int("AUCTION_OUTBID_INTERVAL_SECONDS", 600)
# A template's last credits kept for the kinds above outbid when kinds share it.
AUCTION_NOTIFY_RESERVED_CREDITS = env_int("AUCTION_NOTIFY_RESERVED_CREDITS", 1)
# Transient failures (WeChat down, busy) are retried this many times, backing off, then fail.
AUCTION_NOTIFY_MAX_ATTEMPTS = env_int("AUCTION_NOTIFY_MAX_ATTEMPTS", 5)
AUCTION_NOTIFY_BACKOFF_SECONDS = env_int("AUCTION_NOTIFY_BACKOFF_SECONDS", 30)

# WeChat Pay v3, used when AUCTION_PAYMENT_GATEWAY=wechat (docs/wechatpay.md).
# Keys are read on first use, not here: the sandbox needs none of this.
WECHATPAY_MCHID = os.environ.get("WECHATPAY_MCHID", "")
WECHATPAY_APPID = os.environ.get("WECHATPAY_APPID", "") or WECHAT_APPID
# The merchant API certificate's serial number, and its private key (a file, or the PEM itself).
WECHATPAY_MERCHANT_SERIAL = os.environ.get("WECHATPAY_MERCHANT_SERIAL", "")
WECHATPAY_PRIVATE_KEY_FILE = os.environ.get("WECHATPAY_PRIVATE_KEY_FILE", "")
WECHATPAY_PRIVATE_KEY = os.environ.get("WECHATPAY_PRIVATE_KEY", "")
WECHATPAY_APIV3_KEY = os.environ.get("WECHATPAY_APIV3_KEY", "")
# WeChat's keys: public key mode (PUB_KEY_ID_..., comma-separated ids and files
# in the same order) and/or platform certificates (serial read from each);
# list old and new together while WeChat rotates.
WECHATPAY_PUBLIC_KEY_ID = os.environ.get("WECHATPAY_PUBLIC_KEY_ID", "")
WECHATPAY_PUBLIC_KEY_FILE = os.environ.get("WECHATPAY_PUBLIC_KEY_FILE", "")
WECHATPAY_PUBLIC_KEY = os.environ.get("WECHATPAY_PUBLIC_KEY", "")
WECHATPAY_PLATFORM_CERT_FILES = env_list("WECHATPAY_PLATFORM_CERT_FILES", [])
WECHATPAY_API_BASE = os.environ.get("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com").rstrip("/")
# This site's public https origin; notify URLs are /api/v1/payments/wechat/... under it.
WECHATPAY_NOTIFY_BASE = os.environ.get("WECHATPAY_NOTIFY_BASE", "").rstrip("/")
WECHATPAY_TIMEOUT_SECONDS = float(os.environ.get("WECHATPAY_TIMEOUT_SECONDS", "10"))

# --- Live updates (WebSocket, issue 14: live/, auction/services/live.py) ------
# Publishing goes through Redis pub/sub when it is configured, else through
# the LiveChange table that every ASGI process tails (the embedded default).
# LIVE_ENABLED=0 publishes nothing: bench/bids.py --env LIVE_ENABLED=0 measures what publishing costs a bid.
LIVE_ENABLED = env_bool("LIVE_ENABLED", True)
LIVE_REDIS_URL = os.environ.get("LIVE_REDIS_URL", REDIS_URL)
LIVE_CHANNEL_PREFIX = os.environ.get("LIVE_CHANNEL_PREFIX", os.environ.get("CACHE_KEY_PREFIX", "auction") + ":live")
# A publish waits this long at most; after a failure Redis is left alone this long.
LIVE_PUBLISH_TIMEOUT_SECONDS = float(os.environ.get("LIVE_PUBLISH_TIMEOUT_SECONDS", "0.05"))
LIVE_PUBLISH_RETRY_SECONDS = float(os.environ.get("LIVE_PUBLISH_RETRY_SECONDS", "1"))
LIVE_MAX_LOTS_PER_SOCKET = env_int("LIVE_MAX_LOTS_PER_SOCKET", 50)
# Per ASGI process (each process counts its own sockets).
LIVE_MAX_SOCKETS_PER_IP = env_int("LIVE_MAX_SOCKETS_PER_IP", 200)
LIVE_MAX_SOCKETS_PER_USER = env_int("LIVE_MAX_SOCKETS_PER_USER", 10)
LIVE_IDLE_SECONDS = float(os.environ.get("LIVE_IDLE_SECONDS", "60"))
# At most this many `lot` messages a second per lot to one socket (bursts coalesce).
LIVE_MESSAGES_PER_SECOND = float(os.environ.get("LIVE_MESSAGES_PER_SECOND", "5"))
# Each ASGI process reads its changed lots at most this many times a second,
# all that are due in one read: the first change after a quiet spell is read at
# once, a busy process gathers for up to 1/this seconds (one read of a lot costs
# about as much as twenty sockets' messages).
LIVE_READS_PER_SECOND = float(os.environ.get("LIVE_READS_PER_SECOND", "20"))
# Every watched lot is read again this often, in case an announcement was lost.
LIVE_RESYNC_SECONDS = float(os.environ.get("LIVE_RESYNC_SECONDS", "15"))
# The embedded default's change log is read this often.
LIVE_POLL_SECONDS = float(os.environ.get("LIVE_POLL_SECONDS", "0.15"))
# Behind nginx the client's address is in this header (deploy/nginx.conf sets X-Real-IP).
LIVE_CLIENT_IP_HEADER = os.environ.get("LIVE_CLIENT_IP_HEADER", "").lower()
# Staff sockets (the admin's Market tab) get each lot's watcher count at most this often;
# with Redis each process's counts live there this long unless renewed (live/watchers.py).
LIVE_WATCHERS_SECONDS = float(os.environ.get("LIVE_WATCHERS_SECONDS", "1"))
LIVE_WATCHERS_TTL_SECONDS = float(os.environ.get("LIVE_WATCHERS_TTL_SECONDS", "15"))

# --- Health and metrics (project/health.py, project/metrics.py) -------------
# /healthz and /readyz answer anyone (load balancers); /metrics only a client
# whose address is in AUCTION_METRICS_ALLOW_IPS (addresses or networks, the
# client as project/client_ip.py takes it) or that sends
# "Authorization: Bearer <AUCTION_METRICS_TOKEN>". PROMETHEUS_MULTIPROC_DIR
# (the environment, read by prometheus-client) sums gunicorn's workers.
AUCTION_METRICS_TOKEN = os.environ.get("AUCTION_METRICS_TOKEN", "")
AUCTION_METRICS_ALLOW_IPS = env_list("AUCTION_METRICS_ALLOW_IPS", ["127.0.0.1", "::1"])
# Each of /readyz's checks gets this long; a check still running then fails ("timeout").
AUCTION_READY_TIMEOUT_SECONDS = float(os.environ.get("AUCTION_READY_TIMEOUT_SECONDS", "2"))
# The probes' paths, as SecurityMiddleware matches them (no leading slash).
HEALTH_PATHS = ("healthz", "readyz", "metrics")

# --- Security (production) -------------------------------------------------

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    # A load balancer or Prometheus asks the workers themselves, over plain
    # HTTP: a redirect to https would read as "down".
    SECURE_REDIRECT_EXEMPT = [rf"^{path}$" for path in HEALTH_PATHS]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django_tasks": {"level": "WARNING"},
        "wagtail": {"level": "WARNING"},
        # httpx logs each request's URL at INFO: subscribeMessage.send carries the access token there.
        "httpx": {"level": "WARNING"},
        # Every refused bid is a 409: a log line each would cost the hot lot
        # more than the bid. 5xx stay logged (ERROR); the API answers say the rest.
        "django.request": {"level": "ERROR"},
    },
}
