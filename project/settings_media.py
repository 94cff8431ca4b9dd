"""Settings: static files, and media (Wagtail's images) on local disk or object storage."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from project import media
from project.settings_env import DEBUG, VAR_DIR, env_bool

STATIC_URL = os.environ.get("DJANGO_STATIC_URL", "/static/")
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "static"))
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
# Local disk (the embedded default) or an S3-compatible bucket: README, "Media on
# object storage"; project/media.py reads AUCTION_MEDIA_STORAGE, AUCTION_S3_* and
# AUCTION_MEDIA_BASE_URL (the CDN's address, which media URLs are built on).
AUCTION_MEDIA_STORAGE = (os.environ.get("AUCTION_MEDIA_STORAGE") or media.LOCAL).strip().lower()
MEDIA_URL = media.media_base_url(os.environ) or os.environ.get("DJANGO_MEDIA_URL", "/media/")
try:
    STORAGES = {
        "default": media.media_storage(os.environ, media_root=str(MEDIA_ROOT), media_url=MEDIA_URL),
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
except media.MediaSettingsError as error:
    raise ImproperlyConfigured(str(error)) from error
# In production nginx (or object storage) serves media; Django only does it
# for the embedded default, and never from a bucket.
AUCTION_SERVE_MEDIA = env_bool("AUCTION_SERVE_MEDIA", DEBUG and AUCTION_MEDIA_STORAGE == media.LOCAL)
