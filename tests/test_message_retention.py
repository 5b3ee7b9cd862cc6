"""Retention of the outbox: old text of sent messages is blanked (the rows stay for reports), old status
reports are deleted, messages still to be sent keep their text; the daily purge job runs both."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from whp_c4d.auth.models import AuditEvent
from whp_c4d.core import retention
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.messaging.models import STATUS_RANK, MessageEvent, OutboundMessage
from whp_c4d.messaging.retention import DONE_WITH_TEXT


@pytest.fixture
def outbox(app, make_contact):
    """Make one outbound message to a new contact, last changed ``days`` ago."""
    step = iter(range(1, 1000))

    def make(status, *, days, channel="sms", **over):
        contact = make_contact(channels=("sms", "whatsapp"))
        at = utcnow() - timedelta(days=days)
        values = dict(
            contact_id=contact.id, campaign_id=7, step_id=next(step), occurrence="drip", language="es",
            channel=channel, country="GT", body="Hola, este es el texto del mensaje.", segments=2,
            earliest_at=at, status=status, created_at=at, updated_at=at,
            sent_at=at if STATUS_RANK[status] >= STATUS_RANK["accepted"] else None,
            provider_sid=None)
        if channel == "whatsapp":
            values.update(body="", template_sid="HX" + "0" * 31 + "1", template_variables={"1": "Guatemala"},
                          media_url="https://example.org/afiche.png", sms_fallback_body="Texto por SMS")
        values.update(over)
        row = OutboundMessage(**values)
        db.session.add(row)
        db.session.commit()
        return row

    return make


def _text(row_id):
    db.session.expire_all()
    row = db.session.get(OutboundMessage, row_id)
    return row.body, row.sms_fallback_body, row.template_variables, row.media_url


def test_message_kinds_are_registered_with_their_defaults(app):
    kinds = {k.kind: k for k in retention.kinds()}
    assert kinds["message_bodies"].default_days == 90 and kinds["message_events"].default_days == 180
    assert "pending" not in DONE_WITH_TEXT and "uncertain" not in DONE_WITH_TEXT
    assert {"delivered", "read", "failed", "skipped", "cancelled"} <= DONE_WITH_TEXT


def test_old_text_of_sent_messages_is_blanked_and_the_rows_stay(app, outbox):
    old_sms = outbox("delivered", days=100)
    old_whatsapp = outbox("read", days=100, channel="whatsapp")
    old_failed = outbox("failed", days=95, error_code=30003, reason="undelivered")
    recent = outbox("delivered", days=30)
    removed = retention.purge()
    db.session.commit()
    assert removed["message_bodies"] == 3
    for row in (old_sms, old_whatsapp, old_failed):
        assert _text(row.id) == ("", None, {}, None)
    assert _text(recent.id)[0] == "Hola, este es el texto del mensaje."
    # What reports count stays as it was.
    db.session.expire_all()
    kept = db.session.get(OutboundMessage, old_whatsapp.id)
    assert (kept.status, kept.channel, kept.country, kept.language, kept.segments, kept.template_sid) == (
        "read", "whatsapp", "GT", "es", 2, "HX" + "0" * 31 + "1")
    assert db.session.get(OutboundMessage, old_failed.id).error_code == 30003
    # Blank rows are not rewritten by the next day's run.
    assert retention.purge()["message_bodies"] == 0


@pytest.mark.parametrize("status", ["pending", "held", "claimed", "sending", "uncertain"])
def test_messages_still_to_be_sent_keep_their_text_however_old(app, outbox, status):
    row = outbox(status, days=400, channel="whatsapp")
    assert retention.purge()["message_bodies"] == 0
    db.session.commit()
    assert _text(row.id) == ("", "Texto por SMS", {"1": "Guatemala"}, "https://example.org/afiche.png")


def test_old_status_reports_are_deleted_and_the_message_keeps_its_status(app, outbox):
    msg = outbox("read", days=10, channel="whatsapp")
    now = utcnow()
    for status, days in (("sent", 200), ("delivered", 200), ("read", 30)):
        db.session.add(MessageEvent(message_id=msg.id, status=status, source="callback", applied=True,
                                    received_at=now - timedelta(days=days)))
    db.session.commit()
    assert retention.purge()["message_events"] == 2
    db.session.commit()
    assert db.session.scalars(sa.select(MessageEvent.status)).all() == ["read"]
    assert db.session.get(OutboundMessage, msg.id).status == "read"


def test_periods_are_the_administrators(app, outbox):
    row = outbox("delivered", days=40)
    retention.set_policy("message_bodies", 30, True)
    with pytest.raises(ValueError):
        retention.set_policy("message_events", 1, True)  # below the minimum
    assert retention.purge()["message_bodies"] == 1
    retention.set_policy("message_bodies", 30, False)
    assert "message_bodies" not in retention.purge()
    db.session.commit()
    assert _text(row.id)[0] == ""


def test_the_daily_purge_job_blanks_bodies_and_deletes_events(app, outbox):
    from whp_c4d.scheduler import jobs

    old = outbox("delivered", days=120)
    db.session.add(MessageEvent(message_id=old.id, status="delivered", source="callback", applied=True,
                                received_at=utcnow() - timedelta(days=365)))
    db.session.commit()
    jobs.purge(app)
    assert _text(old.id) == ("", None, {}, None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MessageEvent)) == 0
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.purged")).one()
    assert event.details["removed"]["message_bodies"] == 1 and event.details["removed"]["message_events"] == 1


def test_the_privacy_page_lists_the_message_kinds(app, make_user, login):
    client = app.test_client()
    login(client, make_user("admin"))
    page = client.get("/admin/privacy", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert 'name="days-message_bodies"' in page and 'value="90"' in page
    assert "Text of sent messages" in page and "Delivery reports from Twilio" in page
