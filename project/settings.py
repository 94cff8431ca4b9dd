"""Settings, read from the environment only (CONTRACT.md, Operations).

With nothing set this is the embedded default: SQLite in ``var/``, the
database as Django-Q2's broker and as the cache, the payment sandbox on.
``DATABASE_URL=mysql://...`` and ``REDIS_URL=redis://...`` switch to the
production engines; ``DJANGO_DEBUG=0`` switches on every deploy safeguard.

The job cluster, static and media, WeChat and the live room have modules of
their own (project/settings_*.py), all read into this one: Django is given
``project.settings`` alone.
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from project.settings_env import BASE_DIR, DEBUG, REDIS_URL, VAR_DIR, env_bool, env_int, env_list
from project.settings_jobs import *  # noqa: F403
from project.settings_live import *  # noqa: F403
from project.settings_media import *  # noqa: F403
from project.settings_wechat import *  # noqa: F403

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

# Django-Q2's cluster: project/settings_jobs.py (Q_CLUSTER).

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

# --- Static and media: project/settings_media.py -----------------------------

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

# WeChat (login, subscribe messages) and WeChat Pay: project/settings_wechat.py.

# --- Live updates (WebSocket): project/settings_live.py ---------------------

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
