"""Page forms that show the terms bidding froze as read-only, with the reason.

Once a special's bidding opens, its terms and its lots' terms no longer
change (``auction.services.catalog``). Rather than let an editor type a new
start price and refuse it on publish, the form shows the frozen value in a
disabled field with the reason as its help text: a disabled field takes its
value from ``initial``, so whatever a request posts for it, the page keeps the
market's value and the publish cannot disagree with the market row.
"""

from wagtail.admin.forms import WagtailAdminPageForm

from auction.services.catalog import lot_frozen_terms, special_frozen_terms


class FrozenTermsForm(WagtailAdminPageForm):
    @staticmethod
    def frozen_terms(*, page_id: int | None) -> tuple[dict, str]:
        raise NotImplementedError

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.frozen, reason = self.frozen_terms(page_id=self.instance.pk)
        for name, kept in self.frozen.items():
            field = self.fields.get(name)
            if field is None:
                continue
            field.disabled = True
            field.help_text = reason
            # The market's value, not the page's (an old revision may hold another),
            # in the field's own terms: a disabled field cleans its initial (yuan, percent).
            self.initial[name] = field.prepare_value(kept)


class LotPageForm(FrozenTermsForm):
    frozen_terms = staticmethod(lot_frozen_terms)


class SpecialPageForm(FrozenTermsForm):
    frozen_terms = staticmethod(special_frozen_terms)
