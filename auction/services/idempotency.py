"""Idempotency keys (CONTRACT.md, Retries): one answer per (user, key) for 24 h.

A request with a key claims it by inserting its row before it does any work,
so the unique constraint on (user, key), not a read, decides which of two
concurrent requests does the work; its answer is then stored in that row. A
retry with the same key and the same request (method, path and body) gets
that answer again; with another request, a 422. Only answers a retry would
get anyway are kept: successes and the 409/422 refusals. Any other (a 5xx, a
503 while the database or a gateway is down, a 401, a 429) leaves no row, so
the retry runs again.

Two ways to hold the claim, chosen by the caller (api/idempotency.py) per
endpoint:

- **In the work's transaction** (``idempotency_claim`` as its first
  statement, ``idempotency_finish`` its last): the claim, the work and the
  answer commit together or not at all. A concurrent duplicate's insert waits
  on the uncommitted key, then finds the answer (or, if the first rolled back,
  claims the key itself); a process killed mid-request leaves nothing, and its
  retry runs at once. For work that is not the same when done twice (a bid, a
  coupon claim).
- **Committed first** (``idempotency_begin``, in autocommit): for work that
  must not run inside one transaction (deposits and paying call WeChat Pay,
  which must not be waited for under their locks) and that comes back with
  the same rows when asked twice (the same pending deposit, the same open
  payment). A retry that finds the claim in flight polls for the answer a few
  seconds; a claim older than the lease (longer than gunicorn lets a request
  run) is a dead process's, and a retry takes it over.

Either way a retry still unanswered after ``AUCTION_IDEMPOTENCY_WAIT_SECONDS``
is told to come back: 409 ``idempotency_key_in_use`` with ``Retry-After``.
"""

import hashlib
import json
import math
import secrets
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from auction.db import datetime_to_db
from auction.errors import DomainError, ValidationFailed
from auction.models import IdempotentRequest

# How often a retry looks whether a committed-first claim has been answered.
_POLL_SECONDS = 0.05
# MySQL's errors for a lock wait that timed out, and for a deadlock (several
# duplicates waiting on a key whose first request rolled back).
_LOCK_WAIT_TIMEOUT, _DEADLOCK = 1205, 1213

# A keyed bid runs both: by hand, at a fifth of what building them with the ORM cost.
_CLAIM = """
INSERT INTO auction_idempotentrequest (user_id, key_hex, fingerprint, lease, status_code, headers, body, created_at, claimed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
_FINISH = """
UPDATE auction_idempotentrequest SET status_code = %s, headers = %s, body = %s
 WHERE id = %s AND lease = %s AND status_code IS NULL
