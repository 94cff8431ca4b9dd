from django.apps import AppConfig


class AuctionConfig(AppConfig):
    name = "auction"
    verbose_name = "Auction"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from auction import checks  # noqa: F401  (registers the deploy checks)
        from auction.db import collation_from_database

        connection_created.connect(collation_from_database, dispatch_uid="auction.collation_from_database")
