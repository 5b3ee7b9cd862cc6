"""Erasure removes a person everywhere and keeps only a keyed hash; retention purges by data kind."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from helpers import all_database_text, csv_bytes, good_row

from whp_c4d.audience import services
from whp_c4d.audience.erasure import erase_contact
from whp_c4d.audience.importer import import_contacts
from whp_c4d.audience.models import Contact, SuppressionEntry
from whp_c4d.auth.models import AuditEvent
from whp_c4d.core import retention
from whp_c4d.extensions import db

NUMBER = "+50255500105"


def _rows_pointing_at_contact(contact_id: int) -> list[str]:
    """Every column that refers to a contact (foreign keys to contact.id, and audit targets)."""
    found = []
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for column in table.columns:
                refers = any(fk.column.table.name == "contact" for fk in column.foreign_keys)
                if table.name == "contact" and column.name == "id":
                    refers = True
                if refers and conn.execute(sa.select(sa.func.count()).where(column == contact_id)).scalar():
                    found.append(f"{table.name}.{column.name}")
            if table.name == "audit_event":
                n = conn.execute(sa.select(sa.func.count()).select_from(table).where(
                    table.c.target_type == "contact", table.c.target_id == contact_id)).scalar()
                if n:
                    found.append("audit_event.target_id")
    return found


def test_erasing_a_contact_leaves_no_row_with_their_id_or_number(app, make_user, login):
    officer = make_user("officer")
    import_contacts(csv_bytes([good_row(5, tags="taller"), good_row(6)]), officer)
    db.session.commit()
    contact = services.find_by_number(NUMBER)
    contact_id, other = contact.id, services.find_by_number("+50255500106")
    client = app.test_client()
    login(client, officer)
    client.post(f"/contacts/{contact_id}/reveal")       # leaves an audit event about them
    services.record_consent(contact, "sms", granted=False, source="keyword", actor=officer)
    db.session.commit()
    assert _rows_pointing_at_contact(contact_id)        # the check finds something before…
    r = client.post(f"/contacts/{contact_id}/erase", data={"confirm": contact.pseudonym})
    assert r.status_code == 302
    db.session.expire_all()
    assert _rows_pointing_at_contact(contact_id) == []  # …and nothing after
    dump = all_database_text()
    assert NUMBER not in dump and "55500105" not in dump and contact.pseudonym not in dump
    assert db.session.get(Contact, other.id) is not None  # nobody else was touched
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SuppressionEntry)) == 1
    erased = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "contact.erased"))
    assert erased.actor_id == officer.id and erased.target_id is None


def test_an_erased_person_cannot_come_back_through_an_import(app, make_user, make_contact):
    contact = make_contact(phone=NUMBER)
    erase_contact(contact, None)
    db.session.commit()
    report = import_contacts(csv_bytes([good_row(5)]), make_user("officer"))
    assert report.created == 0 and report.rejected_rows == [2]
    assert "erased" in report.rejected[0].message


def test_erasure_needs_the_pseudonym_typed_to_confirm(app, make_user, make_contact, login):
    contact = make_contact()
    client = app.test_client()
    login(client, make_user("officer"))
    client.post(f"/contacts/{contact.id}/erase", data={"confirm": "C-WRONG1"})
    assert db.session.get(Contact, contact.id) is not None


def test_purge_erases_inactive_contacts_and_old_audit_events(app, make_contact):
    old, fresh = make_contact(), make_contact()
    old.created_at = old.created_at - timedelta(days=800)
    db.session.commit()
    result = retention.purge()
    db.session.commit()
    assert result["inactive_contacts"] == 1
    assert db.session.get(Contact, old.id) is None and db.session.get(Contact, fresh.id) is not None


def test_admin_edits_retention_periods_and_short_periods_are_refused(app, make_user, login):
    client = app.test_client()
    login(client, make_user("admin"))
    assert client.get("/admin/privacy").status_code == 200
    form = {f"days-{k.kind}": str(k.default_days) for k in retention.kinds()}
    form.update({f"enabled-{k.kind}": "on" for k in retention.kinds()})
    form["days-inactive_contacts"] = "365"
    assert client.post("/admin/privacy", data=form).status_code == 302
    assert db.session.get(retention.RetentionPolicy, "inactive_contacts").days == 365
    form["days-audit_log"] = "3"
    r = client.post("/admin/privacy", data=form, headers={"Accept-Language": "en"})
    assert "at least 90 days" in r.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(retention.RetentionPolicy, "audit_log").days == 730


def test_cli_purge_and_erase(app, runner, make_contact):
    contact = make_contact()
    r = runner.invoke(args=["privacy", "erase", contact.pseudonym])
    assert r.exit_code == 0, r.output
    assert db.session.get(Contact, contact.id) is None
    r = runner.invoke(args=["privacy", "purge"])
    assert r.exit_code == 0 and "inactive_contacts: 0 removed" in r.output


def test_an_erased_person_leaves_nothing_in_the_raw_sqlite_file(app, make_contact):
    """Issue 13, finding 7: SQLite keeps deleted pages as they were, and an erased person's blind index
    was still in the database file. With secure_delete the deleted content is overwritten."""
    import pathlib

    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps dead rows until VACUUM: the README's privacy section says so")
    contact = make_contact(phone=NUMBER)
    marker = contact.numbers[0].blind_index.encode()
    erase_contact(contact, None)
    db.session.commit()
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    path = pathlib.Path(db.engine.url.database)
    raw = path.read_bytes() + (path.with_name(path.name + "-wal").read_bytes()
                               if path.with_name(path.name + "-wal").exists() else b"")
    assert marker not in raw


def test_every_sqlite_connection_overwrites_deleted_content_whatever_the_build(tmp_path):
    """The raw-file test above passes on a SQLite built with SECURE_DELETE on (Debian's); elsewhere the
    default is off. The app turns it on for every connection itself."""
    import sqlite3

    from whp_c4d.core.database import _sqlite_pragmas

    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("PRAGMA secure_delete=0")
    _sqlite_pragmas(conn, None)
    assert conn.execute("PRAGMA secure_delete").fetchone()[0] == 1
    conn.close()
