"""The one auction index page, under which editors add specials."""

from django.db import transaction
from wagtail.models import Page, Site

from cms.models import AuctionIndexPage

WAGTAIL_WELCOME_SLUG = "home"


@transaction.atomic
def ensure_auction_index() -> AuctionIndexPage:
    """Create the index as the default site's root once; later calls find it."""
    index = AuctionIndexPage.objects.first()
    if index is not None:
        return index
    root = Page.get_first_root_node()
    index = root.add_child(instance=AuctionIndexPage(title="拍卖 Auctions", slug="auctions"))
    site = Site.objects.filter(is_default_site=True).first()
    if site is None:
        Site.objects.create(hostname="localhost", port=80, root_page=index, is_default_site=True, site_name="Auction")
    else:
        old_root = site.root_page
        site.root_page = index
        site.save()
        # Wagtail's "Welcome" placeholder is of no use to editors; anything else stays.
        if old_root.slug == WAGTAIL_WELCOME_SLUG and old_root.content_type.model == "page" and old_root.is_leaf():
            old_root.delete()
    return index
