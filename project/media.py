"""Where media lives (Wagtail's original images and renditions): local disk or an S3-compatible bucket.

Settings only (read by project/settings_media.py, and by the tests to point a
storage at their own S3 server), so nothing here imports Django or boto3:
the embedded default never needs either.

``AUCTION_MEDIA_STORAGE=s3`` puts every file an editor uploads, a catalog
import or the demo makes, and every rendition Wagtail cuts from them, in
``AUCTION_S3_BUCKET`` through django-storages' S3 backend; two web machines
then show the same images. ``AUCTION_MEDIA_BASE_URL`` (a CDN, or the bucket's
public address) is what URLs are built on, unsigned: the API's answers are
cached (lot cards in the shared cache), and a signed URL would expire in
them. Without it, URLs are the endpoint's, signed for an hour: a private
bucket, for a set-up without a CDN.
"""

from collections.abc import Mapping
from urllib.parse import urlsplit

LOCAL = "local"
S3 = "s3"
S3_BACKEND = "storages.backends.s3.S3Storage"
# Signed URLs (no AUCTION_MEDIA_BASE_URL) are good for this long.
SIGNED_URL_SECONDS = 3600
# A rendition's name carries its filter spec and the original's hash, so it
# never changes under the same name: a CDN and the phone may keep it long.
CACHE_CONTROL = "public, max-age=2592000"


class MediaSettingsError(ValueError):
    pass


def media_storage(environ: Mapping[str, str], *, media_root: str, media_url: str) -> dict:
    """The ``STORAGES["default"]`` entry the environment asks for."""
    kind = (environ.get("AUCTION_MEDIA_STORAGE") or LOCAL).strip().lower()
    if kind == LOCAL:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": media_root, "base_url": media_url}}
    if kind != S3:
        raise MediaSettingsError(f"AUCTION_MEDIA_STORAGE must be {LOCAL!r} or {S3!r}, not {kind!r}")
    bucket = environ.get("AUCTION_S3_BUCKET", "").strip()
    if not bucket:
        raise MediaSettingsError("AUCTION_MEDIA_STORAGE=s3 needs AUCTION_S3_BUCKET")
    options = {
        "bucket_name": bucket,
        "region_name": environ.get("AUCTION_S3_REGION") or "us-east-1",
        # Empty: boto3's own (AWS); any S3-compatible server otherwise (MinIO, Ceph, a cloud's COS/OSS endpoint).
        "endpoint_url": environ.get("AUCTION_S3_ENDPOINT_URL") or None,
        # Empty: boto3's own chain (an instance role, ~/.aws); never logged.
        "access_key": environ.get("AUCTION_S3_ACCESS_KEY") or None,
        "secret_key": environ.get("AUCTION_S3_SECRET_KEY") or None,
        # Two uploads named alike (every phone calls its photo IMG_0001.jpg)
        # must not overwrite each other: the second gets a suffix, as on disk.
        "file_overwrite": False,
        # Path-style (endpoint/bucket/key) works on every S3-compatible server;
        # virtual hosts need a DNS name per bucket.
        "addressing_style": "path",
        # Signature v4: what every region since 2014 and MinIO/Ceph require (boto3 still signs URLs v2 unless told).
        "signature_version": "s3v4",
        "object_parameters": {"CacheControl": CACHE_CONTROL},
        "querystring_expire": SIGNED_URL_SECONDS,
    }
    base_url = (environ.get("AUCTION_MEDIA_BASE_URL") or "").strip()
    if base_url:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise MediaSettingsError(f"AUCTION_MEDIA_BASE_URL must be an http(s) URL, not {base_url!r}")
        # django-storages builds "<url_protocol>//<custom_domain>/<name>".
        options.update(custom_domain=(parts.netloc + parts.path).rstrip("/"), url_protocol=f"{parts.scheme}:",
                       querystring_auth=False)
    else:
        options["querystring_auth"] = True
    return {"BACKEND": S3_BACKEND, "OPTIONS": options}


def media_base_url(environ: Mapping[str, str]) -> str:
    """The public base URL, with its trailing slash (Django's MEDIA_URL form); empty when unset."""
    base_url = (environ.get("AUCTION_MEDIA_BASE_URL") or "").strip()
    return base_url.rstrip("/") + "/" if base_url else ""
