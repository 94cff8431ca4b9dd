"""Reading catalog spreadsheets (CSV, XLSX) and parsing their cells.

Each parser raises ValueError with a message an operator can act on; the
importer adds the row and column.
"""

import csv
import re
import zipfile
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.files import File
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from wagtail.images.fields import WagtailImageField

from auction.money import percent_to_basis_points, yuan_to_fen

# PositiveIntegerField's ceiling: past it the database, not a person, would refuse.
MAX_SECONDS = 2_147_483_647
TITLE_MAX_LENGTH = 255
HTML_TAG = re.compile(r"</?[a-zA-Z][\w-]*(\s[^<>]*)?/?>")


class ImportRefused(Exception):
    """The file cannot be imported; ``errors`` says every reason, row by row."""

    def __init__(self, errors: list[str]):
        super().__init__(_("%(count)s error(s)") % {"count": len(errors)})
        self.errors = errors


# Reading ---------------------------------------------------------------------


def _read_csv(path: Path) -> list[list[object]]:
    # utf-8-sig: Excel's "CSV UTF-8" starts with a BOM, other tools do not.
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return [list(cells) for cells in csv.reader(handle)]
    except UnicodeDecodeError:
        raise ImportRefused([_("%(file)s: not UTF-8 text; save it as “CSV UTF-8”.") % {"file": path.name}]) from None
    except csv.Error as error:
        raise ImportRefused([_("%(file)s: not a readable CSV file (%(error)s).") % {"file": path.name, "error": error}]) from None


def _read_xlsx(path: Path) -> list[list[object]]:
    try:
        # data_only: a formula's last computed value, which is what the editor saw.
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError) as error:
        raise ImportRefused([_("%(file)s: not a readable XLSX workbook (%(error)s).") % {"file": path.name, "error": error}]) from None
    try:
        return [list(cells) for cells in workbook.worksheets[0].iter_rows(values_only=True)]
    finally:
        workbook.close()


def read_table(path: Path) -> list[list[object]]:
    """The file's rows as cells: strings from a CSV, typed values from an XLSX."""
    if not path.is_file():
        raise ImportRefused([_("%(file)s: no such file.") % {"file": path}])
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    raise ImportRefused([_("%(file)s: unsupported file type “%(suffix)s”; use .csv or .xlsx.") % {"file": path.name, "suffix": suffix}])


# Cells -----------------------------------------------------------------------


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a lot titled 1001 in Excel arrives as 1001.0
    return str(value).strip()


def parse_title(value: object) -> str:
    title = cell_text(value)
    if len(title) > TITLE_MAX_LENGTH:
        raise ValueError(_("at most %(count)s characters") % {"count": TITLE_MAX_LENGTH})
    return title


def _numbercell_text(value: object, what: str) -> str:
    if isinstance(value, bool):
        raise ValueError(_("not %(what)s") % {"what": what})
    # repr() of a float is its shortest exact spelling: 1200.5 stays "1200.5",
    # so a third decimal typed in Excel is seen and refused, never rounded.
    return repr(value) if isinstance(value, float) else cell_text(value)


def parse_yuan(value: object) -> int:
    """Yuan as typed or as an XLSX number, in fen; ValueError with the reason."""
    try:
        return yuan_to_fen(_numbercell_text(value, _("an amount in yuan")))
    except ArithmeticError:  # Decimal overflow on absurd exponents ("1e40")
        raise ValueError(_("an amount this large is not plausible")) from None


def parse_percent(value: object) -> int:
    """A percentage with up to two decimals ("15", "12.5"), in basis points."""
    try:
        return percent_to_basis_points(_numbercell_text(value, _("a percentage")))
    except ArithmeticError:
        raise ValueError(_("a percentage is between 0 and 100")) from None


def parse_seconds(value: object) -> int:
    text = _numbercell_text(value, _("a whole number of seconds"))
    try:
        number = Decimal(text)
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value():
        raise ValueError(_("“%(text)s” is not a whole number of seconds") % {"text": text})
    if not 0 <= number <= MAX_SECONDS:
        raise ValueError(_("must be 0 (off) or a positive number of seconds"))
    return int(number)


def parse_time(value: object) -> datetime:
    """ISO 8601 text or an XLSX date-time; naive means the server's zone."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        raise ValueError(_("needs a time of day as well as a date"))
    else:
        text = cell_text(value)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(_("“%(text)s” is not an ISO 8601 time such as 2030-05-01 20:00") % {"text": text}) from None
        if len(text) <= 10:
            # A bare date would silently mean midnight, the wrong end of the day as often as not.
            raise ValueError(_("needs a time of day as well as a date"))
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def description_html(text: str) -> str:
    """HTML is kept as written; plain text becomes escaped paragraphs."""
    text = text.replace("\r\n", "\n").strip()
    if not text or HTML_TAG.search(text):
        return text
    paragraphs = [part.strip() for part in re.split(r"\n\s*\n", text) if part.strip()]
    return "".join(f"<p>{escape(part).replace(chr(10), '<br/>')}</p>" for part in paragraphs)


def image_errors(path: Path) -> list[str]:
    """What the admin's upload form would say about this file, if anything."""
    if not path.is_file():
        return [_("no image file at %(path)s") % {"path": path}]
    with path.open("rb") as handle:
        try:
            WagtailImageField().clean(File(handle, name=path.name))
        except ValidationError as error:
            return [str(message) for message in error.messages]
    return []
