from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import connections


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


@register(Tags.database)
def mysql_database_is_utf8mb4(app_configs, databases=None, **kwargs):
    """Run by ``migrate`` before it changes anything, and by ``check --database default``
    (deploy/auction-web@.service, before gunicorn starts).

    Any utf8mb4 collation works (the connection takes the database's own,
    auction/db.py); another character set loses nicknames and addresses
    (emoji, rare characters), so it is refused before a table exists.
    """
    errors = []
    for alias in databases or ():
        connection = connections[alias]
        if connection.vendor != "mysql":
            continue
        with connection.cursor() as cursor:
            cursor.execute("SELECT DATABASE(), @@character_set_database, @@collation_database")
            name, charset, collation = cursor.fetchone()
        if charset != "utf8mb4":
            errors.append(
                Error(
                    f"The database {name} has the character set {charset} ({collation}); it must be utf8mb4.",
                    hint=f"Run ALTER DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; on the "
                    "database before the first migrate (tables made before keep their character set: start again "
                    "from an empty database).",
                    id="auction.E001",
                )
            )
    return errors
