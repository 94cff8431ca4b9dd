"""二拍: an unsold or defaulted lot re-auctioned in a special not yet bidding.

The new lot's page is made by ``cms.relisting`` (pages are the editors');
these are the rules it is held to and what it records, under the old lot's
lock: a lot is relisted once (``relisted_from`` is one-to-one), never one
that sold, the reserve steps down at most ``AUCTION_RELIST_MAX_STEP_DOWN_PERCENT``
per round, and the defaulter is barred from the new lot.
"""

from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from auction.models import Lot, LotStatus, Special
from auction.money import format_yuan
from auction.services.bars import lot_bars_carry
from auction.services.catalog import LotTerms, lot_terms_errors
from auction.services.events import event_record
from auction.services.market_rows import market_rows_update

RELISTABLE = (LotStatus.UNSOLD, LotStatus.DEFAULTED)


def relist_refusal(lot: Lot) -> str:
    """Why ``lot`` cannot be re-auctioned; empty when it can."""
    if lot.status not in RELISTABLE:
        if lot.status == LotStatus.SOLD:
            return _("Lot “%(lot)s” is sold and its order stands: only an unsold or defaulted lot can be re-auctioned.") % {"lot": lot.title}
        return _("Lot “%(lot)s” is %(status)s: only an unsold or defaulted lot can be re-auctioned.") % {
            "lot": lot.title, "status": lot.get_status_display()}
    relisted = Lot.objects.filter(relisted_from=lot).values_list("pk", flat=True).first()
    if relisted:
        return _("Lot “%(lot)s” was already re-auctioned as lot %(new)s: a lot is relisted once.") % {"lot": lot.title, "new": relisted}
    return ""


def lowest_reserve(lot: Lot) -> int:
    """The step-down cap: the old reserve less the allowed percentage, in whole fen (rounded up)."""
    keep = 100 - settings.AUCTION_RELIST_MAX_STEP_DOWN_PERCENT
    return -(-lot.reserve_price * keep // 100)


def relist_check(*, lot: Lot, special: Special, terms: LotTerms, now: datetime | None = None) -> dict[str, str]:
    """Every refusal, by field (``__all__`` for the lot itself)."""
    errors: dict[str, str] = {}
    refusal = relist_refusal(lot)
    if refusal:
        errors["__all__"] = refusal
    if special.is_bidding_opened(now or timezone.now()):
        errors["special"] = _("Special “%(special)s” is already bidding: pick one not yet open.") % {"special": special.title}
    errors.update(lot_terms_errors(terms))
    floor = lowest_reserve(lot)
    if "reserve_price" not in errors and lot.reserve_price and terms.reserve_price < floor:
        errors["reserve_price"] = _("The reserve may step down at most %(percent)s %% per round: at least %(floor)s (was %(was)s).") % {
            "percent": settings.AUCTION_RELIST_MAX_STEP_DOWN_PERCENT, "floor": format_yuan(floor), "was": format_yuan(lot.reserve_price)}
    return errors


def relist_record(*, old: Lot, new: Lot, staff: str) -> list[int]:
    """Under the old lot's lock, once the new lot's row exists: link them, bar the defaulter, write the event."""
    # One-to-one: a second relist of the same lot meets the unique constraint.
    market_rows_update(Lot.objects.filter(pk=new.pk), relisted_from=old)
    barred = lot_bars_carry(old=old, new=new)
    event_record(
        "lot.relisted", actor="ops", lot=old, special_id=new.special_id,
        data={"new_lot_id": new.pk, "staff": staff, "start_price": new.start_price, "reserve_price": new.reserve_price,
              "barred_user_ids": barred},
    )
    return barred


def relist_validate(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError(errors)
