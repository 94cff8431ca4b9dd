from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_table(sender, using: str = "default", **kwargs) -> None:
    # The embedded default's cache is a table (project/settings.py): migrate
    # makes it, as it makes every other table. Does nothing when it exists,
    # or when the cache is Redis.
    call_command("createcachetable", database=using, verbosity=0)


class AuctionConfig(AppConfig):
    name = "auction"
    verbose_name = "Auction"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from auction import checks  # noqa: F401  (registers the deploy checks)
        from auction.db import collation_from_database

        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="auction.cache_table")
        connection_created.connect(collation_from_database, dispatch_uid="auction.collation_from_database")
