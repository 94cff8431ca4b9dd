"""What every settings module reads first: how an environment variable is
parsed, and the few values the others are built on (where the project and its
``var/`` are, whether this is DEBUG, the Redis the broker and the live room use).
"""

import os
from pathlib import Path

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

# Redis for the job broker (project/settings_jobs.py), and for the cache and the
# live room unless REDIS_CACHE_URL or LIVE_REDIS_URL say otherwise; empty: the
# database does all three.
REDIS_URL = os.environ.get("REDIS_URL", "")
