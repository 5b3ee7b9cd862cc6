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


def bulk_contacts(count: int, *, country: str = "GT", language: str = "es", channel: str = "sms") -> list[str]:
    """``count`` active contacts with one clearly fake number each (+502 55 followed by six digits)
    and consent for campaigns on ``channel``, inserted in bulk; returns the numbers."""
    import sqlalchemy as sa

    from whp_c4d.audience.models import Contact, ContactChannel, PhoneNumber
    from whp_c4d.core.crypto import keys
    from whp_c4d.core.models import utcnow

    now, k = utcnow(), keys()
    first = (db.session.scalar(sa.select(sa.func.max(Contact.id))) or 0) + 1
    numbers = [f"+50255{i:06d}" for i in range(first, first + count)]
    ids = range(first, first + count)
    db.session.execute(sa.insert(Contact), [
        {"id": i, "pseudonym": f"T{i:09d}", "status": "active", "language": language, "country": country,
         "timezone": "America/Guatemala", "created_at": now} for i in ids])
    db.session.execute(sa.insert(PhoneNumber), [
        {"contact_id": i, "e164": n, "blind_index": k.blind_index(n), "country": country,
         "added_at": now} for i, n in zip(ids, numbers, strict=True)])
    db.session.execute(sa.insert(ContactChannel), [
        {"contact_id": i, "channel": channel, "campaigns": True, "polls": True} for i in ids])
    db.session.commit()
    if db.engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
        db.session.execute(sa.text("SELECT setval(pg_get_serial_sequence('contact', 'id'), :n)"),
                           {"n": first + count})
        db.session.commit()
    return numbers
