"""``manage.py import_catalog FILE``: specials and lots from a CSV or XLSX file.

The rules and the work live in ``cms.importing``; this only reports.
"""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from tqdm import tqdm

from cms import importing


class Command(BaseCommand):
    help = (
        "Create and publish specials and their lots from a CSV or XLSX file, one row per lot "
        "(columns: " + ", ".join(importing.COLUMNS) + "). Money in yuan, times ISO 8601. "
        "All or nothing: any bad row refuses the whole file, with every error listed by row."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a .csv (UTF-8) or .xlsx file; image paths are relative to it")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    def handle(self, *args, file: Path, no_progress: bool = False, **options) -> None:
        try:
            plan = importing.catalog_plan(file)
        except importing.ImportRefused as refused:
            for line in refused.errors:
                self.stderr.write(line)
            raise CommandError(_("%(file)s: %(count)s error(s); nothing was imported.") % {"file": file.name, "count": len(refused.errors)}) from None

        # tqdm needs the raw stream: Django's wrapper would end each redraw with a newline.
        stream = options.get("stderr") or sys.stderr
        is_tty = getattr(stream, "isatty", lambda: False)()
        show_progress = is_tty and not no_progress
        with tqdm(total=plan.page_count, file=stream, disable=not show_progress, unit="page", desc="pages") as bar:
            created = importing.catalog_create(plan, advance=bar.update)

        for special in created:
            self.stdout.write(_("special page %(page)s (market id %(market)s): %(title)s, %(lots)s lot(s)") % {
                "page": special.page_id, "market": special.market_id, "title": special.title, "lots": special.lot_count})
        lots = sum(special.lot_count for special in created)
        self.stdout.write(self.style.SUCCESS(_("Imported %(specials)s special(s) and %(lots)s lot(s) from %(file)s.") % {
            "specials": len(created), "lots": lots, "file": file.name}))
