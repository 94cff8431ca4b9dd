"""Editors' pages: the auction index, specials (专场) and their lots (拍品).

Pages are content and the terms an editor sets. Publishing copies them into
the market rows in ``auction`` (see ``cms.publishing``); bids never touch a
page, and nothing here is read by the API.
"""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    HelpPanel,
    MultiFieldPanel,
    MultipleChooserPanel,
    ObjectList,
    TabbedInterface,
)
from wagtail.fields import RichTextField
from wagtail.models import Orderable, Page

from auction.money import BasisPointsField, FenField
from auction.services import catalog
from cms.market_panels import LotMarketPanel, MarketTab, SpecialMarketPanel
from cms.page_forms import LotPageForm, SpecialPageForm
from cms.rich_text import api_html


class AuctionIndexPage(Page):
    intro = RichTextField(blank=True)

    content_panels = Page.content_panels + [FieldPanel("intro", heading=_("Introduction"))]
    subpage_types = ["cms.SpecialPage"]
    max_count = 1

    class Meta:
        verbose_name = _("auction index")

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["specials"] = SpecialPage.objects.child_of(self).live().order_by("-starts_at")
        return context


class SpecialPage(Page):
    cover = models.ForeignKey(
        "wagtailimages.Image", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = RichTextField(blank=True)
    preview_at = models.DateTimeField(_("preview opens"), help_text=_("预展: lots are visible, bidding not yet open."))
    starts_at = models.DateTimeField(_("bidding starts"), help_text=_("Prices, deposits and times freeze at this moment."))
    ends_at = models.DateTimeField(_("bidding ends"), help_text=_("The first lot ends here."))
    deposit = FenField(_("special-wide deposit (yuan)"), default=0, help_text=_("One deposit for every lot; 0: not offered."))
    extension_seconds = models.PositiveIntegerField(
        _("anti-sniping window (seconds)"), default=300,
        help_text=_("A bid this close to a lot's end moves the end this far after the bid; 0: off."),
    )
    stagger_seconds = models.PositiveIntegerField(
        _("staggered ends (seconds)"), default=0,
        help_text=_("Lot k ends k × this after the special's end, so bidders can follow lots one by one; 0: off."),
    )

    buyer_premium_rate = BasisPointsField(
        _("buyer's premium (%)"), default=0,
        help_text=_("佣金: a percentage of the hammer price, up to two decimals, added to the winner's order; 0: none."),
    )
    extension_cap_seconds = models.PositiveIntegerField(
        _("anti-sniping cap (seconds)"), default=0,
        help_text=_("Extensions never move a lot past its original end plus this; 0: no cap."),
    )

    content_panels = Page.content_panels + [
        FieldPanel("cover", heading=_("Cover image")),
        FieldPanel("description", heading=_("Description")),
        MultiFieldPanel(
            [
                FieldRowPanel([FieldPanel("preview_at"), FieldPanel("starts_at"), FieldPanel("ends_at")]),
                FieldRowPanel([FieldPanel("deposit"), FieldPanel("extension_seconds"), FieldPanel("stagger_seconds")]),
                FieldRowPanel([FieldPanel("buyer_premium_rate"), FieldPanel("extension_cap_seconds")]),
                HelpPanel(_("Terms can change until bidding starts; after that only text and images can.")),
            ],
            heading=_("Terms"),
        ),
    ]
    edit_handler = TabbedInterface([
        ObjectList(content_panels, heading=gettext_lazy("Content")),
        # Read-only: what bids made of the published special.
        MarketTab([SpecialMarketPanel(heading=_("Market summary"))], heading=_("Market")),
        ObjectList(Page.promote_panels, heading=gettext_lazy("Promote")),
        ObjectList(Page.settings_panels, heading=gettext_lazy("Settings")),
    ])
    parent_page_types = ["cms.AuctionIndexPage"]
    subpage_types = ["cms.LotPage"]
    # Terms frozen by bidding are read-only, with the reason (cms.page_forms).
    base_form_class = SpecialPageForm

    class Meta:
        verbose_name = _("special (专场)")

    def terms(self) -> catalog.SpecialTerms:
        return catalog.SpecialTerms(
            preview_at=self.preview_at,
            starts_at=self.starts_at,
            ends_at=self.ends_at,
            deposit=self.deposit or 0,
            extension_seconds=self.extension_seconds or 0,
            stagger_seconds=self.stagger_seconds or 0,
            buyer_premium_rate=self.buyer_premium_rate or 0,
            extension_cap_seconds=self.extension_cap_seconds or 0,
        )

    def content(self) -> catalog.Content:
        return catalog.Content(title=self.title, description=api_html(self.description), cover_image_id=self.cover_id)

    def clean(self):
        super().clean()
        if None in (self.preview_at, self.starts_at, self.ends_at):
            return  # the missing field already has its own error
        errors = catalog.special_check(page_id=self.pk, terms=self.terms())
        if errors:
            raise ValidationError(errors)

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["lots"] = LotPage.objects.child_of(self).live().specific()
        return context


class LotPage(Page):
    description = RichTextField(blank=True)
    start_price = FenField(_("start price (yuan)"))
    reserve_price = FenField(_("reserve price (yuan)"), default=0, help_text=_("0: no reserve; otherwise at least the start price."))
    deposit = FenField(_("deposit (yuan)"), default=0, help_text=_("保证金 for this lot; 0: none needed."))
    increment = FenField(
        _("fixed increment (yuan)"), default=0,
        help_text=_("0: the default ladder (¥50 under ¥1,000 … ¥10,000 above ¥1,000,000)."),
    )
    buy_now_price = FenField(
        _("buy-now price (yuan)"), default=0,
        help_text=_("一口价: a bidder may end the lot at once at this price; above the start and the reserve; 0: none."),
    )

    content_panels = Page.content_panels + [
        MultipleChooserPanel("gallery_images", label=_("Images"), chooser_field_name="image"),
        FieldPanel("description", heading=_("Description")),
        MultiFieldPanel(
            [
                FieldRowPanel([FieldPanel("start_price"), FieldPanel("reserve_price")]),
                FieldRowPanel([FieldPanel("deposit"), FieldPanel("increment"), FieldPanel("buy_now_price")]),
                HelpPanel(_("Terms can change until the special's bidding starts; after that only text and images can.")),
            ],
            heading=_("Terms"),
        ),
    ]
    edit_handler = TabbedInterface([
        ObjectList(content_panels, heading=gettext_lazy("Content")),
        # Read-only: price, leader, bids and deposits live on the market row, not the page.
        MarketTab([LotMarketPanel(heading=_("Market state"))], heading=_("Market")),
        ObjectList(Page.promote_panels, heading=gettext_lazy("Promote")),
        ObjectList(Page.settings_panels, heading=gettext_lazy("Settings")),
    ])
    parent_page_types = ["cms.SpecialPage"]
    subpage_types: list[str] = []
    base_form_class = LotPageForm

    class Meta:
        verbose_name = _("lot (拍品)")

    def terms(self) -> catalog.LotTerms:
        return catalog.LotTerms(
            start_price=self.start_price or 0,
            reserve_price=self.reserve_price or 0,
            deposit=self.deposit or 0,
            increment=self.increment or 0,
            buy_now_price=self.buy_now_price or 0,
        )

    def image_ids(self) -> tuple[int, ...]:
        return tuple(item.image_id for item in self.gallery_images.all() if item.image_id)

    def content(self) -> catalog.Content:
        image_ids = self.image_ids()
        return catalog.Content(
            title=self.title,
            description=api_html(self.description),
            cover_image_id=image_ids[0] if image_ids else None,
            image_ids=image_ids,
        )

    def clean(self):
        super().clean()
        if self.start_price is None:
            return
        errors = catalog.lot_check(page_id=self.pk, terms=self.terms())
        if errors:
            raise ValidationError(errors)


class LotPageImage(Orderable):
    page = ParentalKey(LotPage, on_delete=models.CASCADE, related_name="gallery_images")
    image = models.ForeignKey("wagtailimages.Image", on_delete=models.CASCADE, related_name="+")
    caption = models.CharField(blank=True, max_length=250)

    panels = [FieldPanel("image", heading=_("Image")), FieldPanel("caption", heading=_("Caption"))]
