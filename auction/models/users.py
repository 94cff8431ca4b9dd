from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Bidders (WeChat openid) and staff (username and password) in one table."""

    openid = models.CharField(max_length=64, unique=True, null=True, blank=True)
    unionid = models.CharField(max_length=64, blank=True, default="", db_index=True)
    nickname = models.CharField(max_length=64, blank=True, default="")
    avatar_url = models.URLField(max_length=500, blank=True, default="")
    # Barred from every new deposit and bid after AUCTION_DEFAULTS_BEFORE_BAN
    # overdue orders, until ops lift it; defaults before the lift do not count again.
    barred_at = models.DateTimeField(null=True, blank=True)
    bar_lifted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.nickname or self.username


class AuthToken(models.Model):
    """An API token; only its SHA-256 is stored, so a leaked table logs no one in."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auth_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Issued by POST /auth/sandbox: refused by every check once the sandbox is
    # off, so a demo login never outlives the demo.
    via_sandbox = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"]), models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"token {self.key_hash[:8]}… of {self.user}"
