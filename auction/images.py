"""Image renditions sized for a phone screen; originals are never served."""

import logging
from collections.abc import Iterable

from django.db.models import Prefetch
from wagtail.images import get_image_model
from wagtail.images.models import SourceImageIOError

logger = logging.getLogger(__name__)

# fill- crops to the frame and never upscales; max- keeps the aspect ratio.
COVER_SPEC = "fill-750x500|format-jpeg|jpegquality-80"
GALLERY_SPEC = "max-1080x1080|format-jpeg|jpegquality-85"


def cover_prefetch(lookup: str = "cover") -> Prefetch:
    return Prefetch(lookup, queryset=get_image_model().objects.prefetch_renditions(COVER_SPEC))


def gallery_prefetch(lookup: str = "image") -> Prefetch:
    return Prefetch(lookup, queryset=get_image_model().objects.prefetch_renditions(GALLERY_SPEC))


def rendition_of(image, spec: str) -> dict | None:
    """``{url, width, height}`` of a rendition; the URL follows MEDIA_URL."""
    if image is None:
        return None
    try:
        rendition = image.get_rendition(spec)
    except SourceImageIOError:
        # The original is gone from storage (a restore without media, a bucket
        # emptied by hand): the lot is still shown, without that picture, and
        # ops learn of it here rather than every bidder from a 500.
        logger.warning("image %s: its original file is missing; shown without it", image.pk)
        return None
    return {"url": rendition.url, "width": rendition.width, "height": rendition.height}


def renditions_warm(image_ids: Iterable[int]) -> None:
    """Make the renditions at publish time, so no bidder's request resizes an image."""
    images = get_image_model().objects.filter(pk__in=set(image_ids)).prefetch_renditions(COVER_SPEC, GALLERY_SPEC)
    for image in images:
        image.get_renditions(COVER_SPEC, GALLERY_SPEC)
