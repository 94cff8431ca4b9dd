from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from api import throttling
from api.schemas import ErrorOut, TextIn, UserOut
from api.security import LiveBearerToken
from auction.errors import SandboxOff
from auction.services.accounts import user_from_openid, user_login_wechat
from auction.services.tokens import token_issue, token_revoke

router = Router(tags=["login"])


class WechatLoginIn(Schema):
    code: TextIn = Field(min_length=1, max_length=128, description="The code from wx.login()")


class SandboxLoginIn(Schema):
    openid: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_\-]+$")
    nickname: TextIn = Field("", max_length=64)


class LoginOut(Schema):
    token: str
    user: UserOut


def _login(user, *, via_sandbox: bool = False) -> dict:
    return {"token": token_issue(user=user, via_sandbox=via_sandbox), "user": user}


@router.post(
    "/wechat",
    response={200: LoginOut, 401: ErrorOut, 422: ErrorOut, 429: ErrorOut, 503: ErrorOut},
    throttle=[throttling.logins],
    summary="Log in with a wx.login code",
)
def login_wechat(request: HttpRequest, payload: WechatLoginIn):
    return _login(user_login_wechat(code=payload.code))


@router.post(
    "/sandbox",
    response={200: LoginOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    throttle=[throttling.logins],
    summary="Log in as any openid (sandbox only)",
)
def login_sandbox(request: HttpRequest, payload: SandboxLoginIn):
    if not settings.AUCTION_SANDBOX:
        raise SandboxOff()
    return _login(user_from_openid(openid=payload.openid, nickname=payload.nickname.strip()), via_sandbox=True)


@router.post("/logout", response={204: None, 401: ErrorOut}, auth=LiveBearerToken(), summary="Log out: this token stops working")
def logout(request: HttpRequest):
    token_revoke(raw_token=request.auth)
    return Status(204, None)
