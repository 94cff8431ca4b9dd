from auction.models.bidding import AutoBid, Bid
from auction.models.budgets import SpecialBudget
from auction.models.catalog import Lot, LotImage, LotStatus, Special, SpecialStatus
from auction.models.coupons import Coupon, UserCoupon, UserCouponStatus
from auction.models.deposits import ACTIVE_DEPOSIT_STATUSES, Deposit, DepositScope, DepositStatus
from auction.models.events import Event
from auction.models.idempotency import IdempotentRequest
from auction.models.live import LiveChange
from auction.models.notifications import (
    LotReminder,
    Notification,
    NotificationKind,
    NotificationStatus,
    SubscriptionCredit,
)
from auction.models.orders import FulfilmentStatus, Order, OrderStatus
from auction.models.payments import Payment, PaymentPurpose, PaymentStatus, Refund, RefundStatus
from auction.models.rules import LotBar
from auction.models.users import AuthToken, User

__all__ = [
    "ACTIVE_DEPOSIT_STATUSES", "AuthToken", "AutoBid", "Bid", "Coupon", "Deposit", "DepositScope", "DepositStatus", "Event",
    "FulfilmentStatus", "IdempotentRequest", "LiveChange", "Lot", "LotBar", "LotImage", "LotStatus", "Order", "OrderStatus", "Payment",
    "PaymentPurpose", "PaymentStatus", "Refund",
    "RefundStatus", "Special", "SpecialBudget", "SpecialStatus", "User", "UserCoupon", "UserCouponStatus",
]
__all__ += ["LotReminder", "Notification", "NotificationKind", "NotificationStatus", "SubscriptionCredit"]
