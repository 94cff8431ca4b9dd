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


@register(deploy=True)
def client_ip_behind_the_proxy(app_configs, **kwargs):
    """Behind nginx with no proxy counted, every client is nginx's address: one
    login limit and one admin lockout for the whole country."""
    if not settings.DEBUG and settings.AUCTION_NUM_PROXIES == 0:
        return [
            Warning(
                "AUCTION_NUM_PROXIES is 0 in a production configuration: clients are told apart by REMOTE_ADDR.",
                hint="Behind deploy/nginx.conf set AUCTION_NUM_PROXIES=1 (one proxy of ours in front).",
                id="auction.W002",
            )
        ]
    return []
