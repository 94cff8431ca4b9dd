"""WeChat's access token and ``subscribeMessage.send``.

The access token (``POST /cgi-bin/stable_token``) is shared by every web and
job process through the cache, with its expiry, and refreshed a few minutes
before it runs out by one process at a time (``cache.add`` is the lock;
the others keep using the old token, still good, or wait briefly for the
new one). The token is a credential: it never goes into a log line, an
exception message or a stored error (settings also keep httpx's request log,
which shows URLs, off).
"""

import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.core.cache import cache

TOKEN_KEY = "wechat:access_token"
LOCK_KEY = "wechat:access_token:refresh"
# Refreshed this long before WeChat's expiry, so no request carries a token about to lapse.
REFRESH_MARGIN_SECONDS = 300
LOCK_SECONDS = 15
WAIT_FOR_OTHER_SECONDS = 5.0

# The token is invalid (40001) or expired (42001): refresh once and retry.
TOKEN_ERRORS = frozenset({40001, 42001})
NO_SUBSCRIPTION = 43101  # the user has no subscription left for this template
# WeChat busy or rate-limited: worth retrying later.
TRANSIENT_ERRORS = frozenset({-1, 45009, 45011})


class WechatSendError(Exception):
    """A refusal or a failure; ``errcode`` 0 means no answer came (network, HTTP)."""

    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def is_transient(self) -> bool:
        return self.errcode == 0 or self.errcode in TRANSIENT_ERRORS


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: float  # epoch seconds


def _post(path: str, *, params: dict | None = None, body: dict) -> dict:
    try:
        response = httpx.post(
            f"{settings.WECHAT_API_BASE}{path}", params=params, json=body, timeout=settings.WECHAT_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as error:
        # The class name only: httpx's messages may carry the URL, and with it the token.
        raise WechatSendError(0, f"unreachable ({type(error).__name__})") from None
    if response.status_code != 200:
        raise WechatSendError(0, f"HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError:
        raise WechatSendError(0, "unreadable answer") from None
    if not isinstance(answer, dict):
        raise WechatSendError(0, "unreadable answer")
    return answer


def _cached() -> CachedToken | None:
    value = cache.get(TOKEN_KEY)
    if isinstance(value, dict) and value.get("token"):
        return CachedToken(value["token"], float(value["expires_at"]))
    return None


def _fetch(*, force: bool) -> CachedToken:
    if not settings.WECHAT_APPID or not settings.WECHAT_SECRET:
        raise WechatSendError(0, "WeChat is not configured (WECHAT_APPID, WECHAT_SECRET)")
    body = {"grant_type": "client_credential", "appid": settings.WECHAT_APPID, "secret": settings.WECHAT_SECRET}
    if force:
        body["force_refresh"] = True
    answer = _post("/cgi-bin/stable_token", body=body)
    token, expires_in = answer.get("access_token"), answer.get("expires_in")
    if answer.get("errcode") or not isinstance(token, str) or not token or not isinstance(expires_in, int):
        raise WechatSendError(int(answer.get("errcode") or 0), f"stable_token: {str(answer.get('errmsg', ''))[:100]}")
    fresh = CachedToken(token, time.time() + expires_in)
    cache.set(TOKEN_KEY, {"token": fresh.token, "expires_at": fresh.expires_at}, timeout=max(expires_in, 1))
    return fresh


def access_token(*, refused: str | None = None) -> str:
    """A token good for a while yet. ``refused``: the token WeChat just called
    invalid; it is replaced (once, whoever gets the lock) with a forced refresh."""
    deadline = time.monotonic() + WAIT_FOR_OTHER_SECONDS
    while True:
        current = _cached()
        now = time.time()
        usable = current is not None and current.expires_at > now and current.token != refused
        if usable and current.expires_at - now > REFRESH_MARGIN_SECONDS:
            return current.token
        if cache.add(LOCK_KEY, 1, timeout=LOCK_SECONDS):
            try:
                current = _cached()  # another process may have refreshed it meanwhile
                if current is not None and current.token != refused and current.expires_at - time.time() > REFRESH_MARGIN_SECONDS:
                    return current.token
                return _fetch(force=refused is not None).token
            finally:
                cache.delete(LOCK_KEY)
        if usable:
            return current.token  # still good: another process is getting the next one
        if time.monotonic() > deadline:
            raise WechatSendError(0, "access token refresh in progress elsewhere")
        time.sleep(0.05)


def send(*, openid: str, template_id: str, page: str, data: dict[str, str]) -> None:
    """One subscribe message; on 40001/42001 the token is refreshed once and the
    send retried. Raises WechatSendError for any other refusal."""
    body = {
        "touser": openid,
        "template_id": template_id,
        "page": page,
        "data": {key: {"value": value} for key, value in data.items()},
        "miniprogram_state": settings.WECHAT_MINIPROGRAM_STATE,
        "lang": "zh_CN",
    }
    token = access_token()
    for attempt in range(2):
        answer = _post("/cgi-bin/message/subscribe/send", params={"access_token": token}, body=body)
        errcode = int(answer.get("errcode") or 0)
        if errcode == 0:
            return
        if errcode in TOKEN_ERRORS and attempt == 0:
            token = access_token(refused=token)
            continue
        raise WechatSendError(errcode, str(answer.get("errmsg", ""))[:200])
