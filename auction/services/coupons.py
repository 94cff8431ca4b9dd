"""优惠券: claimed in the coupon centre, locked by an order payment, used or released.

The guards are in the database, not in Python checks before a write:

- never oversold: the claim's ``UPDATE ... SET issued = issued + 1 WHERE
  issued < total`` matches no row once the last one is gone, and a CHECK
  constraint (issued <= total) stands behind it;
- never over the per-user limit: each claim takes a ``claim_number`` in
  1..per_user_limit, unique per (coupon, user), so two racing claims of one
  user cannot take the same place; the loser's transaction (its issue
  included) rolls back;
- one coupon per order: ``UserCoupon.order`` is unique, and a coupon is only
  locked, used or released under the order's row lock.

An unused coupon past ``valid_until`` is expired at once in every read
(``status_at``, ``status_filter``); the sweep flips the stored status later.
"""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone

from auction.errors import (
    CouponLimitReached,
    CouponNotApplicable,
    CouponNotClaimable,
    CouponSoldOut,
    CouponTotalBelowIssued,
    CouponUnavailable,
    NotFound,
)
from auction.models import Coupon, Lot, Order, Payment, User, UserCoupon, UserCouponStatus
from auction.services.events import event_record

# Fields an operator edits; ``issued`` is never among them.
COUPON_TERMS = (
    "title", "amount", "min_amount", "special_id", "total", "per_user_limit", "claim_starts_at", "claim_ends_at",
    "valid_from", "valid_until", "valid_days", "enabled",
)
# Reads of the terms a claim may lose to operators' edits before it gives up.
CLAIM_ATTEMPTS = 3


# --- reads -----------------------------------------------------------------------


def coupons_claimable(*, now: datetime) -> QuerySet[Coupon]:
    """The coupon centre: enabled, inside the claim window, not past fixed validity.

    Sold-out coupons stay listed (``remaining`` 0) until their window ends, so
    the centre can show 已抢光 instead of a coupon vanishing while one looks.
    """
    coupons = Coupon.objects.filter(enabled=True, claim_starts_at__lte=now, claim_ends_at__gt=now).filter(
        Q(valid_until__isnull=True) | Q(valid_until__gt=now)
    )
    return coupons.order_by("claim_ends_at", "id")


def claimed_counts(*, user: User, coupon_ids) -> dict[int, int]:
    """How many of each coupon the user holds (one index range per coupon, however hot it is)."""
    rows = UserCoupon.objects.filter(user=user, coupon_id__in=set(coupon_ids)).values("coupon_id").annotate(n=Count("id"))
    return {row["coupon_id"]: row["n"] for row in rows}


def status_filter(status: str, now: datetime) -> Q:
    """Rows whose status *as shown* is ``status`` (expired by time included)."""
    if status == UserCouponStatus.UNUSED:
        return Q(status=UserCouponStatus.UNUSED, valid_until__gt=now)
    if status == UserCouponStatus.EXPIRED:
        return Q(status=UserCouponStatus.EXPIRED) | Q(status=UserCouponStatus.UNUSED, valid_until__lte=now)
    return Q(status=status)


def user_coupons(*, user: User, now: datetime, status: str | None = None) -> QuerySet[UserCoupon]:
    coupons = UserCoupon.objects.filter(user=user).select_related("coupon", "order")
    if status:
        coupons = coupons.filter(status_filter(status, now))
    return coupons.order_by("-id")


# --- claiming ----------------------------------------------------------------------


def _refusal(coupon: Coupon, now: datetime) -> Exception:
    if not coupon.is_claimable_at(now):
        return CouponNotClaimable(claim_starts_at=coupon.claim_starts_at.isoformat(), claim_ends_at=coupon.claim_ends_at.isoformat())
    return CouponSoldOut()