"""


class IdempotencyKeyReused(ValidationFailed):
    default_message = "This Idempotency-Key was already used for another request; send a new key with a new request."


class IdempotencyKeyInUse(DomainError):
    """The first request with this key is still running: the retry may come back shortly."""

    code = "idempotency_key_in_use"
    default_message = "A request with this Idempotency-Key is still being answered; retry shortly."


class IdempotencyKeyTaken(Exception):
    """``idempotency_claim`` found the key claimed: end the transaction, then ask
    ``idempotency_existing`` for its answer."""


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


def _insert(user_id: int, key: str, fingerprint: str, *, answer: Answer | None = None, lock_wait: float | None = None) -> Claim:
    """One INSERT; IntegrityError if the key is taken. ``lock_wait`` bounds how
    long it waits on a concurrent claim not yet committed (MySQL; SQLite's
    writers queue on its busy timeout instead)."""
    now = datetime_to_db(timezone.now())
    lease = secrets.token_hex(16)
    values = [user_id, _key_hex(key), fingerprint, lease, None, "{}", b"", now, now]
    if answer is not None:
        values[4:7] = [answer.status_code, json.dumps(answer.headers), answer.body]
    sql = _CLAIM
    if lock_wait is not None and connection.vendor == "mysql":
        seconds = max(1, math.ceil(lock_wait))
        if connection.mysql_is_mariadb:
            sql = f"SET STATEMENT innodb_lock_wait_timeout = {seconds} FOR {sql}"
        else:
            sql = sql.replace("INSERT", f"INSERT /*+ SET_VAR(innodb_lock_wait_timeout = {seconds}) */", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return Claim(pk=cursor.lastrowid, lease=lease)


def idempotency_claim(*, user_id: int, key: str, fingerprint: str) -> Claim:
    """The first statement of the work's transaction (see the module's docstring);
    the caller lets any exception from it end that transaction.

    Raises IdempotencyKeyTaken (a committed row holds the key), or
    IdempotencyKeyInUse (the first request's transaction is still open after
    the wait).
    """
    try:
        # No savepoint of its own (two round trips fewer): each exception
        # below leaves the caller's transaction, which rolls back; a refused
        # INSERT spoils nothing before that on MySQL or SQLite.
        return _insert(user_id, key, fingerprint, lock_wait=settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS)
    except IntegrityError:
        raise IdempotencyKeyTaken() from None
    except OperationalError as error:
        if error.args and error.args[0] == _LOCK_WAIT_TIMEOUT:
            raise IdempotencyKeyInUse(retry_after=1) from None
        if error.args and error.args[0] == _DEADLOCK:
            raise IdempotencyKeyTaken() from None  # another duplicate won the key: look again
        raise


def idempotency_existing(*, user_id: int, key: str, fingerprint: str) -> Answer | None:
    """The answer kept for the key; None if there is none any more (its request
    failed, or it expired and is gone now): claim it again.

    Raises IdempotencyKeyReused (the key came with another request) or
    IdempotencyKeyInUse (a committed-first claim is in flight).
    """
    row = (
        IdempotentRequest.objects.filter(user_id=user_id, key_hex=_key_hex(key))
        .only("fingerprint", "lease", "status_code", "headers", "body", "created_at", "claimed_at")
        .first()
    )
    if row is None:
        return None
    if row.created_at <= timezone.now() - timedelta(seconds=settings.AUCTION_IDEMPOTENCY_TTL_SECONDS):
        # Expired but not purged yet: as if it were gone.
        IdempotentRequest.objects.filter(pk=row.pk, lease=row.lease).delete()
        return None
    if row.fingerprint != fingerprint:
        raise IdempotencyKeyReused(errors=[{
            "loc": ["header", "Idempotency-Key"], "msg": IdempotencyKeyReused.default_message, "type": "idempotency_key_reused",
        }])
    if row.status_code is None:
        raise IdempotencyKeyInUse(retry_after=1)
    return Answer(status_code=row.status_code, headers=dict(row.headers), body=bytes(row.body))


def idempotency_keep(*, user_id: int, key: str, fingerprint: str, answer: Answer) -> None:
    """Keep a refusal whose transaction rolled back (its claim with it); if a
    duplicate claimed the key meanwhile, its own answer is kept instead."""
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            _insert(user_id, key, fingerprint, answer=answer)
    except IntegrityError:
        pass


def idempotency_begin(*, user_id: int, key: str, fingerprint: str) -> Claim | Answer:
    """Claim the key, committed at once (see the module's docstring), or the
    answer its first request got; waits a few seconds for one in flight.

    Raises IdempotencyKeyReused or IdempotencyKeyInUse.
    """
    deadline = time.monotonic() + settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS
    # Bounded: each turn ends, or sleeps a poll, or follows a row that
    # vanished or expired under it (a handful of times at most).
    for _ in range(int(settings.AUCTION_IDEMPOTENCY_WAIT_SECONDS / _POLL_SECONDS) + 20):
        try:
            # One autocommitted statement, so a duplicate sees the claim at
            # once; inside a caller's transaction (tests) a savepoint keeps a
            # refused insert from spoiling it.
            with transaction.atomic() if connection.in_atomic_block else nullcontext():
                return _insert(user_id, key, fingerprint)
        except IntegrityError:
            pass
        try:
            answer = idempotency_existing(user_id=user_id, key=key, fingerprint=fingerprint)
        except IdempotencyKeyInUse:
            claim = _take_over_if_dead(user_id=user_id, key=key)
            if claim is not None:
                return claim
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_SECONDS)
            continue
        if answer is not None:
            return answer
    raise IdempotencyKeyInUse(retry_after=1)


def _take_over_if_dead(*, user_id: int, key: str) -> Claim | None:
    """A claim older than the lease is a dead process's (nothing else runs that long)."""
    now = timezone.now()
    lease = secrets.token_hex(16)
    row = IdempotentRequest.objects.filter(user_id=user_id, key_hex=_key_hex(key), status_code__isnull=True).only("lease", "claimed_at").first()
    if row is None or row.claimed_at > now - timedelta(seconds=settings.AUCTION_IDEMPOTENCY_LEASE_SECONDS):
        return None
    if not IdempotentRequest.objects.filter(pk=row.pk, lease=row.lease, status_code__isnull=True).update(lease=lease, claimed_at=now):
        return None
    return Claim(pk=row.pk, lease=lease)


def idempotency_finish(*, claim: Claim, answer: Answer) -> bool:
    """Store the answer under the claim; False if the claim was lost (taken over)."""
    with connection.cursor() as cursor:
        cursor.execute(_FINISH, [answer.status_code, json.dumps(answer.headers), answer.body, claim.pk, claim.lease])
        return cursor.rowcount == 1


def idempotency_release(*, claim: Claim) -> None:
    """A committed-first claim whose request failed in a way a retry may not: let the retry run."""
    IdempotentRequest.objects.filter(pk=claim.pk, lease=claim.lease, status_code__isnull=True).delete()


def idempotency_purge(*, now: datetime | None = None) -> int:
    """Forget keys past their 24 h; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.AUCTION_IDEMPOTENCY_TTL_SECONDS)
    deleted, _ = IdempotentRequest.objects.filter(created_at__lte=cutoff).delete()
    return deleted
