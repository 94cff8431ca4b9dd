from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def sandbox_off_in_production(app_configs, **kwargs):
    """The sandbox lets anyone log in as anyone and pay without paying."""
    if settings.AUCTION_SANDBOX and not settings.DEBUG:
        return [
            Warning(
                "AUCTION_SANDBOX is on in a production configuration.",
                hint="Set AUCTION_SANDBOX=0: the sandbox logs anyone in and fakes payments.",
                id="auction.W001",
            )
        ]
    return []