def coupon_claim(*, coupon_id: int, user: User, now: datetime | None = None) -> UserCoupon:
    """Claim one; 404 for no such coupon, else sold out, limit reached or not claimable."""
    now = now or timezone.now()
    lost_places = changed_terms = 0
    while True:
        coupon = Coupon.objects.filter(pk=coupon_id).first()
        if coupon is None:
            raise NotFound()
        if not coupon.is_claimable_at(now):
            raise _refusal(coupon, now)
        try:
            user_coupon = _claim_once(coupon=coupon, user=user, now=now)
        except IntegrityError:
            # A concurrent claim of this user took the same claim_number and
            # committed; ours rolled back, its issue included. Each loss means
            # one more place taken, so counting again ends at the limit.
            lost_places += 1
            if lost_places > coupon.per_user_limit:
                raise
            continue
        if user_coupon is not None:
            return user_coupon
        # No row issued: sold out meanwhile (the next read says so), or an
        # operator changed the terms since we read them: read them again.
        changed_terms += 1
        if changed_terms >= CLAIM_ATTEMPTS:
            raise CouponNotClaimable("The coupon changed while you claimed it; try again.")


def _claim_once(*, coupon: Coupon, user: User, now: datetime) -> UserCoupon | None:
    """One attempt, under the terms read in ``coupon``; None when no row was issued.

    Claims of a hot coupon queue on its row from the UPDATE to the commit, so
    everything else is done before the UPDATE: the terms are checked by
    version (``updated_at``) in its WHERE instead of being read again, and the
    user's place under the limit is counted first, the unique claim_number
    being the guard when two claims of one user count at once.
    """
    valid_from, valid_until = coupon.validity_for_claim_at(now)
    with transaction.atomic():
        held = UserCoupon.objects.filter(coupon_id=coupon.pk, user=user).count()
        if held >= coupon.per_user_limit:
            raise CouponLimitReached(per_user_limit=coupon.per_user_limit)
        if coupon.issued >= coupon.total:
            raise CouponSoldOut()
        user_coupon = UserCoupon(
            user=user, coupon=coupon, claim_number=held + 1, title=coupon.title, amount=coupon.amount,
            min_amount=coupon.min_amount, special_id=coupon.special_id, valid_from=valid_from, valid_until=valid_until,
            claimed_at=now,
        )
        issued = Coupon.objects.filter(pk=coupon.pk, updated_at=coupon.updated_at, issued__lt=F("total")).update(
            issued=F("issued") + 1
        )
        if not issued:
            return None
        coupon.issued += 1  # at least: others may have claimed since we read it
        user_coupon.save(force_insert=True)
        event_record(
            "coupon.claimed", actor="user", user=user, coupon=coupon, user_coupon=user_coupon, amount=coupon.amount,
            data={"claim_number": held + 1},
        )
    return user_coupon


# --- on an order ---------------------------------------------------------------------


def user_coupon_of(*, user: User, user_coupon_id: int) -> UserCoupon:
    user_coupon = UserCoupon.objects.filter(pk=user_coupon_id, user=user).first()
    if user_coupon is None:
        raise CouponUnavailable(user_coupon_id=user_coupon_id)  # another user's coupon does not exist for this caller
    return user_coupon


def coupon_discount_for(*, order: Order, user_coupon: UserCoupon, now: datetime) -> int:
    """The discount this coupon gives this order, or why it cannot.

    Capped at what is left after the deposit credit: a coupon never makes
    ``amount_due`` negative and never pays back a deposit.
    """
    held_by_this_order = user_coupon.status == UserCouponStatus.LOCKED and user_coupon.order_id == order.pk
    if user_coupon.status != UserCouponStatus.UNUSED and not held_by_this_order:
        raise CouponUnavailable(user_coupon_id=user_coupon.pk, status=user_coupon.status_at(now))
    if not user_coupon.is_valid_at(now):
        raise CouponUnavailable(
            "This coupon is not valid now.", user_coupon_id=user_coupon.pk, status=user_coupon.status_at(now),
            valid_from=user_coupon.valid_from.isoformat(), valid_until=user_coupon.valid_until.isoformat(),
        )
    if user_coupon.special_id is not None:
        special_id = Lot.objects.values_list("special_id", flat=True).get(pk=order.lot_id)
        if special_id != user_coupon.special_id:
            raise CouponNotApplicable("This coupon is only for another special.", special_id=user_coupon.special_id)
    # The minimum is on what the buyer owes: the hammer price and the premium.
    if order.total < user_coupon.min_amount:
        raise CouponNotApplicable("The order is below this coupon's minimum amount.", min_amount=user_coupon.min_amount)
    left_to_pay = order.total - order.deposit_credit
    if left_to_pay <= 0:
        raise CouponNotApplicable("The deposit already covers this order: nothing is left to discount.")
    return min(user_coupon.amount, left_to_pay)


