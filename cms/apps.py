from django.apps import AppConfig


class CmsConfig(AppConfig):
    name = "cms"
    verbose_name = "Catalog pages"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from cms import publishing

        publishing.connect()
        post_migrate.connect(_ensure_index, sender=self)


def _ensure_index(**kwargs) -> None:
    from cms.site import ensure_auction_index

    ensure_auction_index()
