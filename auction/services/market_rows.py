"""A lot's market row, read and written in hand-written SQL.

A contested lot takes hundreds of bids a second, and building an ORM query
costs more CPU than the database spends running it; these are the statements
every bid runs, so they are written once, here, by hand. They are plain SQL
that SQLite and MySQL both accept (Django's cursor turns ``%s`` into ``?``
for SQLite), with values passed through the backend's own adapters.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, QuerySet

from auction.db import datetime_from_db, datetime_to_db, loaded
from auction.errors import Unauthenticated
from auction.models import Bid, DepositScope, DepositStatus, Lot, LotStatus, Special
from auction.services.tokens import TOKEN_USER_JOIN_SQL, TokenKey, token_join_params

LOT_MARKET_COLUMNS = (
    "special_id", "is_published", "status", "ends_at", "start_price", "reserve_price", "deposit", "increment",
    "current_price", "leader_id", "bid_count", "version", "content_version", "position",
)
# ends_at, stagger_seconds and the cap: where anti-sniping must stop (Lot.latest_end).
SPECIAL_TERM_COLUMNS = ("is_published", "starts_at", "extension_seconds", "extension_cap_seconds", "ends_at", "stagger_seconds")

# The deposit, proxy and bar checks are scalar subqueries and the token is joined:
# MariaDB 10.11 runs this in 186 µs a round trip here, against 261 µs with
# EXISTS (... OR ...) and the token in a derived table.
_READ = """
SELECT {lot_columns}, {special_columns}, u.id,
       (SELECT MAX(d.status = %s AND ((d.scope = %s AND d.lot_id = l.id)
                                      OR (d.scope = %s AND d.special_id = l.special_id)))
          FROM auction_deposit d WHERE d.user_id = u.id),
       (SELECT 1 FROM auction_autobid a WHERE a.lot_id = l.id LIMIT 1),
       (u.barred_at IS NOT NULL OR EXISTS (SELECT 1 FROM auction_lotbar b WHERE b.lot_id = l.id AND b.user_id = u.id))
  FROM auction_lot l JOIN auction_special s ON s.id = l.special_id
  {bidder_join}
 WHERE l.id = %s
"""
_COLUMNS = {
    "lot_columns": ", ".join("l." + name for name in LOT_MARKET_COLUMNS),
    "special_columns": ", ".join("s." + name for name in SPECIAL_TERM_COLUMNS),
}
# The bidder comes as a user id, or as a token looked up in the same query.
_READ_FOR_USER = _READ.format(bidder_join="LEFT JOIN auction_user u ON u.id = %s AND u.is_active = %s", **_COLUMNS)
_READ_FOR_TOKEN = _READ.format(bidder_join=TOKEN_USER_JOIN_SQL, **_COLUMNS)
_LARGEST_ID = 2**63 - 1  # BIGINT, the ids' column type
_TOKEN_ONLY = f"SELECT u.id FROM (SELECT 1 AS one) x {TOKEN_USER_JOIN_SQL}"

# The write is conditional: it lands if nothing changed the market row since
# it was read (every writer of a market column bumps the version), or if only
# other bids did and this one still outbids them (OverBids). A lone plain bid
# adds one to bid_count and one to version, so ``version - bid_count`` stays
# put while only such bids land, and moves with any other write (terms,
# settlement, a proxy set or answering: see _version_step); the price, the
# leader and the end the bid was judged against are checked on the row as it
# is now. Else it matches no row.
_WRITE_TEMPLATE = """
UPDATE auction_lot
   SET status = %s, ends_at = %s, current_price = %s, leader_id = %s, {counters}
 WHERE id = %s
   AND (version = %s
        OR (%s = 1 AND version + %s = bid_count + %s AND status = %s AND ends_at = %s AND current_price <= %s
            AND (leader_id IS NULL OR leader_id <> %s)))