def order_coupon_choose(*, order: Order, user: User, user_coupon_id: int | None, now: datetime) -> tuple[UserCoupon | None, int]:
    """Under the order's lock, paying: the coupon chosen (validated) and its discount.

    One coupon per order: a coupon the order held before and is not paying
    with now goes back to unused. Rows are locked in id order, so two
    payments swapping coupons cannot deadlock.
    """
    held_id = UserCoupon.objects.filter(order=order, status=UserCouponStatus.LOCKED).values_list("pk", flat=True).first()
    wanted = {pk for pk in (held_id, user_coupon_id) if pk is not None}
    rows = {row.pk: row for row in UserCoupon.objects.select_for_update().filter(pk__in=wanted).order_by("pk")}
    chosen, discount = None, 0
    if user_coupon_id is not None:
        chosen = rows.get(user_coupon_id)
        if chosen is None or chosen.user_id != user.pk:
            raise CouponUnavailable(user_coupon_id=user_coupon_id)
        discount = coupon_discount_for(order=order, user_coupon=chosen, now=now)
    if held_id is not None and held_id != user_coupon_id:
        coupon_release(user_coupon=rows[held_id], order=order, reason="paying without it", actor="user")
    return chosen, discount


def coupon_lock(*, order: Order, user_coupon: UserCoupon, payment: Payment | None) -> None:
    """Held by this order's payment in flight (or about to be used, with nothing to pay)."""
    if user_coupon.status == UserCouponStatus.LOCKED and user_coupon.order_id == order.pk and user_coupon.payment_id == (payment.pk if payment else None):
        return
    user_coupon.status = UserCouponStatus.LOCKED
    user_coupon.order = order
    user_coupon.payment = payment
    user_coupon.locked_at = timezone.now()
    user_coupon.save(update_fields=["status", "order", "payment", "locked_at", "updated_at"])
    # The payment is named in data, not as a subject: see UserCoupon.payment on locks.
    event_record(
        "coupon.locked", actor="user", user_id=order.user_id, order=order, coupon_id=user_coupon.coupon_id,
        user_coupon=user_coupon, amount=order.coupon_discount, data={"out_trade_no": payment.out_trade_no if payment else None},
    )


def coupon_held_by(order: Order) -> UserCoupon | None:
    """The coupon an order's payment holds, locked; call under the order's lock."""
    return UserCoupon.objects.select_for_update().filter(order=order, status=UserCouponStatus.LOCKED).first()


def coupon_use(*, order: Order, payment: Payment | None, actor: str) -> UserCoupon | None:
    """The order is paid: its locked coupon is spent."""
    user_coupon = coupon_held_by(order)
    if user_coupon is None:
        return None
    user_coupon.status = UserCouponStatus.USED
    user_coupon.payment = payment
    user_coupon.used_at = order.paid_at or timezone.now()
    user_coupon.save(update_fields=["status", "payment", "used_at", "updated_at"])
    event_record(
        "coupon.used", actor=actor, user_id=order.user_id, order=order, payment=payment, coupon_id=user_coupon.coupon_id,
        user_coupon=user_coupon, amount=order.coupon_discount,
    )
    return user_coupon


