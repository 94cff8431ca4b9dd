"""Importing a catalog from a spreadsheet: one row per lot, all or nothing.

The whole file is checked before anything is written, and every error is
reported at once as ``row N: column: message`` (N as the spreadsheet shows it,
header = row 1), so an operator fixes the file in one pass. Terms meet the
same ``auction.services.catalog`` rules as in the admin, and pages are
published through revisions, so the same signals write the market rows.

Conventions (example: ``docs/catalog-example.csv``): rows with the same
``special`` title are one special, and each repeats its special's columns,
which must agree; a special whose title already exists is refused, never
duplicated or merged; the special's cover is the first image among its lots.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.images import ImageFile
from django.db import transaction
from django.utils.translation import gettext as _
from wagtail.images import get_image_model
from wagtail.images.models import AbstractImage
from wagtail.utils.file import hash_filelike

from auction.models import Special
from auction.services.catalog import LotTerms, SpecialTerms, lot_terms_errors, special_terms_errors
from cms.models import AuctionIndexPage, LotPage, LotPageImage, SpecialPage
from cms.site import ensure_auction_index
from cms.spreadsheets import (
    ImportRefused,
    cell_text,
    description_html,
    image_errors,
    parse_percent,
    parse_seconds,
    parse_time,
    parse_title,
    parse_yuan,
    read_table,
)

SPECIAL_COLUMNS = (
    "preview_at", "starts_at", "ends_at", "special_deposit", "extension_seconds", "buyer_premium_percent", "extension_cap_seconds",
)
LOT_COLUMNS = ("lot", "start_price", "reserve_price", "deposit", "increment", "buy_now_price", "description", "image")
COLUMNS = ("special", *SPECIAL_COLUMNS, *LOT_COLUMNS)
REQUIRED_COLUMNS = ("special", "preview_at", "starts_at", "ends_at", "lot", "start_price")
# The service names its errors by term; the file names them by column.
SPECIAL_TERM_COLUMNS = {"deposit": "special_deposit", "buyer_premium_rate": "buyer_premium_percent"}
DEFAULT_EXTENSION_SECONDS = 300


@dataclass
class LotPlan:
    row: int
    title: str
    terms: LotTerms
    description: str
    image_path: Path | None


@dataclass
class SpecialPlan:
    row: int
    title: str
    terms: SpecialTerms
    lots: list[LotPlan] = field(default_factory=list)


@dataclass
class CatalogPlan:
    specials: list[SpecialPlan]

    @property
    def page_count(self) -> int:
        return sum(1 + len(special.lots) for special in self.specials)


@dataclass(frozen=True)
class CreatedSpecial:
    page_id: int
    market_id: int
    title: str
    lot_count: int


# Checking --------------------------------------------------------------------


class _Row:
    """One data row; each read records its own error and returns None."""

    def __init__(self, number: int, cells: dict[str, object], errors: list[tuple[int, str, str]]):
        self.number = number
        self.cells = cells
        self.errors = errors

    def error(self, column: str, message: str) -> None:
        self.errors.append((self.number, column, message))

    def raw(self, column: str) -> object:
        value = self.cells.get(column)
        return None if isinstance(value, str) and not value.strip() else value

    def read(self, column: str, parse: Callable[[object], object], *, default: object = None) -> object:
        value = self.raw(column)
        if value is None:
            if column in REQUIRED_COLUMNS:
                self.error(column, _("required"))
            return default
        try:
            return parse(value)
        except ValueError as error:
            self.error(column, str(error))
            return None


def _header(cells: list[object], errors: list[tuple[int, str, str]]) -> dict[int, str]:
    """Column index → column name; unknown and missing columns are errors."""
    columns: dict[int, str] = {}
    for index, cell in enumerate(cells):
        name = cell_text(cell).lower()
        if not name:
            continue
        if name not in COLUMNS:
            # A misspelt column would otherwise drop its values without a word.
            errors.append((1, name, _("unknown column; the columns are %(columns)s") % {"columns": ", ".join(COLUMNS)}))
        elif name in columns.values():
            errors.append((1, name, _("the column appears twice")))
        else:
            columns[index] = name
    for name in REQUIRED_COLUMNS:
        if name not in columns.values():
            errors.append((1, name, _("required column missing")))
    return columns


def _special_terms(row: _Row) -> SpecialTerms | None:
    values = {
        "preview_at": row.read("preview_at", parse_time),
        "starts_at": row.read("starts_at", parse_time),
        "ends_at": row.read("ends_at", parse_time),
        "deposit": row.read("special_deposit", parse_yuan, default=0),
        "extension_seconds": row.read("extension_seconds", parse_seconds, default=DEFAULT_EXTENSION_SECONDS),
        "buyer_premium_rate": row.read("buyer_premium_percent", parse_percent, default=0),
        "extension_cap_seconds": row.read("extension_cap_seconds", parse_seconds, default=0),
    }
    if None in values.values():
        # The service's remaining checks order the three times; parsing already
        # bounded the deposit and the window, so nothing more can be said.
        return None
    terms = SpecialTerms(**values)
    for name, message in special_terms_errors(terms).items():
        row.error(SPECIAL_TERM_COLUMNS.get(name, name), message)
    return terms


def _lot(row: _Row, folder: Path) -> LotPlan | None:
    title = row.read("lot", parse_title)
    values = {
        "start_price": row.read("start_price", parse_yuan),
        "reserve_price": row.read("reserve_price", parse_yuan, default=0),
        "deposit": row.read("deposit", parse_yuan, default=0),
        "increment": row.read("increment", parse_yuan, default=0),
        "buy_now_price": row.read("buy_now_price", parse_yuan, default=0),
    }
    image_path = None
    image = cell_text(row.raw("image"))
    if image:
        image_path = (folder / Path(image).expanduser()).resolve()  # an absolute path stays itself
        for message in image_errors(image_path):
            row.error("image", message)
    # An unreadable amount stands in as 0 so the others are still checked;
    # what the service says about the stand-in itself is not news.
    unreadable = {name for name, value in values.items() if value is None}
    terms = LotTerms(**{name: value or 0 for name, value in values.items()})
    for name, message in lot_terms_errors(terms).items():
        if name not in unreadable:
            row.error(name, message)
    if title is None or unreadable:
        return None
    return LotPlan(row.number, title, terms, description_html(cell_text(row.raw("description"))), image_path)


def _disagreements(first: SpecialTerms, terms: SpecialTerms) -> list[str]:
    names = ("preview_at", "starts_at", "ends_at", "deposit", "extension_seconds", "buyer_premium_rate", "extension_cap_seconds")
    return [SPECIAL_TERM_COLUMNS.get(name, name) for name in names if getattr(first, name) != getattr(terms, name)]


def _existing_titles(titles: list[str]) -> set[str]:
    index = AuctionIndexPage.objects.first()
    if index is None:
        return set()
    return set(SpecialPage.objects.child_of(index).filter(title__in=titles).values_list("title", flat=True))


def _row_error(row: int, column: str, message: str) -> str:
    return _("row %(row)s: %(column)s: %(message)s") % {"row": row, "column": column, "message": message}


def catalog_plan(path: Path) -> CatalogPlan:
    """Read and check the whole file; ImportRefused lists every error found."""
    path = Path(path)
    table = read_table(path)
    errors: list[tuple[int, str, str]] = []
    if not table:
        raise ImportRefused([_("%(file)s: the file is empty; the first row names the columns.") % {"file": path.name}])
    columns = _header(table[0], errors)
    if errors:
        raise ImportRefused([_row_error(row, column, message) for row, column, message in errors])

    specials: dict[str, SpecialPlan] = {}
    first_rows: dict[str, int] = {}  # a special's first row defines it, even when that row is bad
    for number, cells in enumerate(table[1:], start=2):
        if all(cell_text(cell) == "" for cell in cells):
            continue  # blank rows are common at a sheet's end
        values = {columns[index]: cell for index, cell in enumerate(cells) if index in columns}
        for index, cell in enumerate(cells):
            if index not in columns and cell_text(cell):
                errors.append((number, _("column %(number)s") % {"number": index + 1}, _("a value under no column name")))
        row = _Row(number, values, errors)
        special_title = row.read("special", parse_title)
        terms = _special_terms(row)
        lot = _lot(row, path.parent)
        if special_title is None:
            continue
        first_row = first_rows.setdefault(special_title, number)
        special = specials.get(special_title)
        if first_row == number and terms is not None:
            special = specials[special_title] = SpecialPlan(number, special_title, terms)
        elif special is not None and terms is not None:
            for column in _disagreements(special.terms, terms):
                row.error(column, _("differs from row %(row)s, the first row of special “%(special)s”") % {"row": first_row, "special": special_title})
        if special is not None and lot is not None:
            special.lots.append(lot)

    for title in _existing_titles(list(first_rows)):
        errors.append(
            (
                first_rows[title],
                "special",
                _("a special titled “%(title)s” already exists; rename it in the file or add its lots in the admin") % {"title": title},
            )
        )
    if not specials and not errors:
        raise ImportRefused([_("%(file)s: no lots below the header row.") % {"file": path.name}])
    if errors:
        errors.sort(key=lambda error: error[0])  # stable: a row's errors keep their column order
        raise ImportRefused([_row_error(row, column, message) for row, column, message in errors])
    return CatalogPlan(list(specials.values()))


# Creating --------------------------------------------------------------------


class _Images:
    """Wagtail images made from the plan's files: one per file, however many lots share it."""

    def __init__(self) -> None:
        self.by_path: dict[Path, AbstractImage] = {}

    def get(self, lot: LotPlan) -> AbstractImage:
        if lot.image_path not in self.by_path:
            with lot.image_path.open("rb") as handle:
                file_hash = hash_filelike(handle)
                handle.seek(0)
                image = get_image_model()(
                    title=lot.title,
                    file=ImageFile(handle, name=lot.image_path.name),
                    file_size=lot.image_path.stat().st_size,
                    file_hash=file_hash,
                )
                image.save()
            self.by_path[lot.image_path] = image
        return self.by_path[lot.image_path]

    def delete_files(self) -> None:
        for image in self.by_path.values():
            image.file.delete(save=False)


