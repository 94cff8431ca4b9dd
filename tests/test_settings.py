"""Settings come from the environment alone; production passes check --deploy."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLEAN = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "AUCTION_", "WECHAT_"))}


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**CLEAN, "DJANGO_SETTINGS_MODULE": "project.settings", **env},
        capture_output=True, text=True, timeout=120,
    )


def _settings(**env: str) -> dict:
    code = (
        "import json; from django.conf import settings as s; "
        "print(json.dumps({'db': s.DATABASES['default'], 'cache': s.CACHES['default']['BACKEND'], "
        "'q': s.Q_CLUSTER, 'sandbox': s.AUCTION_SANDBOX, 'tz': s.TIME_ZONE, 'use_tz': s.USE_TZ, "
        "'window': s.AUCTION_PAYMENT_WINDOW_SECONDS}, default=str))"
    )
    # Settings only, no django.setup(): the embedded default has no MySQL driver.
    result = _run(["-c", code], **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_embedded_default_needs_nothing_set(tmp_path):
    values = _settings(AUCTION_VAR_DIR=str(tmp_path))
    assert values["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["db"]["NAME"] == str(tmp_path / "db.sqlite3")
    assert "journal_mode=WAL" in values["db"]["OPTIONS"]["init_command"]
    assert values["db"]["OPTIONS"]["timeout"] >= 5
    assert values["q"]["orm"] == "default" and "redis" not in values["q"]
    assert values["q"]["retry"] > values["q"]["timeout"]
    assert values["cache"].endswith("DatabaseCache")  # shared by every process, unlike local memory
    assert values["sandbox"] is True
    assert (values["tz"], values["use_tz"], values["window"]) == ("Asia/Shanghai", True, 86400)


def test_mysql_and_redis_from_urls():
    values = _settings(
        DATABASE_URL="mysql://auction:pw@db.internal:3306/auction",
        REDIS_URL="redis://cache.internal:6379/2",
        AUCTION_PAYMENT_WINDOW_SECONDS="600",
    )
    assert values["db"]["ENGINE"] == "django.db.backends.mysql"
    assert values["db"]["OPTIONS"]["charset"] == "utf8mb4"
    assert "STRICT_TRANS_TABLES" in values["db"]["OPTIONS"]["init_command"]
    # Rows matched (Django's) and multi-statements (the one-trip bid write).
    assert values["db"]["OPTIONS"]["client_flag"] == 2 | 1 << 16
    assert values["cache"].endswith("RedisCache")
    assert values["q"]["redis"] == "redis://cache.internal:6379/2" and "orm" not in values["q"]
    assert values["window"] == 600


def test_production_passes_check_deploy_without_warnings(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 20 + "9f3!a-long-and-random-production-secret-value",
        DJANGO_ALLOWED_HOSTS="auction.example.com",
        AUCTION_SANDBOX="0",
        AUCTION_NUM_PROXIES="1",
        AUCTION_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_with_no_proxy_counted_is_warned(tmp_path):
    # Behind nginx, REMOTE_ADDR is nginx: every client would share one limit.
    result = _run(
        ["manage.py", "check", "--deploy"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 20 + "9f3!a-long-and-random-production-secret-value",
        DJANGO_ALLOWED_HOSTS="auction.example.com",
        AUCTION_SANDBOX="0",
        AUCTION_VAR_DIR=str(tmp_path),
    )
    assert "auction.W002" in result.stdout + result.stderr


def test_production_with_the_sandbox_on_is_warned(tmp_path):
    result = _run(
        ["manage.py", "check", "--deploy"],
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY="k" * 20 + "9f3!a-long-and-random-production-secret-value",
        DJANGO_ALLOWED_HOSTS="auction.example.com",
        AUCTION_SANDBOX="1",
        AUCTION_VAR_DIR=str(tmp_path),
    )
    assert "auction.W001" in result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    result = _run(["manage.py", "check"], DJANGO_DEBUG="0", AUCTION_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "DJANGO_SECRET_KEY" in result.stderr
