"""Bearer tokens: required on private endpoints, optional on public ones."""

from django.http import HttpRequest
from ninja.security import HttpBearer

from auction.models import User
from auction.services.tokens import TokenKey, token_key, token_user


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User:
        # token_user raises Unauthenticated, mapped to 401 with the contract's code.
        return token_user(raw_token=token)


class TokenKeyAuth(HttpBearer):
    """For the bid: the token is checked by the service, in its read of the lot."""

    def authenticate(self, request: HttpRequest, token: str) -> TokenKey:
        return token_key(raw_token=token)


class LiveBearerToken(HttpBearer):
    """The raw token itself, once it is known to be live: logout revokes the token it came with."""

    def authenticate(self, request: HttpRequest, token: str) -> str:
        token_user(raw_token=token)
        return token


def optional_user(request: HttpRequest) -> User | None:
    """The caller on a public endpoint, when they sent a token.

    A token that was sent but is bad is a 401 even here: the client learns
    to log in again instead of silently losing its own view (``my``).
    """
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, raw_token = header.partition(" ")
    if scheme.lower() != "bearer":
        return token_user(raw_token="")
    return token_user(raw_token=raw_token.strip())
