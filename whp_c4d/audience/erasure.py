"""Erasure on request and the retention of contacts: remove a person everywhere, keep a keyed hash."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from ..auth.models import AuditEvent, User
from ..auth.services import audit
from ..core import retention
from ..core.crypto import keys
from ..core.signals import contact_erasing
from ..extensions import db
from .models import Contact, SuppressionEntry


def erase_contact(contact: Contact, actor: User | None, *, reason: str = "request") -> None:
    """Delete the contact and everything about them. Later domains delete their rows on the
    ``contact_erasing`` signal, in this same transaction. Only a keyed hash of each number stays, on
    the suppression list, so an imported list cannot bring the person back."""
    contact_id = contact.id
    for number in contact.numbers:
        h = keys().suppression_hash(number.e164)
        if not db.session.scalar(sa.select(SuppressionEntry.id).where(SuppressionEntry.number_hash == h)):
            db.session.add(SuppressionEntry(number_hash=h))
    contact_erasing.send(contact_id=contact_id)
    # The audit trail keeps that something happened, not to whom: the one sanctioned rewrite of the
    # append-only log, done as a bulk statement (the ORM guard refuses row updates).
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.target_type == "contact", AuditEvent.target_id == contact_id)
        .values(target_id=None, details={"redacted": "erased"})
        .execution_options(synchronize_session=False)
    )
    db.session.delete(contact)
    db.session.flush()
    audit("contact.erased", actor, target_type="contact", reason=reason)


def _purge_inactive_contacts(cutoff: datetime) -> int:
    stale = db.session.scalars(
        sa.select(Contact).where(sa.func.coalesce(Contact.last_activity_at, Contact.created_at) < cutoff)
    ).all()
    for contact in stale:
        erase_contact(contact, None, reason="retention")
    return len(stale)


retention.register(retention.DataKind(
    "inactive_contacts", lambda: _l("Contacts with no activity"), 730, _purge_inactive_contacts, 30))
