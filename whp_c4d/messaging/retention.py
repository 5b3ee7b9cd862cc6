"""Retention of the outbox: the text of sent messages, and the log of what Twilio reported.

Both purges are single bulk statements (the outbox can hold millions of rows). The rows themselves
stay: reports count them by status, channel, country, language and segments long after the text is
gone. Erasure is separate: a person's rows go with them (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from ..core import retention
from ..extensions import db
from .models import STATUS_RANK, MessageEvent, OutboundMessage

# Statuses in which the text is no longer needed: Twilio has the message (accepted … read, or a later
# failure), or it will never go (skipped, cancelled, missed). Not "delivered" alone, nor only the
# terminal ones: an SMS stays "delivered" for ever. Never pending, held, claimed, sending or uncertain:
# they still need their text to be sent, or to be matched at Twilio when reconciled.
DONE_WITH_TEXT = frozenset(s for s, rank in STATUS_RANK.items() if rank >= STATUS_RANK["accepted"])


def _has_text():
    m = OutboundMessage
    return sa.or_(m.body != "", m.sms_fallback_body.is_not(None), m.media_url.is_not(None),
                  sa.cast(m.template_variables, sa.Text).not_in(("{}", "null")))


def purge_message_bodies(cutoff: datetime) -> int:
    """Blank the text of messages done with it whose last change is older than ``cutoff``. Rows already
    blank are left alone, so each daily run only touches one day's worth. Returns the rows blanked."""
    m = OutboundMessage
    result = db.session.execute(
        sa.update(m).where(m.status.in_(DONE_WITH_TEXT), m.updated_at < cutoff, _has_text())
        .values(body="", sms_fallback_body=None, template_variables={}, media_url=None)
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def purge_message_events(cutoff: datetime) -> int:
    """Delete status reports received before ``cutoff``; the message keeps its current status."""
    result = db.session.execute(sa.delete(MessageEvent).where(MessageEvent.received_at < cutoff)
                                .execution_options(synchronize_session=False))
    return result.rowcount or 0


retention.register(retention.DataKind(
    "message_bodies", lambda: _l("Text of sent messages (the messages stay counted in reports)"), 90,
    purge_message_bodies, 7))
retention.register(retention.DataKind(
    "message_events", lambda: _l("Delivery reports from Twilio (each message keeps its last status)"), 180,
    purge_message_events, 7))
