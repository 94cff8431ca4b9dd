"""预算: a caller's budget across a special's lots (CONTRACT, ``PUT /specials/{id}/budget``)."""

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from api import throttling
from api.schemas import ErrorOut, FenIn
from api.security import TokenAuth
from auction.services.budgets import BudgetView, budget_set, budget_show, budget_withdraw

router = Router(tags=["bids"])


class BudgetIn(Schema):
    max_total: FenIn


class BudgetOut(Schema):
    max_total: int = Field(description="fen")
    committed: int = Field(description="fen: the prices at which the caller leads on this special's lots now")


BUDGET_ERRORS = {401: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut}


def _out(view: BudgetView) -> dict:
    return {"max_total": view.max_total, "committed": view.committed}


@router.put("/{int:special_id}/budget", response={200: BudgetOut, **BUDGET_ERRORS}, auth=TokenAuth(),
            throttle=[throttling.auto_bids], summary="Set a budget across the special (预算) for the caller's proxy bids")
def budget_put(request: HttpRequest, special_id: int, payload: BudgetIn):
    return _out(budget_set(special_id=special_id, user=request.auth, max_total=payload.max_total))


@router.get("/{int:special_id}/budget", response={200: BudgetOut, **BUDGET_ERRORS}, auth=TokenAuth(),
            throttle=[throttling.auto_bids], summary="The caller's budget across the special (404 when none is set)")
def budget_get(request: HttpRequest, special_id: int):
    return _out(budget_show(special_id=special_id, user=request.auth))


@router.delete("/{int:special_id}/budget", response={204: None, 401: ErrorOut, 404: ErrorOut, 429: ErrorOut}, auth=TokenAuth(),
               throttle=[throttling.auto_bids], summary="Withdraw the budget (proxies it held answer again)")
def budget_delete(request: HttpRequest, special_id: int):
    budget_withdraw(special_id=special_id, user=request.auth)
    return Status(204, None)
