"""CSV and XLSX exports of the report tables and of the coded feedback, streamed.

CSV is written row by row by a generator (``stream_with_context``), a few hundred rows per chunk, so a
large export neither holds everything in memory nor keeps the client waiting for the first byte. XLSX is
written by openpyxl in write-only mode (rows go straight to a temporary file) and then sent in chunks;
the file is removed once sent. Suppressed cells are the string "<5", as on the page. Texts that a
spreadsheet would run as a formula (starting with = + - @) are prefixed with an apostrophe."""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from flask import Response, stream_with_context
from flask_babel import gettext as _

from .tables import Table

CHUNK_ROWS = 500
FILE_CHUNK = 64 * 1024
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def safe(value):
    """A cell value for a spreadsheet: numbers stay numbers; text that would be a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def about(title: str, filters: dict[str, str], generated: datetime) -> list[list[str]]:
    """The first rows of every export: what it is, when, under which filters, and the suppression rule."""
    described = "; ".join(f"{k}={v}" for k, v in filters.items()) or _("none")
    return [["WHP C4D", title], [_("Generated (UTC)"), generated.strftime("%Y-%m-%d %H:%M")],
            [_("Filters"), described],
            [_("Note"), " ".join((_("Counts under 5, and counts that would let one be worked out from the totals, "
                                    "are shown as “<5” so that nobody can be singled out."),
                                  _("People appear by pseudonym only.")))]]


def _table_rows(t: Table) -> Iterator[list]:
    yield [t.title]
    yield list(t.head)
    yield from t.rows
    if t.total:
        yield list(t.total)
    if t.note:
        yield [t.note]


def csv_chunks(rows: Iterable[list]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # so that spreadsheets open the UTF-8 accents right
    for n, row in enumerate(rows, 1):
        writer.writerow([safe(v) for v in row])
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def tables_rows(head: list[list], tables: list[Table]) -> Iterator[list]:
    yield from head
    for t in tables:
        yield []
        yield from _table_rows(t)


def _sheet_name(title: str, used: set[str]) -> str:
    base = _SHEET_BAD.sub(" ", title).strip()[:28] or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        name, n = f"{base[:25]} {n}", n + 1
    used.add(name.lower())
    return name


def xlsx_file(sheets: Iterable[tuple[str, Iterable[list]]]) -> str:
    """Write (sheet name, rows) to a temporary XLSX file in write-only mode; returns its path."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    used: set[str] = set()
    for name, rows in sheets:
        sheet = workbook.create_sheet(_sheet_name(name, used))
        for row in rows:
            sheet.append([safe(v) for v in row])
    handle, path = tempfile.mkstemp(prefix="c4d-export-", suffix=".xlsx")
    os.close(handle)
    try:
        workbook.save(path)
    except BaseException:
        os.unlink(path)
        raise
    return path


def _file_chunks(path: str) -> Iterator[bytes]:
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(FILE_CHUNK):
                yield chunk
    finally:
        os.unlink(path)


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"', "X-Content-Type-Options": "nosniff"}


def csv_response(rows: Iterable[list], filename: str) -> Response:
    return Response(stream_with_context(csv_chunks(rows)), mimetype=CSV_TYPE, headers=_attachment(filename))


def xlsx_response(path: str, filename: str) -> Response:
    headers = _attachment(filename) | {"Content-Length": str(os.path.getsize(path))}
    return Response(_file_chunks(path), mimetype=XLSX_TYPE, headers=headers, direct_passthrough=True)


def tables_response(fmt: str, title: str, filters: dict[str, str], tables: list[Table], name: str,
                    generated: datetime) -> Response:
    head = about(title, filters, generated)
    filename = f"c4d-{name}-{generated:%Y%m%d-%H%M}.{fmt}"
    if fmt == "csv":
        return csv_response(tables_rows(head, tables), filename)
    sheets = [(_("About"), head)] + [(t.title, _table_rows(t)) for t in tables]
    return xlsx_response(xlsx_file(sheets), filename)
