from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from cms.demo import demo_seed, demo_summary


class Command(BaseCommand):
    help = "Seed a demo catalog (three specials: preview, bidding, ended), bidders and coupons, when the catalog is empty."

    def handle(self, *args, **options) -> None:
        result = demo_seed()
        if result is None:
            # `make run` calls this on every start; an existing catalog is the normal case.
            self.stdout.write(_("demo: catalog not empty, nothing seeded"))
            return
        for line in demo_summary(result):
            self.stdout.write(line)