def _special_create(
    index: AuctionIndexPage, special: SpecialPlan, images: _Images, advance: Callable[[int], object]
) -> CreatedSpecial:
    cover_lot = next((lot for lot in special.lots if lot.image_path), None)
    terms = special.terms
    page = index.add_child(
        instance=SpecialPage(
            live=False,
            title=special.title,
            cover=images.get(cover_lot) if cover_lot else None,
            preview_at=terms.preview_at,
            starts_at=terms.starts_at,
            ends_at=terms.ends_at,
            deposit=terms.deposit,
            extension_seconds=terms.extension_seconds,
            buyer_premium_rate=terms.buyer_premium_rate,
            extension_cap_seconds=terms.extension_cap_seconds,
        )
    )
    # Through a revision, as the publish button does: the signals write the market rows.
    page.save_revision().publish()
    advance(1)
    for lot in special.lots:
        lot_page = LotPage(
            live=False,
            title=lot.title,
            description=lot.description,
            start_price=lot.terms.start_price,
            reserve_price=lot.terms.reserve_price,
            deposit=lot.terms.deposit,
            increment=lot.terms.increment,
            buy_now_price=lot.terms.buy_now_price,
        )
        if lot.image_path:
            lot_page.gallery_images = [LotPageImage(image=images.get(lot), sort_order=0)]
        page.add_child(instance=lot_page).save_revision().publish()
        advance(1)
    market = Special.objects.get(page_id=page.pk)
    return CreatedSpecial(page.pk, market.pk, special.title, len(special.lots))


def catalog_create(plan: CatalogPlan, *, advance: Callable[[int], object] | None = None) -> list[CreatedSpecial]:
    """Create and publish every page of a checked plan, in one transaction.

    ``advance(1)`` is called after each page, for a progress bar. Should
    anything fail, the database rolls back and the image files written so
    far are deleted too: storage is not part of the transaction.
    """
    images = _Images()
    try:
        with transaction.atomic():
            index = ensure_auction_index()
            advance = advance or (lambda count: None)
            return [_special_create(index, special, images, advance) for special in plan.specials]
    except BaseException:
        images.delete_files()
        raise
