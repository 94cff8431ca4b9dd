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
    from wagtail.models import Page

    from cms.site import ensure_auction_index

    # A test's flush also sends post_migrate, with Wagtail's root page gone.
    if Page.get_first_root_node() is not None:
        ensure_auction_index()
