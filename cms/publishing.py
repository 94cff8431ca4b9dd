"""Publishing a page writes its market row; unpublishing or deleting hides it.

Wagtail sends ``page_published`` for every way a page goes live: the editor's
button, scheduled publishing, and publishing an old revision. Each ends in the
same ``auction`` service, which decides what may still change.
"""

import logging

from django.db import transaction
from django.db.models.signals import pre_delete
from wagtail.signals import page_published, page_unpublished, post_page_move

from auction.images import renditions_warm
from auction.services import catalog
from cms.models import LotPage, SpecialPage

logger = logging.getLogger(__name__)


def lot_page_ids(special_page: SpecialPage) -> list[int]:
    return list(LotPage.objects.child_of(special_page).order_by("path").values_list("pk", flat=True))


def sync_special(special_page: SpecialPage, *, is_published: bool) -> catalog.PublishResult:
    result = catalog.special_publish(
        page_id=special_page.pk,
        content=special_page.content(),
        terms=special_page.terms(),
        lot_page_ids=lot_page_ids(special_page),
        is_published=is_published,
    )
    _report_refused(special_page, result)
    return result


def sync_lot(lot_page: LotPage, *, is_published: bool) -> catalog.PublishResult:
    special_page = lot_page.get_parent().specific
    if not catalog.Special.objects.filter(page_id=special_page.pk).exists():
        # A lot published under a special never published: the special's row
        # exists from now on but stays hidden until the special goes live.
        sync_special(special_page, is_published=special_page.live)
    siblings = lot_page_ids(special_page)
    result = catalog.lot_publish(
        page_id=lot_page.pk,
        special_page_id=special_page.pk,
        position=siblings.index(lot_page.pk) if lot_page.pk in siblings else len(siblings),
        content=lot_page.content(),
        terms=lot_page.terms(),
        is_published=is_published,
    )
    _report_refused(lot_page, result)
    return result


def _report_refused(page, result: catalog.PublishResult) -> None:
    # Editors are refused in the form; this is the path without a form
    # (an old revision or a scheduled publish carrying stale terms).
    for name, message in result.refused_terms.items():
        logger.warning("page %s published with frozen %s unchanged: %s", page.pk, name, message)


def on_page_published(sender, instance, **kwargs) -> None:
    page = instance.specific
    if isinstance(page, SpecialPage):
        sync_special(page, is_published=True)
        image_ids = [page.cover_id] if page.cover_id else []
    elif isinstance(page, LotPage):
        sync_lot(page, is_published=True)
        image_ids = list(page.image_ids())
    else:
        return
    transaction.on_commit(lambda: renditions_warm(image_ids))


def on_page_unpublished(sender, instance, **kwargs) -> None:
    if isinstance(instance.specific, (SpecialPage, LotPage)):
        catalog.catalog_unpublish(page_id=instance.pk)


def on_page_deleted(sender, instance, **kwargs) -> None:
    catalog.catalog_unpublish(page_id=instance.pk)


def on_page_moved(sender, instance, parent_page_before, parent_page_after, **kwargs) -> None:
    """Reordering lots moves their staggered ends, until bidding opens."""
    for parent in {parent_page_before.pk: parent_page_before, parent_page_after.pk: parent_page_after}.values():
        parent = parent.specific
        if isinstance(parent, SpecialPage) and catalog.Special.objects.filter(page_id=parent.pk).exists():
            sync_special(parent, is_published=parent.live)


def connect() -> None:
    page_published.connect(on_page_published, dispatch_uid="cms.page_published")
    page_unpublished.connect(on_page_unpublished, dispatch_uid="cms.page_unpublished")
    post_page_move.connect(on_page_moved, dispatch_uid="cms.page_moved")
    for model in (SpecialPage, LotPage):
        pre_delete.connect(on_page_deleted, sender=model, dispatch_uid=f"cms.page_deleted.{model.__name__}")
