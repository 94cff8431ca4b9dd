"""What the domain announces so that jobs can be scheduled, without importing jobs.

Sent inside the transaction that made the change: a receiver that writes
schedule rows writes them atomically with it; one that enqueues work defers
it with ``transaction.on_commit``.
"""

from django.dispatch import Signal

# special_id: its preview, start or end time may have moved.
special_times_changed = Signal()
# lot_id, ends_at: a lot's end moved (publishing before bidding, anti-sniping).
lot_end_changed = Signal()
# order_ids, pay_deadline: once per batch of orders made together (what schedules them).
orders_created = Signal()
# refund_id: a refund row exists and must be sent to the gateway.
refund_created = Signal()
# refund_id: the gateway accepted a refund; its outcome is to be learnt.
refund_submitted = Signal()
# payment_id: an open payment is no longer wanted and must be closed at the gateway.
payment_close_wanted = Signal()
# special_id: a lot of the special reached its outcome; special-wide deposits may be due.
special_outcome_changed = Signal()
# An outbox row is due now: the sending job may run (auction/services/notifications.py).
notification_queued = Signal()
# order_id, shipped_at: ops shipped an order; receipt is confirmed automatically later.
order_shipped = Signal()
# bids: the Bid rows one market write landed on a lot (bidding.Market.save: a
# plain bid, the proxies' answers). Sent for every bid: cached receivers keep it cheap.
bids_placed = Signal(use_caching=True)
