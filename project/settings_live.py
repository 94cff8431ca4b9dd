"""Settings: live updates over WebSocket (issue 14: live/, auction/services/live.py)."""

import os

from project.settings_env import REDIS_URL, env_bool, env_int

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
