"""Tables of the messaging engine: the senders (numbers and Messaging Services) messages go out from."""

from __future__ import annotations

from datetime import datetime, time

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..core.models import UTCDateTime, utcnow
from ..extensions import db

CHANNELS = ("sms", "whatsapp")

# Messages (SMS: segments) per second when the administrator gives none: a typical long code outside
# North America, and a WhatsApp sender (see shared/guides/twilio.md, "Throughput").
DEFAULT_CAP_PER_SECOND = {"sms": 10, "whatsapp": 80}


class Sender(db.Model):
    """Where messages go out from: a number (``From``) or a Twilio Messaging Service, never both.

    ``countries`` lists the ISO 3166 alpha-2 codes of the recipients this sender is for; empty means
    any. The default sender of a channel serves countries no other sender claims (at most one per
    channel, enforced by a partial unique index)."""

    __tablename__ = "sender"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    from_address: Mapped[str | None] = mapped_column(sa.String(40))  # +E164, or whatsapp:+E164
    messaging_service_sid: Mapped[str | None] = mapped_column(sa.String(34))  # MG + 32 hex
    countries: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    cap_per_second: Mapped[int] = mapped_column(sa.Integer)
    is_default: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("channel in ('sms','whatsapp')", name="channel"),
        sa.CheckConstraint("(from_address is null) <> (messaging_service_sid is null)", name="one_address"),
        sa.CheckConstraint("cap_per_second > 0", name="cap_positive"),
        sa.Index("uq_sender_default_per_channel", "channel", unique=True,
                 sqlite_where=sa.text("is_default"), postgresql_where=sa.text("is_default")),
    )

    @property
    def address(self) -> str:
        """What the sender is known by on screen: its number or its Messaging Service SID."""
        return self.from_address or self.messaging_service_sid or ""


# --- the outbox --------------------------------------------------------------------------------

# Status rank: callbacks are applied only when they move a message forward (architecture guide,
# "Sending: the outbox"). Terminal statuses never change again.
STATUS_RANK = {
    "pending": 0, "held": 0, "claimed": 1, "sending": 2, "uncertain": 3, "accepted": 4, "queued": 4, "sent": 5,
    "delivered": 6, "read": 7,
    "undelivered": 8, "failed": 8, "skipped": 8, "cancelled": 8, "missed": 8,
}
TERMINAL = frozenset({"read", "undelivered", "failed", "skipped", "cancelled", "missed"})
OUTBOX_STATUSES = tuple(STATUS_RANK)


class OutboundMessage(db.Model):
    """One message to one person for one step occurrence: created by expansion, sent by a dispatcher.

    Step and campaign are plain ids (no foreign key): the sending history outlives a draft's edits.
    The contact is a foreign key with cascade, so erasing a person removes their messages."""

    __tablename__ = "outbound_message"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    step_id: Mapped[int | None] = mapped_column(sa.Integer)
    occurrence: Mapped[str] = mapped_column(sa.String(32))  # "2027-03-02" for dated steps, "drip", "test"
    language: Mapped[str] = mapped_column(sa.String(8))
    channel: Mapped[str] = mapped_column(sa.String(16))  # the planned channel; may fall back to SMS at send
    purpose: Mapped[str] = mapped_column(sa.String(16), default="campaigns")  # the consent it relies on
    # The lane: 0 for answers to a person (replies, confirmations), claimed before 1, broadcasts.
    priority: Mapped[int] = mapped_column(sa.SmallInteger, default=1, server_default="1")
    country: Mapped[str] = mapped_column(sa.String(2))
    body: Mapped[str] = mapped_column(sa.Text, default="")  # campaign content with variables filled in
    template_sid: Mapped[str | None] = mapped_column(sa.String(34))
    template_variables: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    media_url: Mapped[str | None] = mapped_column(sa.String(500))
    sms_fallback_body: Mapped[str | None] = mapped_column(sa.Text)
    segments: Mapped[int] = mapped_column(sa.Integer, default=1)
    earliest_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Checked again at claim time, so a message delayed by downtime never lands at night or stale.
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    quiet_start: Mapped[time | None] = mapped_column(sa.Time)
    quiet_end: Mapped[time | None] = mapped_column(sa.Time)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # pending: not before; uncertain: lookup
    # Accepted by Twilio without a final report yet: when to ask Twilio for its status (lost callbacks).
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    sender_id: Mapped[int | None] = mapped_column(sa.ForeignKey("sender.id", ondelete="SET NULL"))
    sent_channel: Mapped[str | None] = mapped_column(sa.String(16))
    provider_sid: Mapped[str | None] = mapped_column(sa.String(34), unique=True)
    error_code: Mapped[int | None] = mapped_column(sa.Integer)
    reason: Mapped[str | None] = mapped_column(sa.String(60))  # why skipped / failed, in our words
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("step_id", "contact_id", "occurrence", name="outbound_once_per_occurrence"),
        sa.Index("ix_outbound_due", "status", "priority", "earliest_at"),
        # Reports: a campaign's latest change (is its rollup current?) and the people who replied STOP to a
        # sender (Twilio's 21610), both without reading the campaign's rows.
        sa.Index("ix_outbound_campaign_updated", "campaign_id", "updated_at"),
        sa.Index("ix_outbound_opted_out_at_twilio", "campaign_id", sqlite_where=sa.text("error_code = 21610"),
                 postgresql_where=sa.text("error_code = 21610")),
        # The status poll: only rows still waiting for a final report are in it.
        sa.Index("ix_outbound_check", "next_check_at", sqlite_where=sa.text("status IN ('queued', 'sent')"),
                 postgresql_where=sa.text("status IN ('queued', 'sent')")),
        sa.CheckConstraint("channel in ('sms','whatsapp')", name="channel"),
    )


class MessageEvent(db.Model):
    """Append-only log of what Twilio told us about a message (status callbacks, lookups)."""

    __tablename__ = "message_event"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    message_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("outbound_message.id", ondelete="CASCADE"),
        index=True)
    provider_sid: Mapped[str | None] = mapped_column(sa.String(34))
    status: Mapped[str] = mapped_column(sa.String(16))
    error_code: Mapped[int | None] = mapped_column(sa.Integer)
    source: Mapped[str] = mapped_column(sa.String(16))  # callback | send | lookup
    applied: Mapped[bool] = mapped_column(sa.Boolean, default=False)  # False: late or repeated, kept only
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SenderBudget(db.Model):
    """The units (SMS segments, WhatsApp messages) a sender has spent in the current one-second
    window, shared by every dispatcher so the cap holds across workers."""

    __tablename__ = "sender_budget"

    sender_key: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # sender id, or "default:sms"
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[int] = mapped_column(sa.Integer, default=0)


class DispatcherLock(db.Model):
    """On SQLite, the one running dispatcher's claim (PostgreSQL uses row locks and needs none)."""

    __tablename__ = "dispatcher_lock"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(64))
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
