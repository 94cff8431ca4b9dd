"""``ETag`` on ``GET /lots/{id}``: cheap polling for clients without a socket.

The tag is derived from what the body depends on: the lot's market version
(every bid, settlement and term change bumps it), its content's
``updated_at`` (title, text, images), the phase the clock puts it in (status
is derived from the time, which moves no row), and the caller's own view
(``my``: deposit and proxy, which a lot's version does not follow). An
anonymous poll that matches costs one query, reading the lot's row and its
special's by primary key; a caller with a token adds the reads ``my`` makes.
``server_time`` is left out on purpose: the tag is weak.
"""

import hashlib
from datetime import datetime

from api import presenters
from auction.models import Lot, User
from auction.models.catalog import status_by_time


def lot_etag(*, lot_id: int, now: datetime, user: User | None) -> str | None:
    """The lot's tag now, or None when no published lot has this id."""
    if not 0 < lot_id < 2**63:
        return None
    row = (
        Lot.objects.filter(pk=lot_id, is_published=True, special__is_published=True)
        .values_list(
            "version", "updated_at", "status", "ends_at", "special__preview_at", "special__starts_at", "special_id",
            "leader_id",
        )
        .first()
    )
    if row is None:
        return None
    version, updated_at, status, ends_at, preview_at, starts_at, special_id, leader_id = row
    phase = status_by_time(now, preview_at=preview_at, starts_at=starts_at) or ("open" if now < ends_at else "closed")
    mine = ""
    if user is not None:
        my = presenters.lot_my(Lot(pk=lot_id, special_id=special_id, leader_id=leader_id), user)
        mine = f"{user.pk}|{my['deposit_status']}|{my['leading']}|{my['auto_bid_max']}"
    digest = hashlib.blake2b(f"{updated_at.isoformat()}|{status}|{phase}|{mine}".encode(), digest_size=8).hexdigest()
    return f'W/"{lot_id}-{version}-{digest}"'


def matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110: weak comparison, a list of tags, or ``*``."""
    tags = [tag.strip() for tag in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return "*" in tags or any(tag.removeprefix("W/") == bare for tag in tags)
