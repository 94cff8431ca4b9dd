"""The client's address as the trusted proxy saw it, for throttles and the admin's lockout.

``X-Forwarded-For`` is the client's to write: only the entries our own proxies
appended can be believed. Behind ``AUCTION_NUM_PROXIES`` proxies (nginx, which
sets the header to the address it saw, is one), the client is the n-th entry
from the right; with 0 (the embedded default, no proxy) it is ``REMOTE_ADDR``.
"""

from django.conf import settings
from django.http import HttpRequest

# Long enough for any IPv6 text form; a key never grows with what a client sends.
_LONGEST_ADDRESS = 64


def client_ip(request: HttpRequest) -> str:
    remote_addr = request.META.get("REMOTE_ADDR", "")
    proxies = settings.AUCTION_NUM_PROXIES
    if proxies > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        # Fewer entries than proxies: the request did not come through them all,
        # so no entry is one of ours to believe.
        if len(forwarded) >= proxies:
            return forwarded[-proxies][:_LONGEST_ADDRESS]
    return remote_addr[:_LONGEST_ADDRESS]
