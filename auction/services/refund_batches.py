"""Refunds in bulk: sent to the gateway in batches within its rate, finished in bulk.

A big sale's end makes thousands of refund rows at once (in the settling
transactions). One job sends them: a batch is claimed (``SKIP LOCKED``, a
lease on ``next_attempt_at``) so two workers or two clusters send disjoint
batches; the gateway is called concurrently, no lock held, at most
``AUCTION_REFUND_RATE_PER_SECOND`` calls a second across every process
sharing the cache (WeChat allows about 150); the answers are applied in one
transaction that locks the batch and re-checks each status, so a refund is
submitted and finished once however many senders raced. A crash after the
calls and before the apply leaves the refunds pending: the lease runs out
and they are sent again with the same ``out_refund_no``, which the gateway
refunds once. The per-refund functions in ``payments`` do the same one at a
time (ops' retry, a single late payment).
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from auction import signals
from auction.gateways.payments import GatewayError, RefundState, gateway_for
from auction.models import Deposit, DepositStatus, Event, NotificationKind, PaymentPurpose, Refund, RefundStatus
from auction.services.events import events_record_bulk
from auction.services.notifications import notifications_queue_many
from auction.services.payments import refund_retry_delay

logger = logging.getLogger(__name__)

# A claimed batch not answered by then (its sender died) is anyone's again.
CLAIM_LEASE = timedelta(seconds=settings.AUCTION_REFUND_CLAIM_LEASE_SECONDS)


def rate_slots(kind: str, *, count: int, per_second: int) -> list[float]:
    """Reserve ``count`` moments on a grid ``1/per_second`` apart, counted in the
    shared cache (Redis in production: every worker and cluster shares one budget).

    The n-th slot of a wall-clock second is at n/rate into it; a slot whose
    moment has passed is skipped, not used late, so calls go out only on the
    grid and no second holds more than the rate. Reserved here, by the caller,
    one cache call per second of slots: the threads that make the calls only
    wait for theirs (on the embedded default the cache is a table, which a
    thread could not write while the caller's transaction holds SQLite's lock).
    """
    slots: list[float] = []
    second = int(time.time())
    for _ in range(10_000):  # bounded: count / per_second seconds of slots in practice
        if len(slots) >= count:
            break
        now = time.time()
        second = max(second, int(now))
        key = f"gateway-rate:{kind}:{second}"
        cache.add(key, 0, timeout=max(5, count // max(per_second, 1) + 5))
        wanted = count - len(slots)
        try:
            used = cache.incr(key, wanted)
        except ValueError:  # expired between add and incr
            continue
        for n in range(used - wanted + 1, min(used, per_second) + 1):
            at = second + (n - 1) / per_second
            if at >= now - 0.005:
                slots.append(at)
        second += 1
    return slots[:count]


def _due(status: str, now: datetime):
    return Refund.objects.filter(status=status).filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def refunds_due_exist(status: str) -> bool:
    return _due(status, timezone.now()).exists()


def _claim(status: str, *, limit: int, now: datetime, submitted_before: datetime | None = None, above_pk: int = 0) -> list[int]:
    with transaction.atomic():
        due = _due(status, now).select_for_update(skip_locked=True)
        if submitted_before is not None:
            due = due.filter(submitted_at__lte=submitted_before)
        if above_pk:
            due = due.filter(pk__gt=above_pk)
        ids = list(due.order_by("pk").values_list("pk", flat=True)[:limit])
        if ids:
            Refund.objects.filter(pk__in=ids).update(next_attempt_at=now + CLAIM_LEASE)
    return ids


def _call_all(refunds: list[Refund], method: str, kind: str) -> dict[int, RefundState | GatewayError]:
    rate = settings.AUCTION_REFUND_RATE_PER_SECOND

    def call(refund: Refund, at: float):
        wait = at - time.time()
        if wait > 0:
            time.sleep(wait)
        try:
            return getattr(gateway_for(refund.payment.gateway), method)(refund)
        except GatewayError as failure:
            return failure
        finally:
            connections.close_all()  # this thread's own, if the gateway opened one

    with ThreadPoolExecutor(max_workers=max(1, settings.AUCTION_REFUND_CONCURRENCY)) as pool:
        slots = rate_slots(kind, count=len(refunds), per_second=rate)
        if len(slots) < len(refunds):  # the bound above ran out: the rest follow on the grid
            last = slots[-1] if slots else time.time()
            slots += [last + (i + 1) / rate for i in range(len(refunds) - len(slots))]
        return dict(zip([r.pk for r in refunds], pool.map(call, refunds, slots), strict=True))


def refunds_submit(*, limit: int | None = None, now: datetime | None = None) -> int:
    """Send one batch of pending refunds due; the number sent."""
    now = now or timezone.now()
    ids = _claim(RefundStatus.PENDING, limit=limit or settings.AUCTION_REFUND_BATCH, now=now)
    if not ids:
        return 0
    answers = _call_all(list(Refund.objects.select_related("payment").filter(pk__in=ids)), "refund", "refund")
    with transaction.atomic():
        refunds = list(Refund.objects.select_for_update().select_related("payment").filter(pk__in=ids, status=RefundStatus.PENDING).order_by("pk"))
        applied_at = timezone.now()
        events, submitted, finals = [], [], []
        for refund in refunds:
            answer = answers[refund.pk]
            refund.attempts += 1
            subjects = {"user_id": refund.payment.user_id, "refund": refund, "payment": refund.payment, "amount": refund.amount}
            if isinstance(answer, GatewayError):
                refund.last_error = str(answer)[:2000]
                refund.next_attempt_at = applied_at + refund_retry_delay(refund.attempts)
                events.append(Event(kind="refund.send_failed", actor="job", **subjects, data={
                    "attempts": refund.attempts, "error": refund.last_error[:200], "next_attempt_at": refund.next_attempt_at.isoformat()}))
                continue
            refund.status = RefundStatus.PROCESSING
            refund.gateway_refund_id = answer.gateway_refund_id
            refund.submitted_at = applied_at
            refund.next_attempt_at = None
            events.append(Event(kind="refund.submitted", actor="job", **subjects))
            submitted.append(refund)
            if answer.status != "processing":
                finals.append((refund, answer.status == "succeeded"))
        Refund.objects.bulk_update(refunds, ["attempts", "status", "gateway_refund_id", "submitted_at", "last_error", "next_attempt_at"], batch_size=500)
        events_record_bulk(events)
        for refund in submitted:
            signals.refund_submitted.send(sender=Refund, refund_id=refund.pk)
        refunds_finish(finals, actor="gateway")
    return len(ids)


def refunds_poll(*, limit: int | None = None, now: datetime | None = None, submitted_before: datetime | None = None) -> int:
    """Learn one batch of processing refunds' outcomes from the gateway; the number asked about."""
    return len(_poll_batch(limit=limit, now=now, submitted_before=submitted_before))


