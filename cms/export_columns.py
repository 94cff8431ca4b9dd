"""What each Market list exports: columns in the order finance reads them (cms.exports)."""

from django.utils.translation import gettext_lazy as _

from auction.selectors import mask_nickname
from cms.exports import choice, moment, money, text


def _address(part: str):
    return lambda order: (order.address or {}).get(part, "")


def _user(path: str = "user"):
    def nickname(obj):
        user = _follow(obj, path)
        return user.nickname if user else ""

    def openid(obj):
        user = _follow(obj, path)
        return (user.openid or "") if user else ""

    return nickname, openid


def _follow(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


_nickname, _openid = _user()
_payment_nickname, _payment_openid = _user("payment.user")

ORDERS = (
    text("order_no", _("Order number")),
    text("lot", _("Lot"), lambda order: order.lot.title),
    text("buyer", _("Buyer"), _nickname),
    text("openid", _("Openid"), _openid),
    choice("status", _("Status")),
    choice("fulfilment_status", _("Fulfilment")),
    money("price", _("Hammer price (yuan)")),
    money("deposit_credit", _("Deposit credit (yuan)")),
    money("coupon_discount", _("Coupon discount (yuan)")),
    money("amount_due", _("Amount due (yuan)")),
    moment("pay_deadline", _("Payment deadline")),
    moment("created_at", _("Created")),
    moment("paid_at", _("Paid")),
    text("recipient", _("Recipient"), _address("name")),
    text("phone", _("Phone"), _address("phone")),
    text("region", _("Region"), _address("region")),
    text("address_detail", _("Address"), _address("detail")),
    text("carrier", _("Carrier")),
    text("tracking_no", _("Tracking number")),
    moment("shipped_at", _("Shipped")),
    moment("received_at", _("Received")),
)

DEPOSITS = (
    text("id", _("Deposit id")),
    text("buyer", _("User"), _nickname),
    text("openid", _("Openid"), _openid),
    choice("scope", _("Scope")),
    text("special", _("Special"), lambda deposit: deposit.special.title),
    text("lot", _("Lot"), lambda deposit: deposit.lot.title if deposit.lot_id else ""),
    money("amount", _("Amount (yuan)")),
    choice("status", _("Status")),
    moment("created_at", _("Created")),
    moment("updated_at", _("Changed")),
)

PAYMENTS = (
    text("out_trade_no", _("Payment number")),
    choice("purpose", _("Purpose")),
    text("buyer", _("User"), _nickname),
    text("openid", _("Openid"), _openid),
    money("amount", _("Amount (yuan)")),
    choice("status", _("Status")),
    text("gateway", _("Gateway")),
    text("transaction_id", _("Transaction id"), lambda payment: payment.transaction_id or ""),
    moment("created_at", _("Created")),
    moment("paid_at", _("Paid")),
    moment("closed_at", _("Closed")),
)

REFUNDS = (
    text("out_refund_no", _("Refund number")),
    text("out_trade_no", _("Payment number"), lambda refund: refund.payment.out_trade_no),
    text("buyer", _("User"), _payment_nickname),
    text("openid", _("Openid"), _payment_openid),
    money("amount", _("Amount (yuan)")),
    text("reason", _("Reason")),
    choice("status", _("Status")),
    text("attempts", _("Attempts")),
    text("last_error", _("Last error")),
    moment("created_at", _("Created")),
    moment("submitted_at", _("Submitted")),
    moment("completed_at", _("Completed")),
)

BIDS = (
    text("id", _("Bid id")),
    text("lot", _("Lot"), lambda bid: bid.lot.title),
    # As the list shows them: masked, with the user id to look them up.
    text("bidder", _("Bidder"), lambda bid: mask_nickname(bid.user.nickname)),
    text("user_id", _("User id")),
    money("price", _("Price (yuan)")),
    text("is_auto", _("Proxy"), lambda bid: "✓" if bid.is_auto else ""),
    moment("created_at", _("Placed")),
)

USER_COUPONS = (
    text("id", _("Claimed coupon id")),
    text("title", _("Coupon")),
    text("buyer", _("User"), _nickname),
    text("openid", _("Openid"), _openid),
    choice("status", _("Status")),
    money("amount", _("Amount off (yuan)")),
    money("min_amount", _("Minimum order (yuan)")),
    moment("valid_from", _("Valid from")),
    moment("valid_until", _("Valid until")),
    text("order", _("Order number"), lambda user_coupon: user_coupon.order.order_no if user_coupon.order_id else ""),
    moment("claimed_at", _("Claimed")),
    moment("used_at", _("Used")),
)

EVENTS = (
    moment("created_at", _("When")),
    text("kind", _("Kind")),
    text("actor", _("Actor")),
    text("user", _("User"), _nickname),
    text("lot", _("Lot"), lambda event: event.lot.title if event.lot_id else ""),
    text("order", _("Order number"), lambda event: event.order.order_no if event.order_id else ""),
    money("amount", _("Amount (yuan)")),
    text("data", _("Details")),
)
