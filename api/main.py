"""The mini-program API, v1 (CONTRACT.md): one NinjaAPI joining one router per area."""

from django.conf import settings
from ninja import NinjaAPI
from ninja.parser import Parser
from ninja.renderers import JSONRenderer

from api import (
    auth,
    bids,
    budgets,
    coupons,
    deposits,
    errors,
    lots,
    me,
    notify,
    orders,
    payments,
    specials,
    subscriptions,
)
from api.middleware import SANDBOX_PATH, WECHAT_NOTIFY_PREFIX
from api.security import TokenAuth


class Utf8JSONRenderer(JSONRenderer):
    # 张** rather than \u5f20**: a third smaller for Chinese text, same JSON.
    json_dumps_params = {"ensure_ascii": False}


class JSONObjectParser(Parser):
    """Every body the API takes is a JSON object: ``true`` or ``[]`` is bad input
    (422), not an empty set of optional fields."""

    def parse_body(self, request):
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data


EDGE_ANSWERS = {400: "A Host this server does not answer to", 413: "The body is over the size limit (payload_too_large)"}


class AuctionAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for path, operations in schema["paths"].items():
            # What api.middleware.RequestEdgesMiddleware answers on every path, before any view.
            shape = "WechatFailOut" if path.startswith(WECHAT_NOTIFY_PREFIX) else "ErrorOut"
            for operation in operations.values():
                for status, description in EDGE_ANSWERS.items():
                    # Ninja's keys are ints; the JSON turns them into strings.
                    operation["responses"].setdefault(status, {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
                    })
        schema["components"]["schemas"]["ErrorCode"] = {
            "title": "ErrorCode",
            "type": "string",
            "enum": errors.error_codes(),
            "description": "Every code an error answer's `code` can hold (ErrorOut.code); switch on these, "
            "and treat one not listed like its HTTP status.",
        }
        if not settings.AUCTION_SANDBOX:
            # Absent with the sandbox off, as the paths themselves are (api/middleware.py).
            for path in [path for path in schema["paths"] if SANDBOX_PATH.fullmatch(path)]:
                del schema["paths"][path]
        return schema


api = AuctionAPI(
    renderer=Utf8JSONRenderer(),
    parser=JSONObjectParser(),
    title="Auction mini-program API",
    version="1",
    description="Money is integer fen everywhere. Errors are {code, message, detail}.",
    # Wagtail ships a NinjaAPI of its own; a second one needs its own namespace.
    urls_namespace="auction-api-v1",
)
errors.install(api)

# First: Django tries URL patterns in order, and a bid is the request a hot lot
# sends hundreds of times a second (3 % of its CPU went to patterns before it).
api.add_router("/lots", bids.router)  # each operation names its own auth
api.add_router("/auth", auth.router)
api.add_router("/me", me.router, auth=TokenAuth())
api.add_router("/specials", specials.router)
api.add_router("/specials", budgets.router)  # each operation names its own auth
api.add_router("/lots", lots.router)
api.add_router("/deposits", deposits.router, auth=TokenAuth())
api.add_router("/orders", orders.router, auth=TokenAuth())
# WeChat's notifications carry a signature, not a token (api/notify.py).
api.add_router("/payments/wechat", notify.router)
api.add_router("/payments", payments.router, auth=TokenAuth())
api.add_router("/coupons", coupons.router)  # each operation names its own auth
api.add_router("/me", subscriptions.me_router, auth=TokenAuth())
api.add_router("/lots", subscriptions.lots_router, auth=TokenAuth())
