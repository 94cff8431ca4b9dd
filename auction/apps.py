from django.apps import AppConfig


class AuctionConfig(AppConfig):
    name = "auction"
    verbose_name = "Auction"

    def ready(self) -> None:
        from auction import checks  # noqa: F401  (registers the deploy checks)
