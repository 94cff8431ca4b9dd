"""Settings: WeChat (login, subscribe messages and their pacing) and WeChat Pay v3."""

import json
import os

from project.settings_env import env_int, env_list

WECHAT_APPID = os.environ.get("WECHAT_APPID", "")
WECHAT_SECRET = os.environ.get("WECHAT_SECRET", "")
WECHAT_API_BASE = os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/")
WECHAT_TIMEOUT_SECONDS = float(os.environ.get("WECHAT_TIMEOUT_SECONDS", "5"))

# Subscribe messages (README, "Notifications"): a template id per kind (empty:
# that kind is not sent) and each template's keys -> the value put there.
# WECHAT_SUBSCRIBE_TEMPLATES, JSON, overrides any part: {"won": {"template_id":
# "...", "fields": {"thing1": "lot_title", ...}}, ...}.
WECHAT_SUBSCRIBE_TEMPLATES = {
    "won": {"template_id": os.environ.get("WECHAT_TEMPLATE_WON", ""),
            "fields": {"thing1": "lot_title", "amount2": "amount_due", "time3": "pay_deadline", "thing4": "note"}},
    "payment_due": {"template_id": os.environ.get("WECHAT_TEMPLATE_PAYMENT_DUE", ""),
                    "fields": {"thing1": "lot_title", "amount2": "amount_due", "time3": "pay_deadline", "thing4": "note"}},
    "refunded": {"template_id": os.environ.get("WECHAT_TEMPLATE_REFUNDED", ""),
                 "fields": {"thing1": "lot_title", "amount2": "amount", "time3": "refunded_at", "thing4": "note"}},
    "outbid": {"template_id": os.environ.get("WECHAT_TEMPLATE_OUTBID", ""),
               "fields": {"thing1": "lot_title", "amount2": "current_price", "time3": "ends_at", "thing4": "note"}},
    "lot_opening": {"template_id": os.environ.get("WECHAT_TEMPLATE_LOT_OPENING", ""),
                    "fields": {"thing1": "lot_title", "time2": "starts_at", "amount3": "start_price", "thing4": "note"}},
}
for _kind, _override in json.loads(os.environ.get("WECHAT_SUBSCRIBE_TEMPLATES") or "{}").items():
    WECHAT_SUBSCRIBE_TEMPLATES.setdefault(_kind, {"template_id": "", "fields": {}}).update(_override)
# Where a message opens the mini-program; {lot_id} and {order_no} are filled in.
WECHAT_PAGE_LOT = os.environ.get("WECHAT_PAGE_LOT", "pages/lot/index?id={lot_id}")
WECHAT_PAGE_ORDER = os.environ.get("WECHAT_PAGE_ORDER", "pages/order/index?no={order_no}")
# formal, trial or developer: which version of the mini-program a message opens.
WECHAT_MINIPROGRAM_STATE = os.environ.get("WECHAT_MINIPROGRAM_STATE", "formal")
# payment_due goes this long before the order's deadline.
AUCTION_PAYMENT_REMINDER_SECONDS = env_int("AUCTION_PAYMENT_REMINDER_SECONDS", 7200)
# At most one outbid message per lot and user in this long.
AUCTION_OUTBID_INTERVAL_SECONDS = env_int("AUCTION_OUTBID_INTERVAL_SECONDS", 600)
# A template's last credits kept for the kinds above outbid when kinds share it.
AUCTION_NOTIFY_RESERVED_CREDITS = env_int("AUCTION_NOTIFY_RESERVED_CREDITS", 1)
# Transient failures (WeChat down, busy) are retried this many times, backing off, then fail.
AUCTION_NOTIFY_MAX_ATTEMPTS = env_int("AUCTION_NOTIFY_MAX_ATTEMPTS", 5)
AUCTION_NOTIFY_BACKOFF_SECONDS = env_int("AUCTION_NOTIFY_BACKOFF_SECONDS", 30)

# WeChat Pay v3, used when AUCTION_PAYMENT_GATEWAY=wechat (docs/wechatpay.md).
# Keys are read on first use, not here: the sandbox needs none of this.
WECHATPAY_MCHID = os.environ.get("WECHATPAY_MCHID", "")
WECHATPAY_APPID = os.environ.get("WECHATPAY_APPID", "") or WECHAT_APPID
# The merchant API certificate's serial number, and its private key (a file, or the PEM itself).
WECHATPAY_MERCHANT_SERIAL = os.environ.get("WECHATPAY_MERCHANT_SERIAL", "")
WECHATPAY_PRIVATE_KEY_FILE = os.environ.get("WECHATPAY_PRIVATE_KEY_FILE", "")
WECHATPAY_PRIVATE_KEY = os.environ.get("WECHATPAY_PRIVATE_KEY", "")
WECHATPAY_APIV3_KEY = os.environ.get("WECHATPAY_APIV3_KEY", "")
# WeChat's keys: public key mode (PUB_KEY_ID_..., comma-separated ids and files
# in the same order) and/or platform certificates (serial read from each);
# list old and new together while WeChat rotates.
WECHATPAY_PUBLIC_KEY_ID = os.environ.get("WECHATPAY_PUBLIC_KEY_ID", "")
WECHATPAY_PUBLIC_KEY_FILE = os.environ.get("WECHATPAY_PUBLIC_KEY_FILE", "")
WECHATPAY_PUBLIC_KEY = os.environ.get("WECHATPAY_PUBLIC_KEY", "")
WECHATPAY_PLATFORM_CERT_FILES = env_list("WECHATPAY_PLATFORM_CERT_FILES", [])
WECHATPAY_API_BASE = os.environ.get("WECHATPAY_API_BASE", "https://api.mch.weixin.qq.com").rstrip("/")
# This site's public https origin; notify URLs are /api/v1/payments/wechat/... under it.
WECHATPAY_NOTIFY_BASE = os.environ.get("WECHATPAY_NOTIFY_BASE", "").rstrip("/")
WECHATPAY_TIMEOUT_SECONDS = float(os.environ.get("WECHATPAY_TIMEOUT_SECONDS", "10"))
