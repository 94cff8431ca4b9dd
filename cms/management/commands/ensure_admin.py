"""Make sure the admin can log in, on every `make run`, without asking anyone anything."""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils.translation import gettext as _

CREDENTIALS_FILE = "admin-credentials.txt"
PASSWORD_VARIABLE = "AUCTION_ADMIN_PASSWORD"


def credentials_path() -> Path:
    # Read at run time: tests and `AUCTION_VAR_DIR` point VAR_DIR elsewhere.
    return Path(settings.VAR_DIR) / CREDENTIALS_FILE


def credentials_write(username: str, password: str) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start, so the password is never readable by others, even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(f"{username} {password}\n")
    path.chmod(0o600)
    return path


def credentials_read(username: str) -> str | None:
    """The generated password recorded for this username, if any."""
    try:
        text = credentials_path().read_text(encoding="utf-8")
    except (FileNotFoundError, PermissionError):
        return None
    recorded_username, _separator, password = text.strip().partition(" ")
    return password if recorded_username == username and password else None


class Command(BaseCommand):
    help = (
        "Make sure a superuser exists: AUCTION_ADMIN_USERNAME (default admin), password from "
        "AUCTION_ADMIN_PASSWORD or generated once into VAR_DIR/admin-credentials.txt."
    )

    def handle(self, *args, **options) -> None:
        username = os.environ.get("AUCTION_ADMIN_USERNAME") or "admin"
        password_from_environment = os.environ.get(PASSWORD_VARIABLE) or ""
        with transaction.atomic():
            shown = self.ensure(username, password_from_environment)
        admin_url = settings.WAGTAILADMIN_BASE_URL.rstrip("/") + "/admin/"
        self.stdout.write(_("Wagtail admin: %(url)s user %(username)s password %(password)s") % {
            "url": admin_url, "username": username, "password": shown})

    def ensure(self, username: str, password_from_environment: str) -> str:
        """Create or repair the superuser; return how to show its password."""
        User = get_user_model()
        user = User.objects.select_for_update().filter(username=username).first()
        created = user is None
        if created:
            user = User(username=username)
        changed = created
        generated = ""
        for flag in ("is_staff", "is_superuser", "is_active"):
            if not getattr(user, flag):
                setattr(user, flag, True)
                changed = True

        if password_from_environment:
            if created or not user.check_password(password_from_environment):
                user.set_password(password_from_environment)
                changed = True
            shown = _("(password from %(variable)s)") % {"variable": PASSWORD_VARIABLE}
        elif created:
            generated = secrets.token_urlsafe(12)
            user.set_password(generated)
            shown = generated
        else:
            recorded = credentials_read(username)
            if recorded and user.check_password(recorded):
                shown = recorded
            else:
                # Never reset a password someone may have chosen in the admin.
                shown = _("(unchanged; set %(variable)s to reset it)") % {"variable": PASSWORD_VARIABLE}
        if changed:
            user.save()
        if generated:
            # Written after the user row, so the file never names a password no user has.
            credentials_write(username, generated)
        return shown