"""
_WRITE = _WRITE_TEMPLATE.format(counters="bid_count = bid_count + %s, version = version + %s")
_COUNTERS = "SELECT bid_count, version FROM auction_lot WHERE id = %s"

_INSERT_BID = "INSERT INTO auction_bid (lot_id, user_id, price, is_auto, created_at) VALUES (%s, %s, %s, %s, %s)"

# One bid written in one round trip (MySQL, multi-statements): the lot's row
# lock is then held only while the server runs these, never across the
# network. The INSERT adds the bid only if the UPDATE changed the row; a
# duplicate still meets (lot, price)'s unique constraint. The INSERT returns
# the bid's id and the counters the UPDATE left (which other bids may have
# moved), kept in session variables: a SELECT of its own cost MariaDB 70 µs
# more per bid. With no row inserted it returns none, so values a failed
# write left in those variables are never read.
_WRITE_ONE_BID = f"""
START TRANSACTION;
{_WRITE_TEMPLATE.format(counters="bid_count = (@bid_count := bid_count + %s), version = (@version := version + %s)").strip()};
INSERT INTO auction_bid (lot_id, user_id, price, is_auto, created_at) SELECT %s, %s, %s, %s, %s FROM DUAL
 WHERE ROW_COUNT() = 1 RETURNING id, @bid_count, @version;
