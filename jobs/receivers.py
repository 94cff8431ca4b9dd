"""The domain's announcements turned into schedules and tasks."""

from django.db.models.signals import post_migrate

from auction import signals
from auction.models import Special
from auction.services.fulfilment import auto_receipt_after
from jobs import schedules


def on_special_times_changed(sender, special_id: int, **kwargs) -> None:
    special = Special.objects.only("preview_at", "starts_at", "ends_at").get(pk=special_id)
    schedules.special_phases(special_id, preview_at=special.preview_at, starts_at=special.starts_at, ends_at=special.ends_at)


def on_lot_end_changed(sender, lot_id: int, ends_at, **kwargs) -> None:
    schedules.lot_end(lot_id, ends_at)


def on_orders_created(sender, order_ids: list[int], pay_deadline, **kwargs) -> None:
    schedules.orders_expiry(pay_deadline)


def on_order_shipped(sender, order_id: int, shipped_at, **kwargs) -> None:
    schedules.order_receipt_auto(order_id, shipped_at + auto_receipt_after())


def on_refund_created(sender, refund_id: int, **kwargs) -> None:
    # The batch job sends every pending refund: one task per transaction.
    schedules.once_after_commit("jobs.tasks.refunds_submit")


def on_refund_submitted(sender, refund_id: int, **kwargs) -> None:
    schedules.once_after_commit("jobs.tasks.refunds_poll")


def on_payment_close_wanted(sender, payment_id: int, **kwargs) -> None:
    schedules.now_after_commit("jobs.tasks.payment_close", payment_id)


def on_special_outcome_changed(sender, special_id: int, **kwargs) -> None:
    schedules.once_after_commit("jobs.tasks.special_deposits", special_id)


def on_notification_queued(sender, **kwargs) -> None:
    schedules.now_after_commit("jobs.tasks.notifications_send")


def on_post_migrate(sender, **kwargs) -> None:
    # Sent once per app with models; the schedule table is django_q's.
    if sender.label == "django_q":
        schedules.periodic()


def connect(app_config) -> None:
    signals.special_times_changed.connect(on_special_times_changed, dispatch_uid="jobs.special_times")
    signals.lot_end_changed.connect(on_lot_end_changed, dispatch_uid="jobs.lot_end")
    signals.order_shipped.connect(on_order_shipped, dispatch_uid="jobs.order_shipped")
    signals.orders_created.connect(on_orders_created, dispatch_uid="jobs.orders_created")
    signals.refund_created.connect(on_refund_created, dispatch_uid="jobs.refund_created")
    signals.refund_submitted.connect(on_refund_submitted, dispatch_uid="jobs.refund_submitted")
    signals.payment_close_wanted.connect(on_payment_close_wanted, dispatch_uid="jobs.payment_close")
    signals.special_outcome_changed.connect(on_special_outcome_changed, dispatch_uid="jobs.special_outcome")
    signals.notification_queued.connect(on_notification_queued, dispatch_uid="jobs.notification_queued")
    post_migrate.connect(on_post_migrate, dispatch_uid="jobs.sweep_schedule")