def coupon_release(*, user_coupon: UserCoupon, order: Order, reason: str, actor: str) -> None:
    """Back to unused, and the order's discount with it: a payment made for the
    discounted amount no longer matches, so ``order_paid`` refunds it."""
    user_coupon.status = UserCouponStatus.UNUSED
    user_coupon.order = None
    user_coupon.payment = None
    user_coupon.locked_at = None
    user_coupon.save(update_fields=["status", "order", "payment", "locked_at", "updated_at"])
    discount = order.coupon_discount
    order.coupon_discount = 0
    order.save(update_fields=["coupon_discount"])
    event_record(
        "coupon.released", actor=actor, user_id=order.user_id, order=order, coupon_id=user_coupon.coupon_id,
        user_coupon=user_coupon, amount=discount, data={"reason": reason},
    )


def coupon_release_for_order(*, order: Order, reason: str, actor: str) -> bool:
    """Under the order's lock: whatever coupon it holds goes back (overdue)."""
    user_coupon = coupon_held_by(order)
    if user_coupon is None:
        return False
    coupon_release(user_coupon=user_coupon, order=order, reason=reason, actor=actor)
    return True


def coupon_release_for_payment(*, payment: Payment, reason: str, actor: str) -> bool:
    """A closed (failed, expired) payment gives back the coupon it held, if it still holds it."""
    if payment.order_id is None:
        return False
    with transaction.atomic():
        # Payment, then order: the order a success being applied locks them in,
        # so a success racing this close waits instead of deadlocking.
        Payment.objects.select_for_update().filter(pk=payment.pk).first()
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        user_coupon = (
            UserCoupon.objects.select_for_update().filter(order=order, status=UserCouponStatus.LOCKED, payment=payment).first()
        )
        if user_coupon is None:
            return False
        coupon_release(user_coupon=user_coupon, order=order, reason=reason, actor=actor)
    return True


# --- sweep and admin -----------------------------------------------------------------


def user_coupon_expire(*, user_coupon_id: int, now: datetime | None = None) -> bool:
    """Flip the stored status of an unused coupon past its validity (reads already show it expired)."""
    now = now or timezone.now()
    flipped = UserCoupon.objects.filter(pk=user_coupon_id, status=UserCouponStatus.UNUSED, valid_until__lte=now).update(
        status=UserCouponStatus.EXPIRED, updated_at=now
    )
    if flipped:
        row = UserCoupon.objects.only("user_id", "coupon_id").get(pk=user_coupon_id)
        event_record("coupon.expired", actor="job", user_id=row.user_id, coupon_id=row.coupon_id, user_coupon_id=user_coupon_id)
    return bool(flipped)


def coupon_save(*, coupon: Coupon, staff: str = "") -> Coupon:
    """Create, or change the terms of, a coupon; claimed coupons keep theirs.

    An edit never writes ``issued``: the total is changed by a conditional
    UPDATE that refuses to go below what racing claims have issued meanwhile.
    """
    if coupon.pk is None:
        coupon.issued = 0
        coupon.save()
        event_record("coupon.created", actor="ops", coupon=coupon, amount=coupon.amount, data={"staff": staff, "total": coupon.total})
        return coupon
    terms = {name: getattr(coupon, name) for name in COUPON_TERMS}
    with transaction.atomic():
        changed = Coupon.objects.filter(pk=coupon.pk, issued__lte=coupon.total).update(**terms, updated_at=timezone.now())
        current = Coupon.objects.get(pk=coupon.pk)
        if not changed:
            raise CouponTotalBelowIssued(
                f"{current.issued} already issued: the total cannot be less than that.", issued=current.issued
            )
        event_record(
            "coupon.changed", actor="ops", coupon=current, amount=current.amount,
            data={"staff": staff, **{name: str(value) for name, value in terms.items()}},
        )
    coupon.issued, coupon.updated_at = current.issued, current.updated_at
    return coupon
