"""Ops' actions: "query now" on a stuck refund or payment, and "retry refund".

The sweep does the same every minute; this is for the ops person on the
phone with a bidder who will not wait. Each action calls the very service
the sweep calls, so a button press and the job cannot disagree, and pressing
twice (or racing the job) is harmless: the services lock and re-check.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from auction.errors import DomainError
from auction.models import Payment, PaymentStatus, Refund, RefundStatus
from auction.money import format_yuan
from auction.services.events import event_record
from auction.services.payments import refund_poll, refund_retry
from auction.services.reconcile import payment_reconcile


class QueryNow:
    """One "query now" action: who may run it, on what, and what it says afterwards."""

    model = None
    permission = ""
    label = gettext_lazy("Query the gateway now")

    def why_not(self, obj) -> str:
        """Why the action does not apply to ``obj`` now; empty when it does."""
        raise NotImplementedError

    def run(self, obj) -> tuple[int, str]:
        """Call the service; return a message level and text for the ops person."""
        raise NotImplementedError

    def is_available(self, obj, user) -> bool:
        return user.has_perm(self.permission) and not self.why_not(obj)


class RefundQueryNow(QueryNow):
    model = Refund
    permission = "auction.change_refund"

    def why_not(self, refund: Refund) -> str:
        if refund.status != RefundStatus.PROCESSING:
            return _("Refund %(refund)s is %(status)s: only a refund the gateway is processing can be queried.") % {
                "refund": refund, "status": refund.get_status_display()}
        return ""

    def run(self, refund: Refund) -> tuple[int, str]:
        refund = refund_poll(refund_id=refund.pk)
        if refund.status == RefundStatus.SUCCEEDED:
            return messages.SUCCESS, _("Refund %(refund)s succeeded.") % {"refund": refund}
        if refund.status == RefundStatus.FAILED:
            return messages.ERROR, _("Refund %(refund)s failed at the gateway and needs ops.") % {"refund": refund}
        return messages.WARNING, _(
            "Refund %(refund)s is still processing (or the gateway could not be asked); the sweep keeps polling."
        ) % {"refund": refund}


class PaymentQueryNow(QueryNow):
    model = Payment
    permission = "auction.change_payment"

    def why_not(self, payment: Payment) -> str:
        if payment.status != PaymentStatus.CREATED:
            return _("Payment %(payment)s is %(status)s: only an open payment can be queried.") % {
                "payment": payment, "status": payment.get_status_display()}
        if payment.expires_at > timezone.now():
            # The service closes a payment the gateway reports unpaid; before
            # the window ends that would cut off a bidder who is paying now.
            return _(
                "Payment %(payment)s is open until %(until)s; the bidder may still be paying. It is queried when its window passes."
            ) % {"payment": payment, "until": f"{timezone.localtime(payment.expires_at):%Y-%m-%d %H:%M}"}
        return ""

    def run(self, payment: Payment) -> tuple[int, str]:
        payment_reconcile(payment.pk)
        payment.refresh_from_db()
        if payment.status == PaymentStatus.PAID:
            return messages.SUCCESS, _("Payment %(payment)s was paid at the gateway; it has been applied.") % {"payment": payment}
        if payment.status == PaymentStatus.CLOSED:
            return messages.SUCCESS, _("Payment %(payment)s was not paid; it has been closed.") % {"payment": payment}
        return messages.WARNING, _("Payment %(payment)s is unchanged (the gateway could not be asked); the sweep retries.") % {"payment": payment}


def query_now_view(action: QueryNow, *, inspect_url_name: str):
    """POST only; Django's CSRF middleware guards it like every admin form."""

    @require_POST
    def view(request, pk):
        if not request.user.has_perm(action.permission):
            raise PermissionDenied
        obj = get_object_or_404(action.model, pk=pk)
        reason = action.why_not(obj)
        if reason:
            messages.warning(request, reason)
        else:
            # Who pressed the button belongs in the audit trail next to what it did.
            level, text = action.run(obj)
            obj.refresh_from_db()
            event_record(
                "ops.query_now", actor="ops", user=obj.user if isinstance(obj, Payment) else obj.payment.user,
                **{action.model._meta.model_name: obj}, data={"staff": request.user.get_username(), "status": obj.status},
            )
            messages.add_message(request, level, text)
        return redirect(inspect_url_name, pk)

    return view


# --- retry refund -----------------------------------------------------------------


class RefundRetry:
    """Send a failed refund again with the same ``out_refund_no`` (so it can never
    pay twice), after ops fixed the cause with WeChat; or a pending one now,
    without waiting out its backoff. Asks for confirmation first: it moves money."""

    model = Refund
    permission = "auction.change_refund"
    label = gettext_lazy("Retry refund")

    def why_not(self, refund: Refund) -> str:
        if refund.status not in (RefundStatus.FAILED, RefundStatus.PENDING):
            return _("Refund %(refund)s is %(status)s: only a failed refund, or one waiting to be sent, can be retried.") % {
                "refund": refund, "status": refund.get_status_display()}
        return ""

    def is_available(self, obj, user) -> bool:
        return user.has_perm(self.permission) and not self.why_not(obj)


def refund_retry_view(action: RefundRetry, *, inspect_url_name: str):
    """GET: the confirmation page; POST (CSRF-checked like every admin form): the retry."""

    @require_http_methods(["GET", "POST"])
    def view(request, pk):
        if not request.user.has_perm(action.permission):
            raise PermissionDenied
        refund = get_object_or_404(Refund.objects.select_related("payment"), pk=pk)
        reason = action.why_not(refund)
        if reason:
            messages.warning(request, reason)
            return redirect(inspect_url_name, pk)
        if request.method != "POST":
            return TemplateResponse(request, "cms/admin/refund_retry_confirm.html", {
                "refund": refund, "header_title": _("Retry refund %(refund)s") % {"refund": refund},
                "page_title": _("Retry refund %(refund)s") % {"refund": refund},
                "header_icon": "resubmit", "inspect_url": reverse(inspect_url_name, args=(pk,)),
                "amount": format_yuan(refund.amount),
            })
        try:
            refund = refund_retry(refund_id=refund.pk, staff=request.user.get_username())
        except DomainError as error:  # it changed between the page and the press
            messages.warning(request, str(error))
            return redirect(inspect_url_name, pk)
        if refund.status == RefundStatus.PENDING:
            messages.warning(request, _("Refund %(refund)s was not taken by the gateway (%(error)s); the sweep retries it.") % {
                "refund": refund, "error": refund.last_error[:200]})
        else:
            messages.success(request, _("Refund %(refund)s was sent again; it is %(status)s.") % {"refund": refund, "status": refund.get_status_display()})
        return redirect(inspect_url_name, pk)

    return view
