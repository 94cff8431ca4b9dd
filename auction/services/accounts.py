"""Bidders come from WeChat: one user per openid, created on first login."""

from django.db import IntegrityError, transaction

from auction.gateways.wechat_login import jscode2session
from auction.models import User


def user_from_openid(*, openid: str, unionid: str = "", nickname: str = "") -> User:
    """The user for an openid, created on first sight; safe when two logins race."""
    user = User.objects.filter(openid=openid).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User.objects.create(
                    openid=openid,
                    username=f"wx:{openid}"[:150],
                    unionid=unionid,
                    nickname=nickname,
                )
                user.set_unusable_password()
                user.save(update_fields=["password"])
                return user
        except IntegrityError:
            # The other login created it between our read and our insert.
            user = User.objects.get(openid=openid)
    changed = []
    if unionid and user.unionid != unionid:
        user.unionid = unionid
        changed.append("unionid")
    if nickname and user.nickname != nickname:
        user.nickname = nickname
        changed.append("nickname")
    if changed:
        user.save(update_fields=changed)
    return user


def user_login_wechat(*, code: str) -> User:
    """The user behind a wx.login code; WeChat's refusal raises WechatLoginFailed."""
    session = jscode2session(code)
    return user_from_openid(openid=session.openid, unionid=session.unionid)
