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
}
