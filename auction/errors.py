"""Refusals the domain can give; the API maps each to the contract's shape."""

from typing import Any


class DomainError(Exception):
    """A business-rule refusal with a stable code clients switch on."""

    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state."

    def __init__(self, message: str | None = None, **detail: Any) -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(self.message)


class NotFound(DomainError):
    """Also for another user's things: never reveal that they exist."""

    status_code = 404
    code = "not_found"
    default_message = "Not found."


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"
    default_message = "Log in first: the token is missing, unknown, expired or revoked."


class WechatLoginFailed(DomainError):
    status_code = 401
    code = "wechat_login_failed"
    default_message = "WeChat refused the login code."


class WechatUnavailable(WechatLoginFailed):
    """WeChat could not be asked at all; the same code, a retryable status."""

    status_code = 503
    default_message = "WeChat could not be reached; try again."


class SandboxOff(NotFound):
    """Sandbox endpoints do not exist outside the sandbox."""


class DepositRequired(DomainError):
    code = "deposit_required"
    default_message = "Pay a deposit for this lot or its special before bidding."


class DepositExists(DomainError):
    code = "deposit_exists"
    default_message = "A deposit for this is already held."


class LotNotOpen(DomainError):
    code = "lot_not_open"
    default_message = "This lot is not open for bidding now."


class BidTooLow(DomainError):
    code = "bid_too_low"
    default_message = "The bid is below the next minimum bid."


class AlreadyLeading(DomainError):
    code = "already_leading"
    default_message = "You are already the highest bidder."


class BuyNowUnavailable(DomainError):
    code = "buy_now_unavailable"
    default_message = "This lot cannot be bought now: it has no buy-now price, or bidding has reached it."


class BidderBarred(DomainError):
    code = "bidder_barred"
    default_message = "You are barred from this lot: an earlier order went unpaid."


class OrderNotPayable(DomainError):
    code = "order_not_payable"
    default_message = "This order cannot be paid now."


class OrderNotShipped(DomainError):
    code = "order_not_shipped"
    default_message = "This order has not been shipped yet."


class OrderNotShippable(DomainError):
    """Ops only: an unpaid or already received order cannot be shipped."""

    code = "order_not_shippable"
    default_message = "Only a paid order that has not been received can be shipped."


class CouponUnavailable(DomainError):
    """Not the caller's, not unused, or not valid now: another user's coupon is
    refused with this same answer, so its existence is never revealed."""

    code = "coupon_unavailable"
    default_message = "This coupon cannot be used."


class CouponNotApplicable(DomainError):
    """The caller's valid coupon, but not for this order (special, minimum amount)."""

    code = "coupon_not_applicable"
    default_message = "This coupon does not apply to this order."


class CouponSoldOut(DomainError):
    code = "coupon_sold_out"
    default_message = "This coupon has all been claimed."


class CouponLimitReached(DomainError):
    code = "coupon_limit_reached"
    default_message = "You have claimed as many of this coupon as one person may."


class CouponNotClaimable(DomainError):
    code = "coupon_not_claimable"
    default_message = "This coupon cannot be claimed now."


class ValidationFailed(DomainError):
    """Input that parses but makes no sense for the thing it names."""

    status_code = 422
    code = "validation_error"
    default_message = "The request has invalid fields."


class CouponTotalBelowIssued(ValidationFailed):
    """An operator lowering a coupon's total below what claims have issued."""

    default_message = "The total cannot be less than the number already issued."
