from django.db import models


class LiveChange(models.Model):
    """The embedded default's change log for live updates (no Redis there).

    Publishers append a row after their transaction commits; every ASGI
    process tails the table by id, so a change made by the job process (a lot
    ending, a settlement) reaches the web process's sockets. A job purges old
    rows: the log is a pipe, not a record (the audit trail is ``Event``).
    """

    channel = models.CharField(max_length=40, help_text="lot:<id> or user:<id>")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.channel} #{self.pk}"
