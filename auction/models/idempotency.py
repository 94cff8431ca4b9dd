from django.conf import settings
from django.db import models


class IdempotentRequest(models.Model):
    """The answer to one ``Idempotency-Key`` of one user, kept 24 h (CONTRACT.md, Retries).

    The row is inserted before the request's work, so the unique constraint,
    not a read, decides which of two requests with the same key does it; its
    ``status_code`` stays empty while that request is in flight.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # Hex, not the key itself: MySQL's usual collations compare case-blind,
    # and "abc" and "ABC" are two keys.
    key_hex = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and body")
    # Who holds the claim: a release or a finish only touches its own claim,
    # never one a retry took over after the lease ran out.
    lease = models.CharField(max_length=32)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="empty while in flight")
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(db_index=True)
    claimed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key_hex"], name="idempotency_key_once_per_user")]

    @property
    def key(self) -> str:
        return bytes.fromhex(self.key_hex).decode("ascii")

    def __str__(self) -> str:
        return f"{self.key} of user {self.user_id}: {self.status_code or 'in flight'}"
