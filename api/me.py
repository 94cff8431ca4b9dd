from django.http import HttpRequest
from ninja import Router

from api.schemas import ErrorOut, UserOut

router = Router(tags=["me"])


@router.get("", response={200: UserOut, 401: ErrorOut}, summary="The logged-in user")
def me(request: HttpRequest):
    return request.auth
