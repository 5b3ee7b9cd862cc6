"""Tables for the people we message. Numbers are ciphertext plus a keyed blind index; never plain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.crypto import EncryptedText
from ..core.models import UTCDateTime, utcnow
from ..extensions import db

CHANNELS = ("sms", "whatsapp")
PURPOSES = ("campaigns", "polls")
CONSENT_SOURCES = ("keyword", "partner_registration", "form", "import", "officer")

contact_tag = sa.Table(
    "contact_tag",
    db.metadata,
    sa.Column("contact_id", sa.ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag_id", sa.ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class ContentLanguage(db.Model):
    """Languages campaign content may be written in; admins enable more without code changes."""

    __tablename__ = "content_language"

    code: Mapped[str] = mapped_column(sa.String(8), primary_key=True)  # ISO 639-1 or -3
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class Tag(db.Model):
    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60), unique=True)


class Contact(db.Model):
    __tablename__ = "contact"

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(sa.String(12), unique=True)
    # active: may receive what they consented to; inbound_only: wrote to us, has not opted in.
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    language: Mapped[str] = mapped_column(sa.String(8), index=True)
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    registered_by_partner_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("partner_organisation.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    numbers: Mapped[list[PhoneNumber]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="PhoneNumber.id"
    )
    channels: Mapped[list[ContactChannel]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactChannel.channel"
    )
    tags: Mapped[list[Tag]] = relationship(secondary=contact_tag, order_by="Tag.name")

    __table_args__ = (sa.CheckConstraint("status in ('active','inbound_only')", name="status"),)

    @property
    def current_number(self) -> PhoneNumber | None:
        live = [n for n in self.numbers if n.retired_at is None]
        return live[-1] if live else None

    @property
    def channel_names(self) -> list[str]:
        return [c.channel for c in self.channels]

    def channel(self, name: str) -> ContactChannel | None:
        return next((c for c in self.channels if c.channel == name), None)


class PhoneNumber(db.Model):
    """A number a contact uses. People move: older numbers are retired, never reused silently."""

    __tablename__ = "phone_number"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    e164: Mapped[str] = mapped_column(EncryptedText)
    blind_index: Mapped[str] = mapped_column(sa.String(64), unique=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship(back_populates="numbers")


class ContactChannel(db.Model):
    """Current consent per channel and purpose, derived from the ledger by the consent service."""

    __tablename__ = "contact_channel"

    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    campaigns: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    polls: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The person's last message to us on this channel: on WhatsApp, free text may be sent for 24 hours.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship(back_populates="channels")

    __table_args__ = (sa.CheckConstraint("channel in ('sms','whatsapp')", name="channel"),)


class ConsentEvent(db.Model):
    """The consent ledger: append-only; grants and opt-outs alike."""

    __tablename__ = "consent_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    purpose: Mapped[str] = mapped_column(sa.String(16))
    granted: Mapped[bool] = mapped_column(sa.Boolean)
    source: Mapped[str] = mapped_column(sa.String(30))
    notice_version: Mapped[str | None] = mapped_column(sa.String(40))
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    recorded_by = relationship("User")


class Segment(db.Model):
    """A saved audience filter; its members are computed when asked, never stored."""

    __tablename__ = "segment"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), unique=True)
    filters: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SuppressionEntry(db.Model):
    """Keyed hash of an erased number, so a later import cannot bring the person back."""

    __tablename__ = "suppression_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    number_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PartnerRegistration(db.Model):
    """A partner's receipt for registering a person: what they were told, kept apart from the contact.

    Partners see their registrations, never the contacts behind them, and a registration is answered
    the same way whether the number was new, already known to the programme or erased at the person's
    request: none of those is ever told (no membership oracle). No number is kept here."""

    __tablename__ = "partner_registration"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(12), unique=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partner_organisation.id", ondelete="CASCADE"),
                                            index=True)
    # The contact registered or recognised; none when the number had been erased (or once it is).
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contact.id", ondelete="SET NULL"), index=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    country: Mapped[str] = mapped_column(sa.String(2))
    language: Mapped[str] = mapped_column(sa.String(8))
    channels: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
