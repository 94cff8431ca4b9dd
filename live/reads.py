"""What a socket is shown, read as the HTTP API reads it (sync: called through sync_to_async)."""

from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth import get_user
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from api import presenters
from auction import selectors
from auction.errors import Unauthenticated
from auction.models import Bid, Deposit, Lot, Order, User
from auction.services.tokens import token_user

# A burst longer than this between two messages is cut to its newest bids.
MAX_BIDS_PER_MESSAGE = 50


@dataclass(frozen=True)
class Origin:
    """Stands in for the request where presenters make media URLs absolute."""

    scheme: str
    host: str

    def build_absolute_uri(self, location: str) -> str:
        return f"{self.scheme}://{self.host}{location}"


def fresh(function):
    """Each call may land on a connection the database closed meanwhile (as a request would)."""

    def wrapper(*args, **kwargs):
        close_old_connections()
        return function(*args, **kwargs)

    return wrapper


@fresh
def user_for_token(raw_token: str) -> User | None:
    try:
        return token_user(raw_token=raw_token)
    except Unauthenticated:
        return None


@fresh
def is_staff_session(session_key: str) -> bool:
    """The session is a logged-in admin user's (as the Wagtail admin itself decides: access_admin).

    Read through Django's own ``get_user``, so a session that was logged out,
    expired, or outlived a password change is nobody.
    """
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    user = get_user(SimpleNamespace(session=session))
    return bool(user.is_authenticated and user.is_active and user.has_perm("wagtailadmin.access_admin"))


@fresh
def snapshot(lot_id: int, user: User | None, origin: Origin) -> tuple[dict, int, int] | None:
    """The lot as ``GET /lots/{id}`` shows it to this caller, its version, and its newest bid's id."""
    lot = selectors.lot_detail(lot_id=lot_id)
    if lot is None:
        return None
    body = presenters.lot_detail(origin, lot, timezone.now(), user)
    newest_bid = Bid.objects.filter(lot_id=lot_id).order_by("-id").values_list("id", flat=True).first() or 0
    return body, lot.version, newest_bid


def bid(row: Bid) -> dict:
    return {
        "id": row.pk,
        "price": row.price,
        "bidder": selectors.mask_nickname(row.user.nickname),
        "created_at": presenters.local(row.created_at),
    }


@fresh
def lot_changes(after_bid_ids: dict[int, int]) -> dict[int, dict]:
    """For each lot: its summary as a ``lot`` message shows it, and the bids after the id given.

    A lot no longer published comes back as None: its watchers are told it changed
    (status and all) no more.
    """
    now = timezone.now()
    lots = list(Lot.objects.filter(pk__in=list(after_bid_ids), is_published=True, special__is_published=True)
                .select_related("special"))
    new_bids = _bids_after({lot.pk: after_bid_ids[lot.pk] for lot in lots})
    changes: dict[int, dict] = {}
    for lot in lots:
        card = selectors.lot_card(lot=lot)
        bids = new_bids.get(lot.pk, [])
        changes[lot.pk] = {
            "lot": {
                "id": lot.pk,
                "special_id": lot.special_id,
                "title": card["title"],
                "cover": card["cover"],
                "status": lot.status_at(now),
                "start_price": lot.start_price,
                "current_price": lot.current_price,
                "bid_count": lot.bid_count,
                "ends_at": presenters.local(lot.ends_at),
                "next_min_bid": lot.next_min_bid(),
                "reserve_met": lot.reserve_met,
            },
            "version": lot.version,
            "bids": [bid(row) for row in bids],
            "newest_bid_id": bids[0].pk if bids else after_bid_ids[lot.pk],
        }
    return changes


def _bids_after(after_bid_ids: dict[int, int]) -> dict[int, list[Bid]]:
    """Each lot's bids after the id given, newest first, at most MAX_BIDS_PER_MESSAGE each:
    one query for all the lots (a hub reads every due lot at once), one per lot
    only when a burst filled the shared limit."""
    if not after_bid_ids:
        return {}
    condition = Q()
    for lot_id, after in after_bid_ids.items():
        condition |= Q(lot_id=lot_id, id__gt=after)
    columns = ("id", "lot", "price", "created_at", "user__nickname")
    limit = MAX_BIDS_PER_MESSAGE * len(after_bid_ids)
    rows = list(Bid.objects.filter(condition).select_related("user").only(*columns).order_by("-id")[:limit])
    if len(rows) >= limit:
        # Cut by the shared limit, a lot's older bids may be missing: each lot on its own.
        return {lot_id: list(Bid.objects.filter(lot_id=lot_id, id__gt=after).select_related("user").only(*columns)
                             .order_by("-id")[:MAX_BIDS_PER_MESSAGE]) for lot_id, after in after_bid_ids.items()}
    found: dict[int, list[Bid]] = {}
    for row in rows:
        kept = found.setdefault(row.lot_id, [])
        if len(kept) < MAX_BIDS_PER_MESSAGE:
            kept.append(row)
    return found


@fresh
def deposit(deposit_id: int, user_id: int) -> dict | None:
    row = Deposit.objects.filter(pk=deposit_id, user_id=user_id).first()
    return presenters.deposit(row) if row else None


@fresh
def order(order_id: int | None, user_id: int, origin: Origin, order_no: str | None = None) -> dict | None:
    rows = Order.objects.filter(user_id=user_id)
    row = rows.filter(pk=order_id).first() if order_id else rows.filter(order_no=order_no).first()
    return presenters.order(origin, row) if row else None
