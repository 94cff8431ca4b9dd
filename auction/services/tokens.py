"""Opaque bearer tokens: random, stored hashed, expiring, revocable."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from auction.db import datetime_to_db, loaded
from auction.errors import Unauthenticated
from auction.models import AuthToken, User


def _hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(*, user: User, via_sandbox: bool = False) -> str:
    """Returns the raw token; only its hash is kept, so it cannot be shown again.

    A user keeps at most ``AUCTION_TOKENS_PER_USER`` live tokens: this one
    revokes the oldest beyond that. The user's row is locked first, so two
    logins at once count each other's token and still leave the cap.
    """
    raw_token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        list(User.objects.select_for_update().filter(pk=user.pk).values_list("pk"))
        AuthToken.objects.create(
            user=user,
            key_hash=_hash(raw_token),
            expires_at=now + timedelta(seconds=settings.AUCTION_TOKEN_TTL_SECONDS),
            via_sandbox=via_sandbox,
        )
        beyond_cap = list(
            AuthToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[settings.AUCTION_TOKENS_PER_USER :]
        )
        if beyond_cap:
            AuthToken.objects.filter(pk__in=beyond_cap).update(revoked_at=now)
    return raw_token


@dataclass(frozen=True)
class TokenKey:
    """A bearer token not looked up yet. The bid path checks it inside its read
    of the lot (auction/services/market_rows.py): one round trip fewer on the
    request a hot lot gets hundreds of times a second."""

    key_hash: str


def token_key(*, raw_token: str) -> TokenKey:
    if not raw_token or len(raw_token) > 200:
        raise Unauthenticated()
    return TokenKey(_hash(raw_token))


# What makes a token live, once for every query that looks one up. The last
# test takes the values ``via_sandbox`` may have: both while the sandbox is
# on, only false once it is off (_live_token_params).
_LIVE_TOKEN = "t.key_hash = %s AND t.revoked_at IS NULL AND t.expires_at > %s AND t.via_sandbox IN (%s, %s)"
# Joined to another query's row (the bid's read of its lot): ``u.id`` is the
# token's active user, or NULL.
TOKEN_USER_JOIN_SQL = f"""
  LEFT JOIN auction_authtoken t ON {_LIVE_TOKEN}
  LEFT JOIN auction_user u ON u.id = t.user_id AND u.is_active = %s
"""


def _live_token_params(key: TokenKey) -> list:
    return [key.key_hash, datetime_to_db(timezone.now()), False, bool(settings.AUCTION_SANDBOX)]


def token_join_params(key: TokenKey) -> list:
    return [*_live_token_params(key), True]


# Every authenticated request runs this, so it is written by hand (building
# the ORM query cost more than running it); the user comes back as ``.only()``
# would load it, its two datetimes deferred.
_USER_COLUMNS = ("id", "password", "is_superuser", "username", "first_name", "last_name", "email", "is_staff",
                 "is_active", "openid", "unionid", "nickname", "avatar_url")
_BOOLEAN_COLUMNS = ("is_superuser", "is_staff", "is_active")
_TOKEN_USER = f"""
SELECT {", ".join("u." + name for name in _USER_COLUMNS)}
  FROM auction_authtoken t JOIN auction_user u ON u.id = t.user_id
 WHERE {_LIVE_TOKEN}
"""


def token_user(*, raw_token: str) -> User:
    """The active user a token belongs to, or Unauthenticated."""
    key = token_key(raw_token=raw_token)
    with connection.cursor() as cursor:
        cursor.execute(_TOKEN_USER, _live_token_params(key))
        row = cursor.fetchone()
    if row is None:
        raise Unauthenticated()
    values = dict(zip(_USER_COLUMNS, row, strict=True))
    for name in _BOOLEAN_COLUMNS:
        values[name] = bool(values[name])
    if not values["is_active"]:
        raise Unauthenticated()
    return loaded(User, **values)


def token_revoke(*, raw_token: str) -> bool:
    return bool(AuthToken.objects.filter(key_hash=_hash(raw_token), revoked_at__isnull=True).update(revoked_at=timezone.now()))


def tokens_revoke_for_user(*, user: User) -> int:
    return AuthToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def tokens_purge(*, now: datetime | None = None, batch: int = 1000, max_batches: int = 100) -> int:
    """Delete tokens expired, or revoked more than ``AUCTION_TOKEN_REVOKED_KEEP_SECONDS``
    ago (kept that long so ops can still see a logout). In batches, so no one
    statement holds the table for long; what is left waits for the next run."""
    now = now or timezone.now()
    revoked_before = now - timedelta(seconds=settings.AUCTION_TOKEN_REVOKED_KEEP_SECONDS)
    dead = AuthToken.objects.filter(Q(expires_at__lte=now) | Q(revoked_at__lte=revoked_before))
    purged = 0
    for _ in range(max_batches):
        ids = list(dead.values_list("pk", flat=True)[:batch])
        if not ids:
            break
        purged += AuthToken.objects.filter(pk__in=ids).delete()[0]
    return purged
