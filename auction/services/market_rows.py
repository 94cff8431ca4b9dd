"""A lot's market row, read and written in hand-written SQL.

A contested lot takes hundreds of bids a second, and building an ORM query
costs more CPU than the database spends running it; these are the statements
every bid runs, so they are written once, here, by hand. They are plain SQL
that SQLite and MySQL both accept (Django's cursor turns ``%s`` into ``?``
for SQLite), with values passed through the backend's own adapters.
"""

from dataclasses import dataclass

from django.db import connection

from auction.db import datetime_from_db, datetime_to_db, loaded
from auction.models import Bid, DepositScope, DepositStatus, Lot, Special

LOT_MARKET_COLUMNS = (
    "special_id", "is_published", "status", "ends_at", "start_price", "reserve_price", "deposit", "increment",
    "current_price", "leader_id", "bid_count", "version",
)
SPECIAL_TERM_COLUMNS = ("is_published", "starts_at", "extension_seconds")

_READ = f"""
SELECT {", ".join("l." + name for name in LOT_MARKET_COLUMNS)},
       {", ".join("s." + name for name in SPECIAL_TERM_COLUMNS)},
       EXISTS (SELECT 1 FROM auction_deposit d
                WHERE d.user_id = %s AND d.status = %s
                  AND ((d.scope = %s AND d.lot_id = l.id) OR (d.scope = %s AND d.special_id = l.special_id))),
       EXISTS (SELECT 1 FROM auction_autobid a WHERE a.lot_id = l.id)
  FROM auction_lot l JOIN auction_special s ON s.id = l.special_id
 WHERE l.id = %s
"""

# The version in the WHERE clause makes the write conditional: it lands only
# if nothing changed the market row since it was read (every writer of a
# market column bumps the version), else it matches no row.
_WRITE = """
UPDATE auction_lot
   SET status = %s, ends_at = %s, current_price = %s, leader_id = %s, bid_count = %s, version = %s
 WHERE id = %s AND version = %s
"""

_INSERT_BID = "INSERT INTO auction_bid (lot_id, user_id, price, is_auto, created_at) VALUES (%s, %s, %s, %s, %s)"


@dataclass(frozen=True)
class MarketRead:
    """A lot's market row, its special's terms, and what the bidder brings."""

    lot: Lot
    special: Special
    has_deposit: bool  # a held deposit for the lot or its special, or none asked
    has_proxies: bool


def market_read(*, lot_id: int, user_id: int) -> MarketRead | None:
    """One round trip, no lock: what a bid is checked against before it is written."""
    with connection.cursor() as cursor:
        cursor.execute(_READ, [user_id, DepositStatus.HELD, DepositScope.LOT, DepositScope.SPECIAL, lot_id])
        row = cursor.fetchone()
    if row is None:
        return None
    lot_values = dict(zip(LOT_MARKET_COLUMNS, row[: len(LOT_MARKET_COLUMNS)], strict=True))
    special_values = dict(zip(SPECIAL_TERM_COLUMNS, row[len(LOT_MARKET_COLUMNS) : -2], strict=True))
    lot_values["is_published"] = bool(lot_values["is_published"])
    lot_values["ends_at"] = datetime_from_db(lot_values["ends_at"])
    special_values["is_published"] = bool(special_values["is_published"])
    special_values["starts_at"] = datetime_from_db(special_values["starts_at"])
    lot = loaded(Lot, id=lot_id, **lot_values)
    special = loaded(Special, id=lot.special_id, **special_values)
    has_deposit, has_proxies = bool(row[-2]), bool(row[-1])
    return MarketRead(lot=lot, special=special, has_deposit=has_deposit or not lot.deposit, has_proxies=has_proxies)


def market_write(*, lot: Lot, read_version: int, bids: list[Bid]) -> bool:
    """Write the lot's new market state and the bids that made it, if the row is
    still at ``read_version``; False (nothing written) if anything changed it.

    Run inside a transaction: the UPDATE takes the row's lock, so the INSERTs
    after it commit together with it or not at all.
    """
    with connection.cursor() as cursor:
        cursor.execute(_WRITE, [
            lot.status, datetime_to_db(lot.ends_at), lot.current_price, lot.leader_id, lot.bid_count, lot.version,
            lot.pk, read_version,
        ])
        if cursor.rowcount != 1:
            return False
        for bid in bids:
            cursor.execute(_INSERT_BID, [lot.pk, bid.user_id, bid.price, bid.is_auto, datetime_to_db(bid.created_at)])
            bid.pk = cursor.lastrowid
            bid._state.adding = False
    return True
