"""Settings, read from the environment only (CONTRACT.md, Operations).

With nothing set this is the embedded default: SQLite in ``var/``, the
database as Django-Q2's broker, a local-memory cache, the payment sandbox on.
``DATABASE_URL=mysql://...`` and ``REDIS_URL=redis://...`` switch to the
production engines; ``DJANGO_DEBUG=0`` switches on every deploy safeguard.
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

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
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outside CommonMiddleware, so it also sees the slash redirects it makes.
    "api.middleware.ContractErrorMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# /api/ is served by its own handler (project/wsgi.py) with only these: it
# authenticates by bearer token, so sessions, CSRF, users, messages and frame
# options would only cost every bid their time.
API_PATH_PREFIX = "/api/"
API_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "api.middleware.ContractErrorMiddleware",  # also sets Content-Length (api/middleware.py)
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
        "charset": "utf8mb4",
        # The connection's collation must match the tables', or Wagtail's
        # CAST(... AS char) comparisons fail with "Illegal mix of collations".
        "collation": "utf8mb4_unicode_ci",
        "init_command": "SET sql_mode='STRICT_TRANS_TABLES,NO_ZERO_DATE,NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO'",
        "isolation_level": "read committed",
    }
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "auction.User"

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

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "auction"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

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
USE_TZ = True
WAGTAIL_I18N_ENABLED = False

# --- Static and media -------------------------------------------------------

STATIC_URL = os.environ.get("DJANGO_STATIC_URL", "/static/")
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
MEDIA_URL = os.environ.get("DJANGO_MEDIA_URL", "/media/")
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
# In production nginx (or object storage) serves media; Django only does it
# for the embedded default.
AUCTION_SERVE_MEDIA = env_bool("AUCTION_SERVE_MEDIA", DEBUG)

# --- Wagtail -----------------------------------------------------------------

WAGTAIL_SITE_NAME = "Auction"
WAGTAILADMIN_BASE_URL = os.environ.get("WAGTAILADMIN_BASE_URL", "http://127.0.0.1:8000")
WAGTAILIMAGES_MAX_UPLOAD_SIZE = 20 * 1024 * 1024
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["csv", "pdf", "xlsx", "txt"]

# --- The auction -------------------------------------------------------------

AUCTION_SANDBOX = env_bool("AUCTION_SANDBOX", DEBUG)
AUCTION_PAYMENT_WINDOW_SECONDS = env_int("AUCTION_PAYMENT_WINDOW_SECONDS", 86400)
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
AUCTION_LOGIN_RATE = os.environ.get("AUCTION_LOGIN_RATE", "120/m")

WECHAT_APPID = os.environ.get("WECHAT_APPID", "")
WECHAT_SECRET = os.environ.get("WECHAT_SECRET", "")
WECHAT_API_BASE = os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/")
WECHAT_TIMEOUT_SECONDS = float(os.environ.get("WECHAT_TIMEOUT_SECONDS", "5"))

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

# --- Security (production) -------------------------------------------------

if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
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
        # Every refused bid is a 409: a log line each would cost the hot lot
        # more than the bid. 5xx stay logged (ERROR); the API answers say the rest.
        "django.request": {"level": "ERROR"},
    },
}
