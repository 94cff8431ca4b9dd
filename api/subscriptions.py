"""Subscribe-message credits (``/me/subscriptions``) and lot reminders (``/lots/{id}/remind``)."""

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import field_validator

from api.schemas import ErrorOut
from auction.services.notifications import lot_remind, subscriptions_for, subscriptions_record

me_router = Router(tags=["me"])
lots_router = Router(tags=["notifications"])


class SubscriptionsOut(Schema):
    templates: dict[str, str] = Field(description="kind → template id, for wx.requestSubscribeMessage")
    credits: dict[str, int] = Field(description="kind → messages the server may still send")


class SubscriptionsIn(Schema):
    results: dict[str, str] = Field(
        description='What wx.requestSubscribeMessage returned: template id → "accept", "reject" or "ban"'
    )

    @field_validator("results")
    @classmethod
    def bounded(cls, results: dict[str, str]) -> dict[str, str]:
        if len(results) > 20 or any(len(key) > 64 or len(value) > 16 for key, value in results.items()):
            raise ValueError("at most 20 template ids of up to 64 characters")
        return results


@me_router.get("/subscriptions", response={200: SubscriptionsOut, 401: ErrorOut}, summary="My subscribe-message credits")
def subscriptions(request: HttpRequest):
    return subscriptions_for(user=request.auth)


@me_router.post("/subscriptions", response={200: SubscriptionsOut, 401: ErrorOut, 422: ErrorOut}, summary="Record wx.requestSubscribeMessage's answer")
def subscriptions_post(request: HttpRequest, payload: SubscriptionsIn):
    return subscriptions_record(user=request.auth, results=payload.results)


@lots_router.put("/{int:lot_id}/remind", response={204: None, 401: ErrorOut, 404: ErrorOut, 409: ErrorOut}, summary="Remind me when bidding opens")
def remind(request: HttpRequest, lot_id: int):
    lot_remind(user=request.auth, lot_id=lot_id, wanted=True)
    return Status(204, None)


@lots_router.delete("/{int:lot_id}/remind", response={204: None, 401: ErrorOut, 404: ErrorOut}, summary="No reminder for this lot")
def remind_delete(request: HttpRequest, lot_id: int):
    lot_remind(user=request.auth, lot_id=lot_id, wanted=False)
    return Status(204, None)
