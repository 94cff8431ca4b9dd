"""WeChat mini-program login: exchange a wx.login code at jscode2session.

WeChat answers HTTP 200 even when it refuses; the refusal is an ``errcode``
in the body, so the body decides, never the status alone.
"""

import logging
from dataclasses import dataclass

import httpx
from django.conf import settings

from auction.errors import WechatLoginFailed, WechatUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WechatSession:
    openid: str
    unionid: str
    session_key: str


def jscode2session(code: str) -> WechatSession:
    if not settings.WECHAT_APPID or not settings.WECHAT_SECRET:
        raise WechatUnavailable("WeChat login is not configured on this server.", reason="not_configured")
    try:
        response = httpx.get(
            f"{settings.WECHAT_API_BASE}/sns/jscode2session",
            params={
                "appid": settings.WECHAT_APPID,
                "secret": settings.WECHAT_SECRET,
                "js_code": code,
                "grant_type": "authorization_code",
            },
            timeout=settings.WECHAT_TIMEOUT_SECONDS,
        )
        body = response.json()
    except (httpx.HTTPError, ValueError) as error:
        logger.warning("jscode2session unreachable or unreadable: %s", error)
        raise WechatUnavailable(reason="wechat_unavailable") from None
    if not isinstance(body, dict):
        raise WechatUnavailable(reason="wechat_unavailable")
    errcode = body.get("errcode") or 0
    if errcode:
        # -1 is WeChat's "system busy": worth a retry, unlike a bad code.
        error_class = WechatUnavailable if errcode == -1 else WechatLoginFailed
        raise error_class(errcode=errcode, errmsg=str(body.get("errmsg", ""))[:200])
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WechatUnavailable(reason="wechat_unavailable")
    return WechatSession(
        openid=openid,
        unionid=str(body.get("unionid") or ""),
        session_key=str(body.get("session_key") or ""),
    )
