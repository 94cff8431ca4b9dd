from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema

from api import presenters, throttling
from api.schemas import ErrorOut, ImageOut, ListParams, LotSummaryOut, paginated
from api.security import optional_user
from auction import selectors
from auction.errors import NotFound
from auction.models import SpecialStatus
from auction.services.settlement import lots_settle_due

router = Router(tags=["catalog"])


class SpecialOut(Schema):
    id: int
    title: str
    cover: ImageOut | None
    status: SpecialStatus
    preview_at: datetime
    starts_at: datetime
    ends_at: datetime
    deposit: int
    lot_count: int


class SpecialListOut(Schema):
    items: list[SpecialOut]
    count: int


class SpecialDetailOut(SpecialOut):
    description: str
    lots: list[LotSummaryOut]


class SpecialFilter(ListParams):
    status: SpecialStatus | None = None


@router.get("", response={200: SpecialListOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut}, throttle=[throttling.anonymous_reads], summary="Specials (专场)")
def specials(request: HttpRequest, filters: Query[SpecialFilter]):
    optional_user(request)
    now = timezone.now()
    specials = selectors.specials_list(now=now, status=filters.status)
    return paginated(specials, filters, lambda row: presenters.special(request, row, now))


@router.get("/{int:special_id}", response={200: SpecialDetailOut, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut}, throttle=[throttling.anonymous_reads],
             summary="A special with its lots")
def special(request: HttpRequest, special_id: int):
    optional_user(request)
    now = timezone.now()
    row = selectors.special_detail(special_id=special_id)
    if row is None:
        raise NotFound()
    lots_settle_due(row.published_lots, now=now)
    return {
        **presenters.special(request, row, now),
        "description": row.description,
        "lots": [presenters.lot_summary(request, lot, now) for lot in row.published_lots],
    }
