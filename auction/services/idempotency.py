"""Idempotency keys (CONTRACT.md, Retries): one answer per (user, key) for 24 h.

A request with a key first claims it by inserting its row, in a short
transaction of its own, so the unique constraint on (user, key) decides which
of two concurrent requests does the work; then the work; then its answer is
stored in the row. A retry with the same key and the same request gets that
answer; with another request, a 422. A retry that finds the first still in
flight waits a few seconds for its answer, then is told to try again (409
``idempotency_key_in_use``).

Only answers that will not change on a retry are kept: successes, and the
409/422 refusals. Anything else (a 5xx, a 503 while the database or a gateway
is down, a 401, a 429) releases the claim so the retry runs again. A process
killed mid-request cannot release anything: its claim expires after a lease
longer than any request may run (gunicorn's timeout), and then a retry takes
it over. That retry runs the work again, which is safe because the caller
(api/idempotency.py) either commits the work and its answer in one
transaction (nothing of a killed request is left) or keys only services that
come back with the same thing when asked twice (a pending deposit, an open
payment).
"""

import hashlib
import secrets
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from auction.errors import DomainError, ValidationFailed
from auction.models import IdempotentRequest

# How often a retry looks whether the first request has answered.
_POLL_SECONDS = 0.05


class IdempotencyKeyReused(ValidationFailed):
    default_message = "This Idempotency-Key was already used for another request; send a new key with a new request."


class IdempotencyKeyInUse(DomainError):
    """The first request with this key is still running: the retry may come back shortly."""

    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still being answered; retry shortly."


@dataclass(frozen=True)
class Claim:
    pk: int
    lease: str


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: dict[str, str]
    body: bytes


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode("utf-8", "surrogateescape"), body):
        # Length-prefixed, so no two requests run together into the same bytes.
        digest.update(b"%d:" % len(part))
        digest.update(part)
    return digest.hexdigest()


def _key_hex(key: str) -> str:
    return key.encode("ascii").hex()


def _new_lease() -> str:
    return secrets.token_hex(16)


def idempotency_begin(*, user_id: int, key: str, fingerprint: str) -> Claim | Answer:
    """Claim the key for this request, or the answer its first request got.

    Raises IdempotencyKeyReused (the key came with another request) or
    IdempotencyKeyInUse (the first request is still running after the wait).
    """
    key_hex = _key_hex(key)
    deadline = time.monotonic() + settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS
    # Bounded: each turn either ends or sleeps a poll, or follows a row that
    # vanished or expired under it (a handful of times at most).
    for _ in range(int(settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS / _POLL_SECONDS) + 20):
        now = timezone.now()
        lease = _new_lease()
        try:
            # Committed at once (autocommit: one round trip), so a concurrent
            # request with the key sees the claim; inside a caller's transaction
            # (tests) a savepoint keeps a refused insert from spoiling it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                row = IdempotentRequest.objects.create(
                    user_id=user_id, key_hex=key_hex, fingerprint=fingerprint, lease=lease, created_at=now, claimed_at=now
                )
            return Claim(pk=row.pk, lease=lease)
        except IntegrityError:
            pass
        row = (
            IdempotentRequest.objects.filter(user_id=user_id, key_hex=key_hex)
            .only("fingerprint", "lease", "status_code", "headers", "body", "created_at", "claimed_at")
            .first()
        )
        if row is None:
            continue  # released since our insert: claim it again
        if row.created_at <= now - timedelta(seconds=settings.AUCTION_IDEMPOTENCY_TTL_SECONDS):
            # Expired but not purged yet: as if it were gone.
            IdempotentRequest.objects.filter(pk=row.pk, lease=row.lease).delete()
            continue
        if row.fingerprint != fingerprint:
            raise IdempotencyKeyReused(errors=[{
                "loc": ["header", "Idempotency-Key"], "msg": IdempotencyKeyReused.default_message, "type": "idempotency_key_reused",
            }])
        if row.status_code is not None:
            return Answer(status_code=row.status_code, headers=dict(row.headers), body=bytes(row.body))
        if row.claimed_at <= now - timedelta(seconds=settings.AUCTION_IDEMPOTENCY_LEASE_SECONDS):
            # Its process died with the claim (nothing else holds one this long).
            if IdempotentRequest.objects.filter(pk=row.pk, lease=row.lease, status_code__isnull=True).update(
                lease=lease, claimed_at=now
            ):
                return Claim(pk=row.pk, lease=lease)
            continue
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_SECONDS)
    raise IdempotencyKeyInUse(retry_after=1)


def idempotency_finish(*, claim: Claim, answer: Answer) -> bool:
    """Store the answer under the claim; False if the claim was lost (taken over)."""
    return bool(
        IdempotentRequest.objects.filter(pk=claim.pk, lease=claim.lease, status_code__isnull=True).update(
            status_code=answer.status_code, headers=answer.headers, body=answer.body
        )
    )


def idempotency_release(*, claim: Claim) -> None:
    """The request failed in a way a retry may not: let the retry run again."""
    IdempotentRequest.objects.filter(pk=claim.pk, lease=claim.lease, status_code__isnull=True).delete()


def idempotency_purge(*, now: datetime | None = None) -> int:
    """Forget keys past their 24 h; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.AUCTION_IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lte=cutoff).delete()
    return deleted
