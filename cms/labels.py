"""Column and field labels of the Market screens, translatable.

The models in ``auction`` name their fields in English without gettext; the
admin shows these labels instead, so the screens read in the user's language
without touching the domain's models.
"""

from django.utils.translation import gettext_lazy as _

FIELD_LABELS = {
    "id": _("ID"), "order_no": _("Order number"), "lot": _("Lot"), "user": _("User"), "status": _("Status"),
    "fulfilment_status": _("Fulfilment"), "price": _("Price"), "deposit_credit": _("Deposit credit"),
    "coupon_discount": _("Coupon discount"), "amount_due": _("Amount due"), "pay_deadline": _("Payment deadline"),
    "created_at": _("Created"), "paid_at": _("Paid"), "address_text": _("Shipping address"), "carrier": _("Carrier"),
    "tracking_no": _("Tracking number"), "shipped_at": _("Shipped"), "received_at": _("Received"), "scope": _("Scope"),
    "special": _("Special"), "amount": _("Amount"), "updated_at": _("Changed"), "out_trade_no": _("Payment number"),
    "purpose": _("Purpose"), "gateway": _("Gateway"), "deposit": _("Deposit"), "order": _("Order"),
    "transaction_id": _("Transaction id"), "expires_at": _("Expires"), "closed_at": _("Closed"),
    "out_refund_no": _("Refund number"), "payment": _("Payment"), "reason": _("Reason"), "attempts": _("Attempts"),
    "gateway_refund_id": _("Gateway refund id"), "last_error": _("Last error"), "submitted_at": _("Submitted"),
    "completed_at": _("Completed"), "kind": _("Kind"), "actor": _("Actor"), "data": _("Details"), "is_auto": _("Proxy"),
    "title": _("Title"), "coupon": _("Coupon"), "valid_from": _("Valid from"), "valid_until": _("Valid until"),
    "claimed_at": _("Claimed"), "locked_at": _("Locked"), "used_at": _("Used"), "min_amount": _("Minimum"),
    "claim_number": _("Claim number"), "name": _("Name"), "func": _("Function"), "args": _("Arguments"),
    "kwargs": _("Keyword arguments"), "group": _("Group"), "cluster": _("Cluster"), "started": _("Started"),
    "stopped": _("Stopped"), "attempt_count": _("Attempts"), "result": _("Result"), "schedule_type": _("Schedule type"),
    "minutes": _("Minutes"), "repeats": _("Repeats"), "next_run": _("Next run"), "cron": _("Cron"), "task": _("Task"),
    "key": _("Key"), "lock": _("Locked until"), "enabled": _("Enabled"), "total": _("Total"), "issued": _("Issued"),
    "per_user_limit": _("Per-user limit"), "claim_starts_at": _("Claimable from"), "claim_ends_at": _("Claimable until"),
    "valid_days": _("Valid for days after claiming"), "object_id": _("Object id"), "template_id": _("Template id"),
    "refund": _("Refund"), "user_coupon": _("Claimed coupon"), "premium": _("Premium"), "errcode": _("Error code"), "not_before": _("Not before"), "sent_at": _("Sent"), "next_attempt_at": _("Next attempt"),
}

# What happened, in words, for each event kind the services write (auction.services.*).
# The kind itself stays the code ops filter by; these are only what a person reads.
EVENT_KINDS = {
    "coupon.created": _("Coupon created"), "coupon.changed": _("Coupon changed"), "coupon.claimed": _("Coupon claimed"),
    "coupon.locked": _("Coupon held by a payment"), "coupon.released": _("Coupon released"), "coupon.used": _("Coupon used"),
    "coupon.expired": _("Coupon expired"),
    "deposit.requested": _("Deposit requested"), "deposit.held": _("Deposit held"), "deposit.refunding": _("Deposit being refunded"),
    "deposit.refunded": _("Deposit refunded"), "deposit.applied": _("Deposit credited to the order"),
    "deposit.forfeited": _("Deposit forfeited"), "deposit.cancelled": _("Deposit cancelled"),
    "lot.sold": _("Lot sold"), "lot.unsold": _("Lot unsold"), "lot.bought_now": _("Lot bought now"),
    "lot.defaulted": _("Lot defaulted"), "lot.relisted": _("Lot re-auctioned"), "lot.sale_cancelled": _("Sale cancelled"),
    "special.upcoming": _("Special upcoming"), "special.preview": _("Special in preview"), "special.bidding": _("Special bidding"),
    "special.ended": _("Special ended"),
    "order.created": _("Order created"), "order.paid": _("Order paid"), "order.overdue": _("Order overdue"),
    "order.cancelled": _("Order cancelled"), "order.deadline_extended": _("Payment deadline extended"),
    "order.shipped": _("Order shipped"), "order.shipping_corrected": _("Shipping details corrected"),
    "order.received": _("Order received"),
    "payment.created": _("Payment created"), "payment.paid": _("Payment paid"), "payment.closed": _("Payment closed"),
    "payment.amount_mismatch": _("Payment amount mismatch"), "payment.duplicate_success": _("Duplicate payment notice"),
    "refund.created": _("Refund created"), "refund.submitted": _("Refund sent to the gateway"),
    "refund.send_failed": _("Refund could not be sent"), "refund.succeeded": _("Refund succeeded"),
    "refund.failed": _("Refund failed"), "refund.retried": _("Refund retried"),
    "user.barred": _("Bidder barred"), "user.bar_lifted": _("Bar lifted"),
    "ops.query_now": _("Gateway queried by ops"), "ops.notification_resend": _("Message resent by ops"),
    "ops.task_retried": _("Task retried by ops"),
}

# Who wrote an event (Event.actor).
ACTORS = {"user": _("bidder"), "job": _("job"), "ops": _("ops"), "gateway": _("payment gateway"), "system": _("system")}


# Payment gateways (Payment.gateway, auction.gateways.payments.GATEWAYS).
GATEWAYS = {"sandbox": _("sandbox"), "wechat": _("WeChat Pay")}


def gateway_label(gateway: str) -> str:
    return str(GATEWAYS.get(gateway, gateway))


def event_kind_label(kind: str) -> str:
    """The kind in words, with the code ops filter by; an unknown kind shows as its code."""
    label = EVENT_KINDS.get(kind)
    return f"{label} ({kind})" if label else kind


def actor_label(actor: str) -> str:
    return str(ACTORS.get(actor, actor))
