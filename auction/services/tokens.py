"""Opaque bearer tokens: random, stored hashed, expiring, revocable."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from auction.errors import Unauthenticated
from auction.models import AuthToken, User


def _hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(*, user: User) -> str:
    """Returns the raw token; only its hash is kept, so it cannot be shown again."""
    raw_token = secrets.token_urlsafe(32)
    AuthToken.objects.create(
        user=user,
        key_hash=_hash(raw_token),
        expires_at=timezone.now() + timedelta(seconds=settings.AUCTION_TOKEN_TTL_SECONDS),
    )
    return raw_token


def token_user(*, raw_token: str) -> User:
    """The active user a token belongs to, or Unauthenticated."""
    if not raw_token or len(raw_token) > 200:
        raise Unauthenticated()
    token = (
        AuthToken.objects.select_related("user")
        .filter(key_hash=_hash(raw_token), revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if token is None or not token.user.is_active:
        raise Unauthenticated()
    return token.user


def token_revoke(*, raw_token: str) -> bool:
    return bool(AuthToken.objects.filter(key_hash=_hash(raw_token), revoked_at__isnull=True).update(revoked_at=timezone.now()))


def tokens_revoke_for_user(*, user: User) -> int:
    return AuthToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())
