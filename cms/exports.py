"""CSV and XLSX of every Market list, through Wagtail's own list export.

Wagtail's ``SpreadsheetExportMixin`` (on every ``IndexView``) exports the
filtered, searched queryset behind the list when ``?export=csv|xlsx`` is
added; the viewsets here give it columns. What this module changes:

- money in yuan with two decimals (a number in XLSX, formatted ``0.00``),
  never fen;
- times in Asia/Shanghai: Wagtail writes XLSX times in UTC;
- rows read with ``QuerySet.iterator()``, so memory stays flat; CSV is
  streamed as it is written (with a BOM so Excel reads the Chinese), XLSX is
  written to a temporary file on disk and then streamed from it.
"""

import datetime
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import FileResponse
from django.utils import timezone
from django.utils.functional import cached_property
from wagtail.admin.views.generic import IndexView

from auction.money import fen_to_yuan

MONEY, TIME, TEXT = "money", "time", "text"
CHUNK = 2000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class ExportColumn:
    key: str
    heading: str
    value: Callable[[Any], Any]
    kind: str = TEXT


def money(key: str, heading: str, value=None) -> ExportColumn:
    return ExportColumn(key, heading, value or (lambda obj: getattr(obj, key)), MONEY)


def moment(key: str, heading: str, value=None) -> ExportColumn:
    return ExportColumn(key, heading, value or (lambda obj: getattr(obj, key)), TIME)


def text(key: str, heading: str, value=None) -> ExportColumn:
    return ExportColumn(key, heading, value or (lambda obj: getattr(obj, key)), TEXT)


def choice(key: str, heading: str) -> ExportColumn:
    """A status as people read it (its label), not its code."""
    return ExportColumn(key, heading, lambda obj: getattr(obj, f"get_{key}_display")() if getattr(obj, key) else "", TEXT)


def yuan(fen: int | None) -> Decimal | None:
    return None if fen is None else fen_to_yuan(fen).quantize(Decimal("0.01"))


def local_naive(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None:
        return None
    return timezone.make_naive(value, timezone.get_default_timezone()) if timezone.is_aware(value) else value


class ExportingIndexView(IndexView):
    export_columns: tuple[ExportColumn, ...] = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.list_export = [column.key for column in self.export_columns]
        self.export_headings = {column.key: column.heading for column in self.export_columns}
        self._kinds = {column.key: column.kind for column in self.export_columns}

    # Times: local, as ops read them. XLSX gets a real date cell (naive: Excel has no zones).
    custom_value_preprocess = {
        datetime.datetime: {
            IndexView.FORMAT_XLSX: local_naive,
            IndexView.FORMAT_CSV: lambda value: local_naive(value).strftime("%Y-%m-%d %H:%M:%S"),
        },
        (datetime.date, datetime.time): {IndexView.FORMAT_XLSX: None},
        Decimal: {IndexView.FORMAT_CSV: lambda value: f"{value:.2f}", IndexView.FORMAT_XLSX: None},
        dict: {IndexView.FORMAT_CSV: str, IndexView.FORMAT_XLSX: str},
        list: {IndexView.FORMAT_CSV: str, IndexView.FORMAT_XLSX: str},
    }

    # Labels and title in the user's language (cms.labels), not the models' English names.
    def _get_custom_column(self, field_name, column_class=None, **kwargs):
        from wagtail.admin.ui.tables import Column

        from cms.labels import FIELD_LABELS

        column = super()._get_custom_column(field_name, column_class or Column, **kwargs)
        if field_name in FIELD_LABELS:
            column.label = FIELD_LABELS[field_name]
        return column

    def get_page_title(self):
        return self.page_title or super().get_page_title()

    @cached_property
    def filters(self):
        from cms.labels import FIELD_LABELS

        filterset = super().filters
        if filterset is not None:
            declared = type(filterset).declared_filters
            for name, form_field in filterset.form.fields.items():
                # Filters generated from model fields carry the model's English name.
                unlabelled = name not in declared or declared[name]._label is None
                if unlabelled and name in FIELD_LABELS:
                    form_field.label = FIELD_LABELS[name]
        return filterset

    def to_row_dict(self, item):
        row = {}
        for column in self.export_columns:
            value = column.value(item)
            if column.kind == MONEY:
                value = yuan(value)
            elif value is not None and not isinstance(value, (str, int, Decimal, datetime.datetime, dict, list, bool)):
                value = str(value)
            row[column.key] = "" if value is None else value
        return row

    def generate_xlsx_row(self, worksheet, row_dict, date_format=None):
        for cell, key in zip(super().generate_xlsx_row(worksheet, row_dict, date_format="yyyy-mm-dd hh:mm:ss"), row_dict, strict=True):
            if self._kinds.get(key) == MONEY:
                cell.number_format = "0.00"
            yield cell

    def _rows(self, queryset):
        # The listing's ordering, filters and search are already on the queryset.
        return queryset.iterator(chunk_size=CHUNK)

    def stream_csv(self, queryset):
        stream = super().stream_csv(_Iterating(queryset, self._rows))
        yield "\ufeff"  # Excel reads a CSV without it in the system's code page, not UTF-8
        yield from stream

    def write_xlsx_response(self, queryset):
        output = tempfile.TemporaryFile()
        self.write_xlsx(_Iterating(queryset, self._rows), output)
        output.seek(0)
        return FileResponse(output, as_attachment=True, content_type=XLSX_TYPE, filename=f"{self.get_filename()}.xlsx")

    def get_filename(self):
        return f"{self.export_filename}-{timezone.localtime():%Y%m%d-%H%M}"


class _Iterating:
    """The queryset as Wagtail's writers see it: its model for headings, rows in chunks."""

    def __init__(self, queryset, rows):
        self.model = queryset.model
        self._queryset = queryset
        self._rows = rows

    def __iter__(self):
        return iter(self._rows(self._queryset))
