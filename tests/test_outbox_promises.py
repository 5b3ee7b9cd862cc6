"""Promises to people, held at the outbox's one gate (issue 12): an opt-out stops everything queued for
the person but its confirmation, nothing moves a status backwards, answers go before broadcasts, lost
reports are recovered, and what the checks say is what the dispatcher does. Each test names the case
of the issue it comes from."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_outbox import _campaign, _due_now

from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.messaging import outbox
from whp_c4d.messaging.models import MessageEvent, OutboundMessage

# --- 4. nothing moves backwards --------------------------------------------------------------------------

def _sending_row(author, contacts) -> OutboundMessage:
    _due_now(_campaign(author))
    row = db.session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)).first()
    row.status, row.attempts, row.claimed_by = "sending", 1, "test"
    row.lease_until = utcnow() + timedelta(seconds=60)
    db.session.commit()
    return row


def test_a_timed_out_send_never_moves_a_delivered_message_back(app, audience):
    """Case 4: Twilio withheld the reply to the create while the callbacks already said delivered; the
    timeout that follows leaves the row delivered, and the events say which report applied."""
    author, contacts = audience
    row = _sending_row(author, contacts)
    sid = "SM" + "d" * 32
    assert outbox.record_callback(db.session, row.id, "sent", None, sid) == "recorded"
    assert outbox.record_callback(db.session, row.id, "delivered", None, sid) == "recorded"
    db.session.commit()
    assert outbox.record_failure(db.session, row.id, "uncertain", None, attempts_left=True) == "overtaken"
    assert outbox.record_failure(db.session, row.id, "retry", 20429, attempts_left=True) == "overtaken"
    assert outbox.record_failure(db.session, row.id, "fatal", 21408, attempts_left=True) == "overtaken"
    db.session.expire_all()
    assert db.session.get(OutboundMessage, row.id).status == "delivered"
    events = db.session.scalars(sa.select(MessageEvent).where(MessageEvent.message_id == row.id)
                                .order_by(MessageEvent.id)).all()
    assert [(e.source, e.status, e.applied) for e in events] == [
        ("callback", "sent", True), ("callback", "delivered", True), ("send", "uncertain", False),
        ("send", "pending", False), ("send", "failed", False)]


def test_a_lookup_event_says_it_applied_when_it_did(app, audience):
    """Case 4: a lookup that moves an uncertain row forward is logged as applied."""
    author, contacts = audience
    row = _sending_row(author, contacts)
    outbox.record_failure(db.session, row.id, "uncertain", None, attempts_left=True)
    row = db.session.get(OutboundMessage, row.id)
    assert row.status == "uncertain"
    assert outbox.record_report(db.session, row, "sent", None, source="lookup", provider_sid="SM" + "e" * 32)
    assert not outbox.record_report(db.session, row, "queued", None, source="lookup")
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(OutboundMessage, row.id)
    assert (row.status, row.provider_sid) == ("sent", "SM" + "e" * 32) and row.sent_at is not None
    lookups = db.session.scalars(sa.select(MessageEvent).where(MessageEvent.source == "lookup")
                                 .order_by(MessageEvent.id)).all()
    assert [(e.status, e.applied) for e in lookups] == [("sent", True), ("queued", False)]


@pytest.mark.parametrize("source,to", [("retry", "pending"), ("timeout", "uncertain"), ("crash", "uncertain"),
                                       ("refused", "failed"), ("check", "skipped"), ("resend", "pending"),
                                       ("hold", "held"), ("cancel", "cancelled")])
def test_no_engine_move_starts_from_a_status_twilio_reported(source, to):
    """The engine's own moves start only from the one status they are about, never from a status that
    means Twilio has the message."""
    assert not set(outbox.allowed_from(to, source)) & set(outbox.AT_TWILIO)
    assert not set(outbox.allowed_from(to, source)) & set(outbox.TERMINAL)