def refunds_poll_all(*, budget_seconds: float = 45.0, now: datetime | None = None, submitted_before: datetime | None = None) -> int:
    """Every processing refund once, in batches by id (one still processing is asked
    again by a later run, not by the next batch of this one)."""
    started, asked, above = time.monotonic(), 0, 0
    while time.monotonic() - started < budget_seconds:
        ids = _poll_batch(now=now, submitted_before=submitted_before, above_pk=above)
        if not ids:
            break
        asked, above = asked + len(ids), max(ids)
    return asked


def _poll_batch(*, limit: int | None = None, now: datetime | None = None, submitted_before: datetime | None = None, above_pk: int = 0) -> list[int]:
    now = now or timezone.now()
    ids = _claim(RefundStatus.PROCESSING, limit=limit or settings.AUCTION_REFUND_BATCH, now=now, submitted_before=submitted_before, above_pk=above_pk)
    if not ids:
        return []
    answers = _call_all(list(Refund.objects.select_related("payment").filter(pk__in=ids)), "refund_query", "refund_query")
    outcomes = {pk: answer.status == "succeeded" for pk, answer in answers.items()
                if not isinstance(answer, GatewayError) and answer.status != "processing"}
    with transaction.atomic():
        refunds = list(Refund.objects.select_for_update().select_related("payment").filter(pk__in=outcomes, status=RefundStatus.PROCESSING).order_by("pk"))
        refunds_finish([(refund, outcomes[refund.pk]) for refund in refunds], actor="job")
    # The claim's lease is only for the calls: one still processing is anyone's
    # to ask about again (the sweep waits REFUND_POLL_AFTER after the send).
    Refund.objects.filter(pk__in=[pk for pk in ids if pk not in outcomes], status=RefundStatus.PROCESSING).update(next_attempt_at=None)
    return ids


def refunds_finish(outcomes: list[tuple[Refund, bool]], *, actor: str) -> None:
    """Final outcomes of refunds the caller has locked and found unfinished; a
    refunded deposit becomes ``refunded`` in the same transaction."""
    if not outcomes:
        return
    completed_at = timezone.now()
    events = []
    for refund, succeeded in outcomes:
        refund.status = RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED
        refund.completed_at = completed_at
        refund.next_attempt_at = None
        payment = refund.payment
        events.append(Event(
            kind="refund.succeeded" if succeeded else "refund.failed", actor=actor, user_id=payment.user_id, refund=refund,
            payment=payment, deposit_id=payment.deposit_id, order_id=payment.order_id, amount=refund.amount,
        ))
    Refund.objects.bulk_update([refund for refund, _ in outcomes], ["status", "completed_at", "next_attempt_at"], batch_size=500)
    deposit_ids = [refund.payment.deposit_id for refund, succeeded in outcomes if succeeded and refund.payment.purpose == PaymentPurpose.DEPOSIT]
    deposits = list(Deposit.objects.select_for_update().filter(pk__in=deposit_ids, status=DepositStatus.REFUNDING).order_by("pk"))
    if deposits:
        Deposit.objects.filter(pk__in=[d.pk for d in deposits]).update(status=DepositStatus.REFUNDED, updated_at=completed_at)
        events.extend(Event(kind="deposit.refunded", actor="gateway", user_id=d.user_id, deposit=d, amount=d.amount) for d in deposits)
        notifications_queue_many([
            {"user_id": d.user_id, "kind": NotificationKind.REFUNDED, "object_id": d.pk, "lot_id": d.lot_id} for d in deposits
        ])
    events_record_bulk(events)


def refunds_run(step, *, budget_seconds: float = 45.0, **kwargs) -> int:
    """Batches of ``step`` until none is left or the budget is spent (the caller runs again)."""
    started, done = time.monotonic(), 0
    while time.monotonic() - started < budget_seconds:
        count = step(**kwargs)
        done += count
        if count == 0:
            break
    return done
