"""保证金: asked for, paid (held), then refunded, credited to the order, or forfeited."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from auction import signals
from auction.errors import BidderBarred, DepositExists, LotNotOpen, NotFound, ValidationFailed
from auction.models import (
    Deposit,
    DepositScope,
    DepositStatus,
    Event,
    Lot,
    LotBar,
    NotificationKind,
    Payment,
    PaymentPurpose,
    Special,
    User,
)
from auction.models.catalog import LOT_OUTCOMES
from auction.selectors import special_closes_at
from auction.services.events import event_record, events_record_bulk
from auction.services.notifications import notification_queue
from auction.services.payment_rows import payment_open, refund_create, refunds_create


class NoDepositNeeded(ValidationFailed):
    default_message = "No deposit is offered for this."


def _is_closed(deposit: Deposit, now: datetime) -> bool:
    if deposit.scope == DepositScope.LOT:
        lot = Lot.objects.only("status", "ends_at").get(pk=deposit.lot_id)
        return lot.status in LOT_OUTCOMES or now >= lot.ends_at
    special = Special.objects.get(pk=deposit.special_id)
    return now >= special_closes_at(special)


def deposit_request(*, user: User, lot_id: int | None = None, special_id: int | None = None) -> tuple[Deposit, Payment, bool]:
    """The deposit and its payment for a lot or a special; the same pending one comes back.

    Returns ``(deposit, payment, created)``. The caller prepares the payment
    with the gateway after the transaction commits.
    """
    now = timezone.now()
    if lot_id is not None:
        lot = Lot.objects.select_related("special").filter(pk=lot_id, is_published=True, special__is_published=True).first()
        if lot is None:
            raise NotFound()
        special, scope, amount = lot.special, DepositScope.LOT, lot.deposit
        if lot.status in LOT_OUTCOMES or now >= lot.ends_at:
            raise LotNotOpen("This lot has ended.")
        if not amount:
            raise NoDepositNeeded("This lot needs no deposit: bid right away.")
    else:
        special = Special.objects.filter(pk=special_id, is_published=True).first()
        if special is None:
            raise NotFound()
        lot, scope, amount = None, DepositScope.SPECIAL, special.deposit
        if now >= special_closes_at(special):
            raise LotNotOpen("This special has ended.")
        if not amount:
            raise NoDepositNeeded("This special offers no special-wide deposit.")
    key = Deposit.key_for(user_id=user.pk, scope=scope, special_id=special.pk, lot_id=lot.pk if lot else None)
    for _ in range(3):
        try:
            with transaction.atomic():
                # One request at a time decides a user's deposits: the user's
                # row is locked before anything is read, so a special-wide and
                # a lot deposit asked for at once cannot both pass the other's
                # check (the unique active_key only guards the same scope).
                locked = User.objects.select_for_update().only("id", "barred_at").get(pk=user.pk)
                # The bar is set under this same lock (bars.default_recorded).
                if locked.barred_at is not None or (lot is not None and LotBar.objects.filter(lot=lot, user=user).exists()):
                    raise BidderBarred()
                existing = _active_in_the_way(user=user, scope=scope, special=special, key=key, now=now)
                if existing is None:
                    deposit = Deposit.objects.create(
                        user=user, scope=scope, special=special, lot=lot, amount=amount, active_key=key
                    )
                    payment = payment_open(
                        purpose=PaymentPurpose.DEPOSIT, user=user, amount=amount, deposit=deposit,
                        expires_at=now + timedelta(seconds=settings.AUCTION_DEPOSIT_PAYMENT_SECONDS),
                    )
                    event_record("deposit.requested", actor="user", user=user, special=special, lot=lot, deposit=deposit, amount=amount)
                    return deposit, payment, True
        except IntegrityError:
            continue  # made meanwhile without the lock (an older process): take theirs on the next turn
        if existing.active_key == key and existing.status == DepositStatus.PENDING and existing.payment.expires_at > now:
            return existing, existing.payment, False
        if existing.status == DepositStatus.PENDING and existing.payment.expires_at <= now:
            # Given up on: cancelled (its payment closed) outside the user's
            # lock, which a success being applied to it may be waiting behind.
            deposit_cancel(deposit_id=existing.pk, reason="payment window passed")
            continue
        raise _exists_error(existing, scope=scope)
    raise DepositExists()


def _active_in_the_way(*, user: User, scope: str, special: Special, key: str, now: datetime) -> Deposit | None:
    """The user's pending or held deposit that stops a new one for ``key``: the
    same scope's, or one covering the same lots. A special-wide deposit covers
    every lot of its special; a lot deposit is in its way while that lot is
    still open (the winner's, held until the order is paid, covers no more bidding)."""
    same = Deposit.objects.filter(active_key=key).select_related("payment").first()
    if same is not None:
        return same
    if scope == DepositScope.LOT:
        covering = Deposit.key_for(user_id=user.pk, scope=DepositScope.SPECIAL, special_id=special.pk, lot_id=None)
        return Deposit.objects.filter(active_key=covering).select_related("payment").first()
    return (
        Deposit.objects.filter(
            user=user, special=special, scope=DepositScope.LOT, status__in=(DepositStatus.PENDING, DepositStatus.HELD),
            lot__ends_at__gt=now,
        )
        .exclude(lot__status__in=LOT_OUTCOMES)
        .select_related("payment")
        .order_by("pk")
        .first()
    )


def _exists_error(existing: Deposit, *, scope: str) -> DepositExists:
    if existing.scope == scope:
        return DepositExists(deposit_id=existing.pk)
    if existing.scope == DepositScope.SPECIAL:
        message = "Your special-wide deposit already covers this lot." if existing.status == DepositStatus.HELD else (
            "Your special-wide deposit covers this lot once it is paid."
        )
        return DepositExists(message, scope=DepositScope.SPECIAL, deposit_id=existing.pk, status=existing.status)
    return DepositExists(
        "You have a deposit for a lot of this special that is still open; a special-wide deposit would cover it twice.",
        scope=DepositScope.LOT, deposit_id=existing.pk, lot_id=existing.lot_id, status=existing.status,
    )


def deposits_for_user(*, user: User, status: str | None = None):
    deposits = Deposit.objects.filter(user=user).order_by("-id")
    return deposits.filter(status=status) if status else deposits


def deposit_paid(*, payment: Payment) -> Deposit:
    """Called under the payment's lock when its success is applied."""
    deposit = Deposit.objects.select_for_update().get(pk=payment.deposit_id)
    if deposit.status == DepositStatus.PENDING and not _is_closed(deposit, timezone.now()):
        deposit.status = DepositStatus.HELD
        deposit.save(update_fields=["status", "updated_at"])
        event_record("deposit.held", actor="gateway", user=deposit.user, special_id=deposit.special_id, lot_id=deposit.lot_id, deposit=deposit, amount=deposit.amount)
    elif deposit.status in (DepositStatus.PENDING, DepositStatus.CANCELLED):
        # Paid for a lot that already ended, or after we gave up waiting: the
        # money goes straight back.
        reason = "paid after the lot ended" if deposit.status == DepositStatus.PENDING else "paid after it was cancelled"
        _to_refunding(deposit, reason=reason, actor="gateway")
    return deposit


def _to_refunding(deposit: Deposit, *, reason: str, actor: str) -> None:
    deposit.status = DepositStatus.REFUNDING
    deposit.active_key = None
    deposit.save(update_fields=["status", "active_key", "updated_at"])
    event_record("deposit.refunding", actor=actor, user_id=deposit.user_id, special_id=deposit.special_id, lot_id=deposit.lot_id, deposit=deposit, amount=deposit.amount, data={"reason": reason})
    refund_create(payment=Payment.objects.get(deposit=deposit), reason=reason, actor=actor)


def deposit_refund(*, deposit: Deposit, reason: str, actor: str = "job") -> bool:
    """Refund a held deposit; the caller holds its lock. Others are left alone."""
    if deposit.status != DepositStatus.HELD:
        return False
    _to_refunding(deposit, reason=reason, actor=actor)
    return True


def deposit_forfeit(*, deposit: Deposit, reason: str, order=None, actor: str = "job") -> bool:
    """扣保证金: the caller holds the deposit's lock."""
    if deposit.status != DepositStatus.HELD:
        return False
    deposit.status = DepositStatus.FORFEITED
    deposit.active_key = None
    deposit.save(update_fields=["status", "active_key", "updated_at"])
    event_record("deposit.forfeited", actor=actor, user_id=deposit.user_id, special_id=deposit.special_id, lot_id=deposit.lot_id, deposit=deposit, order=order, amount=deposit.amount, data={"reason": reason})
    return True


def deposit_apply(*, deposit: Deposit, order, actor: str = "gateway") -> bool:
    """Credit the winner's lot deposit to their paid order; the caller holds its lock."""
    if deposit.status != DepositStatus.HELD:
        return False
    deposit.status = DepositStatus.APPLIED
    deposit.active_key = None
    deposit.save(update_fields=["status", "active_key", "updated_at"])
    event_record("deposit.applied", actor=actor, user_id=deposit.user_id, lot_id=deposit.lot_id, deposit=deposit, order=order, amount=deposit.amount)
    return True


def deposit_cancel(*, deposit_id: int, reason: str, actor: str = "job") -> bool:
    """A pending deposit never paid: cancelled, and its payment closed at the gateway."""
    with transaction.atomic():
        deposit = Deposit.objects.select_for_update().get(pk=deposit_id)
        if deposit.status != DepositStatus.PENDING:
            return False
        deposit.status = DepositStatus.CANCELLED
        deposit.active_key = None
        deposit.save(update_fields=["status", "active_key", "updated_at"])
        payment = Payment.objects.get(deposit=deposit)
        event_record("deposit.cancelled", actor=actor, user_id=deposit.user_id, deposit=deposit, payment=payment, data={"reason": reason})
        signals.payment_close_wanted.send(sender=Deposit, payment_id=payment.pk)
    return True


def deposit_refunded(*, deposit_id: int) -> None:
    changed = Deposit.objects.filter(pk=deposit_id, status=DepositStatus.REFUNDING).update(
        status=DepositStatus.REFUNDED, updated_at=timezone.now()
    )
    if changed:
        deposit = Deposit.objects.get(pk=deposit_id)
        event_record("deposit.refunded", actor="gateway", user_id=deposit.user_id, deposit=deposit, amount=deposit.amount)
        notification_queue(user_id=deposit.user_id, kind=NotificationKind.REFUNDED, object_id=deposit.pk, lot_id=deposit.lot_id)


def deposits_refund(deposits: list[Deposit], *, reasons: dict[int, str], actor: str = "job") -> int:
    """Refund held deposits whose locks the caller holds, in bulk: each becomes
    ``refunding`` with its refund row, in this transaction (a few queries for any number)."""
    held = [deposit for deposit in deposits if deposit.status == DepositStatus.HELD]
    if not held:
        return 0
    Deposit.objects.filter(pk__in=[d.pk for d in held], status=DepositStatus.HELD).update(
        status=DepositStatus.REFUNDING, active_key=None, updated_at=timezone.now()
    )
    events_record_bulk([
        Event(kind="deposit.refunding", actor=actor, user_id=d.user_id, special_id=d.special_id, lot_id=d.lot_id, deposit=d,
              amount=d.amount, data={"reason": reasons[d.pk]})
        for d in held
    ])
    for deposit in held:
        deposit.status, deposit.active_key = DepositStatus.REFUNDING, None
    payments = list(Payment.objects.filter(deposit__in=held).order_by("pk"))
    refunds_create(payments, reasons={p.pk: reasons[p.deposit_id] for p in payments}, actor=actor)
    return len(held)


def special_deposits_settle(*, special_id: int, now: datetime | None = None) -> int:
    """Special-wide deposits go back once every lot has its outcome and their payer
    owes nothing in the special; an overdue order forfeits them (see orders)."""
    from auction.models import Order, OrderStatus

    now = now or timezone.now()
    if Lot.objects.filter(special_id=special_id).exclude(status__in=LOT_OUTCOMES).exists():
        return 0
    special = Special.objects.get(pk=special_id)
    if now < special_closes_at(special):
        return 0
    settled = 0
    with transaction.atomic():
        deposits = Deposit.objects.select_for_update().filter(
            special_id=special_id, scope=DepositScope.SPECIAL, status=DepositStatus.HELD
        ).order_by("pk")
        for deposit in deposits:
            orders = Order.objects.filter(lot__special_id=special_id, user_id=deposit.user_id)
            if orders.filter(status=OrderStatus.OVERDUE).exists():
                settled += deposit_forfeit(deposit=deposit, reason="an order in the special went overdue")
            elif not orders.filter(status=OrderStatus.PENDING_PAYMENT).exists():
                settled += deposit_refund(deposit=deposit, reason="special ended, nothing left unpaid")
        for deposit in Deposit.objects.filter(special_id=special_id, scope=DepositScope.SPECIAL, status=DepositStatus.PENDING):
            deposit_cancel(deposit_id=deposit.pk, reason="special ended before payment")
    return settled