COMMIT
"""


@dataclass(frozen=True)
class OverBids:
    """When a bid may land over a row that other bids moved since it was read:
    none but plain bids wrote it (``version - bid_count`` as read), its end is
    the one read, and its price beats the price there now by a full step
    (the current price is at most ``outbids``) from another bidder."""

    version_less_bids: int
    ends_at: datetime
    outbids: int
    bidder_id: int


@dataclass(frozen=True)
class MarketRead:
    """A lot's market row, its special's terms, and what the bidder brings."""

    lot: Lot
    special: Special
    bidder_id: int
    has_deposit: bool  # a held deposit for the lot or its special, or none asked
    has_proxies: bool
    barred: bool  # barred everywhere, or from this lot (a re-auction of one they defaulted on)


def market_read(*, lot_id: int, bidder: int | TokenKey) -> MarketRead | None:
    """One round trip, no lock: what a bid is checked against before it is
    written. ``bidder`` is a user id, or a token checked in the same query
    (Unauthenticated if it is not a live one)."""
    if not 0 < lot_id <= _LARGEST_ID:
        # Past any row's id (a path takes any digits): no lot, as the ORM's
        # lookups answer, instead of the driver's overflow.
        lot_id = 0
    if isinstance(bidder, TokenKey):
        sql, bidder_params = _READ_FOR_TOKEN, token_join_params(bidder)
    else:
        sql, bidder_params = _READ_FOR_USER, [bidder, True]
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        # Placeholders in the order they appear: the deposit's, the bidder's, the lot's.
        cursor.execute(sql, [DepositStatus.HELD, DepositScope.LOT, DepositScope.SPECIAL, *bidder_params, lot_id])
        row = cursor.fetchone()
        if row is None and isinstance(bidder, TokenKey):
            # No such lot: still a 401 first when the token is no good.
            cursor.execute(_TOKEN_ONLY, bidder_params)
            if cursor.fetchone()[0] is None:
                raise Unauthenticated()
    if row is None:
        return None
    bidder_id, has_deposit, has_proxies, barred = row[-4:]
    if bidder_id is None:
        raise Unauthenticated()
    lot_values = dict(zip(LOT_MARKET_COLUMNS, row[: len(LOT_MARKET_COLUMNS)], strict=True))
    special_values = dict(zip(SPECIAL_TERM_COLUMNS, row[len(LOT_MARKET_COLUMNS) : -4], strict=True))
    lot_values["is_published"] = bool(lot_values["is_published"])
    lot_values["ends_at"] = datetime_from_db(lot_values["ends_at"])
    special_values["is_published"] = bool(special_values["is_published"])
    special_values["starts_at"] = datetime_from_db(special_values["starts_at"])
    special_values["ends_at"] = datetime_from_db(special_values["ends_at"])
    lot = loaded(Lot, id=lot_id, **lot_values)
    special = loaded(Special, id=lot.special_id, **special_values)
    return MarketRead(
        lot=lot, special=special, bidder_id=bidder_id, has_deposit=bool(has_deposit) or not lot.deposit,
        has_proxies=bool(has_proxies), barred=bool(barred),
    )


def market_write(*, lot: Lot, read_version: int, bids: list[Bid], over_bids: OverBids | None = None) -> bool:
    """Write the lot's new market state and the bids that made it, if the row is
    still at ``read_version`` (or moved only as ``over_bids`` allows); False,
    and nothing written, if not. On success ``lot`` holds the row's counters.

    Atomic on its own; inside a transaction (the lot's lock held) it joins it.
    """
    write = [lot.status, datetime_to_db(lot.ends_at), lot.current_price, lot.leader_id, len(bids), _version_step(bids),
             lot.pk, read_version]
    if over_bids is None:
        write += [0, None, None, None, None, None, None]
    else:
        # version - bid_count as read, without a negative (the columns are unsigned)
        gap = over_bids.version_less_bids
        write += [1, max(-gap, 0), max(gap, 0), LotStatus.BIDDING, datetime_to_db(over_bids.ends_at), over_bids.outbids,
                  over_bids.bidder_id]
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor == "mysql" and not connection.in_atomic_block and len(bids) == 1:
        return _write_one_bid_in_one_round_trip(connection, lot, write, bids[0])
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_WRITE, write)
            if cursor.rowcount != 1:
                return False
            for bid in bids:
                cursor.execute(_INSERT_BID, [lot.pk, bid.user_id, bid.price, bid.is_auto, datetime_to_db(bid.created_at)])
                _mark_saved(bid, cursor.lastrowid)
            cursor.execute(_COUNTERS, [lot.pk])
            lot.bid_count, lot.version = cursor.fetchone()
    except IntegrityError:
        return False  # a duplicate of a bid that already won (lot, price is unique)
    return True


def _version_step(bids: list[Bid]) -> int:
    """One for a lone plain bid; for any other write, a step that moves
    ``version - bid_count``, so no bid read before it lands over it as over bids."""
    if len(bids) == 1 and not bids[0].is_auto:
        return 1
    return len(bids) + 1


def _write_one_bid_in_one_round_trip(connection: BaseDatabaseWrapper, lot: Lot, write: list, bid: Bid) -> bool:
    insert = [lot.pk, bid.user_id, bid.price, bid.is_auto, datetime_to_db(bid.created_at)]
    with connection.cursor() as cursor:
        try:
            cursor.execute(_WRITE_ONE_BID, write + insert)
            cursor.nextset()  # the UPDATE
            cursor.nextset()  # the INSERT
            inserted = cursor.fetchone()  # (id, bid_count, version), or None
            cursor.nextset()  # the COMMIT
        except IntegrityError:
            # The same bid, sent twice at once, won once; this copy is refused.
            cursor.execute("ROLLBACK")
            return False
        except BaseException:
            # A statement failed after START TRANSACTION: end it here, or the
            # connection would carry it into the next request.
            _rollback_quietly(cursor)
            raise
    if inserted is None:
        return False
    bid_id, lot.bid_count, lot.version = inserted
    _mark_saved(bid, bid_id)
    return True


def _rollback_quietly(cursor) -> None:
    try:
        cursor.execute("ROLLBACK")
    except Exception:  # noqa: BLE001  (the connection is gone; Django drops it)
        pass


def _mark_saved(bid: Bid, bid_id: int) -> None:
    bid.pk = bid_id
    bid._state.adding = False


# --- every other write of a market row ----------------------------------------
#
# Bids write through market_write above. Everything else that changes a market
# column (settlement, overdue, a special's phase, publishing terms or
# visibility) goes through these two, which always move the version: a bid
# read before such a write then matches no row and is read and judged again
# (see _WRITE_TEMPLATE). Moving the version by one with bid_count unchanged
# also moves ``version - bid_count``, so the write never passes for a plain bid.


def market_rows_update(lots: QuerySet[Lot], **values) -> int:
    """``UPDATE`` the lots ``lots`` selects (re-filter on status there, not before), moving their versions."""
    return lots.update(**values, version=F("version") + 1)


def market_row_save(lot: Lot, *fields: str) -> None:
    """Save ``fields`` of a lot whose row lock the caller holds, moving its version."""
    lot.version += 1
    lot.save(update_fields=[*fields, "version"])
