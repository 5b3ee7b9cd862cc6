"""Plain helpers for tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import date

from whp_c4d.extensions import db

TEST_PASSWORD = "correct horse battery staple"


def csv_bytes(rows: list[dict], header=("phone", "country", "language", "channels", "tags",
                                        "consent_source", "consent_date"), delimiter=",") -> bytes:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(header), delimiter=delimiter, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow(r)
    return out.getvalue().encode()


def good_row(i: int, **over) -> dict:
    row = {"phone": f"+502555{100 + i:05d}", "country": "GT", "language": "es", "channels": "sms;whatsapp",
           "tags": "feria", "consent_source": "form", "consent_date": date(2026, 1, 15).isoformat()}
    row.update(over)
    return row


def all_database_text() -> str:
    """Every value of every row of every table, as text: what a dump of the database would show."""
    parts = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.exec_driver_sql(f'SELECT * FROM "{table.name}"'):  # raw: no type decoding
                parts.append(" ".join(str(v) for v in row))
    return "\n".join(parts)
