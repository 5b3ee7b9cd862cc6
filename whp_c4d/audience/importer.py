"""CSV import of contacts: every row checked by the row schema, a report naming each rejected row,
duplicates merged, and nothing half-imported. Callers commit (or roll back) once."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from flask import current_app
from flask_babel import gettext as _
from marshmallow import ValidationError

from ..auth.models import User
from ..auth.services import audit
from ..core import phones
from ..core.schemas import flatten_errors
from ..extensions import db
from .models import Contact
from .schemas import CSV_OPTIONAL, CSV_REQUIRED, ContactRowSchema
from .services import (
    ConsentInput,
    create_contact,
    enabled_languages,
    find_by_number,
    is_suppressed,
    record_consent,
    resolve_tags,
)


@dataclass
class RowProblem:
    row: int  # line in the file, the header being row 1, as a spreadsheet numbers it
    field: str
    message: str


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    merged: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    fatal: str | None = None  # the whole file was refused
    committed: bool = False

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({p.row for p in self.rejected})


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def import_contacts(data: bytes, actor: User | None, *, all_or_nothing: bool = False,
                    partner_id: int | None = None) -> ImportReport:
    """Validate and import. With ``all_or_nothing`` a single bad row imports nothing."""
    cfg = current_app.config
    report = ImportReport()
    limit = cfg["C4D_IMPORT_MAX_BYTES"]
    if len(data) > limit:
        report.fatal = _("The file is %(size)s MB; the limit is %(limit)s MB. Split it into smaller files.",
                         size=round(len(data) / 1048576, 1), limit=limit // 1048576)
        return report
    text = _decode(data)
    if text is None:
        report.fatal = _("The file is not UTF-8 text. In your spreadsheet, save it as “CSV UTF-8”.")
        return report
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [(h or "").strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        report.fatal = _("The file is empty.")
        return report
    reader.fieldnames = header
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        report.fatal = _("Missing columns: %(columns)s. The header row must name: %(required)s.",
                         columns=", ".join(missing), required=", ".join(CSV_REQUIRED + CSV_OPTIONAL))
        return report
    extra = [c for c in header if c and c not in CSV_REQUIRED + CSV_OPTIONAL]
    if extra:
        report.warnings.append(_("Columns ignored: %(columns)s.", columns=", ".join(extra)))

    schema = ContactRowSchema(languages=enabled_languages())
    by_number: dict[str, tuple[int, dict]] = {}
    max_rows = cfg["C4D_IMPORT_MAX_ROWS"]
    try:
        for line_no, raw in enumerate(reader, start=2):
            report.rows += 1
            if report.rows > max_rows:
                report.fatal = _("The file has more than %(limit)s rows. Split it into smaller files.",
                                 limit=max_rows)
                return report
            if None in raw:  # more cells than header columns
                raw.pop(None)
            row = {k: v for k, v in raw.items() if k in CSV_REQUIRED + CSV_OPTIONAL}
            if not any((v or "").strip() for v in raw.values()):
                report.rows -= 1
                continue
            try:
                clean = schema.load(row)
            except ValidationError as exc:
                for fname, msg in flatten_errors(exc.messages):
                    report.rejected.append(RowProblem(line_no, fname, msg))
                continue
            if is_suppressed(clean["e164"]):
                report.rejected.append(RowProblem(line_no, "phone", _(
                    "This person asked to be erased; their number cannot be imported again.")))
                continue
            if clean["e164"] in by_number:  # same person twice in the file: merge into the first row
                first_line_no, first = by_number[clean["e164"]]
                first["channels"] = sorted(set(first["channels"]) | set(clean["channels"]))
                first["tags"] = sorted(set(first["tags"]) | set(clean["tags"]))
                report.warnings.append(_("Row %(row)s repeats the number in row %(first)s; merged.",
                                         row=line_no, first=first_line_no))
                continue
            by_number[clean["e164"]] = (line_no, clean)
    except csv.Error as exc:
        report.fatal = _("The file is not valid CSV near row %(row)s (%(error)s).",
                         row=report.rows + 1, error=str(exc)[:80])
        return report

    if all_or_nothing and report.rejected:
        return report

    for _line, clean in by_number.values():
        _apply_row(clean, actor, partner_id, report)
    db.session.flush()
    report.committed = True
    audit("contacts.imported", actor, created=report.created, merged=report.merged,
          rejected=len(report.rejected_rows), rows=report.rows)
    return report


def _apply_row(clean: dict, actor: User | None, partner_id: int | None, report: ImportReport) -> None:
    consent_at = datetime.combine(clean["consent_date"], time(12, 0), tzinfo=UTC)
    consent = ConsentInput(source=clean["consent_source"], at=consent_at, notice_version=None)
    existing: Contact | None = find_by_number(clean["e164"])
    if existing is None:
        create_contact(phone=clean["e164"], country=clean["country"], language=clean["language"],
                       channels=clean["channels"], consent=consent, actor=actor, tags=clean["tags"],
                       partner_id=partner_id,
                       timezone=phones.timezone_for(clean["e164"], clean["country"]))
        report.created += 1
        return
    # A known person: add what the file says they agreed to; never undo an opt-out made since.
    for channel in clean["channels"]:
        state = existing.channel(channel)
        opted_out_later = state and state.opted_out_at and state.opted_out_at > consent_at
        if not opted_out_later and not (state and state.campaigns and state.polls):
            record_consent(existing, channel, granted=True, source=consent.source, actor=actor, at=consent_at)
    existing.tags = resolve_tags([t.name for t in existing.tags] + clean["tags"])
    existing.language = clean["language"]
    report.merged += 1
