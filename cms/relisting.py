"""二拍 in the admin: a new lot page with the old one's text and images, published
into a special not yet bidding; the rules and the record are
``auction.services.relisting``'s."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from auction.models import Lot, Special
from auction.services.catalog import LotTerms
from auction.services.relisting import relist_check, relist_record, relist_validate
from cms.models import LotPage, LotPageImage, SpecialPage


def relist(*, lot_id: int, special_page_id: int, start_price: int, reserve_price: int, staff: str) -> Lot:
    """The new lot's market row; ValidationError (by field) when refused."""
    with transaction.atomic():
        old = Lot.objects.select_for_update().get(pk=lot_id)
        special_page = SpecialPage.objects.get(pk=special_page_id)
        special = Special.objects.get(page_id=special_page.pk)
        old_page = LotPage.objects.filter(pk=old.page_id).first() if old.page_id else None
        if old_page is None:
            raise ValidationError({"__all__": _("Lot “%(lot)s” has no page to copy its text and images from.") % {"lot": old.title}})
        buy_now = old_page.buy_now_price if old_page.buy_now_price > max(start_price, reserve_price) else 0
        terms = LotTerms(start_price=start_price, reserve_price=reserve_price, deposit=old_page.deposit,
                         increment=old_page.increment, buy_now_price=buy_now)
        relist_validate(relist_check(lot=old, special=special, terms=terms))
        page = LotPage(
            live=False, title=old_page.title, description=old_page.description, start_price=terms.start_price,
            reserve_price=terms.reserve_price, deposit=terms.deposit, increment=terms.increment,
            buy_now_price=terms.buy_now_price,
        )
        page.gallery_images = [
            LotPageImage(image_id=item.image_id, caption=item.caption, sort_order=index)
            for index, item in enumerate(old_page.gallery_images.all())
        ]
        special_page.add_child(instance=page)
        page.save_revision().publish()  # the signals write the market row, as the publish button does
        new = Lot.objects.get(page_id=page.pk)
        relist_record(old=old, new=new, staff=staff)
        new.refresh_from_db()
    return new
