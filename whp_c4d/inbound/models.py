"""Tables of two-way conversations: what people send us, the keywords we understand, their answers to
polls, and the little state a conversation needs (an erasure waiting for its confirmation, a re-ask)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.crypto import EncryptedText
from ..core.models import UTCDateTime, utcnow
from ..extensions import db

#: What we did with an inbound message.
KINDS = ("keyword", "answer", "menu", "feedback", "ignored")
#: Keyword actions, in the order an administrator reads them, and their names on screen.
ACTIONS = ("opt_out", "opt_in", "help", "language", "erase", "real")
ACTION_LABELS = {"opt_out": _l("Stop (opt out)"), "opt_in": _l("Join (opt in)"), "help": _l("Help"),
                 "language": _l("Change language"), "erase": _l("Erase my data"), "real": _l("Is this real?")}


class InboundMessage(db.Model):
    """One message a person sent us (SMS or WhatsApp), stored once per Twilio ``MessageSid``.

    Only what the product needs: no profile name, no location. The text (and media links) are
    encrypted; ``text_hash`` is a keyed hash of the normalised text, for the loop guard. ``status`` is
    ``received`` until the message has been understood and answered (``processed``): a crash between
    the two leaves it ``received`` and the worker finishes it."""

    __tablename__ = "inbound_message"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    provider_sid: Mapped[str] = mapped_column(sa.String(34), unique=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    to_address: Mapped[str] = mapped_column(sa.String(64), default="")  # our number or sender
    body: Mapped[str] = mapped_column(EncryptedText, default="")
    text_hash: Mapped[str] = mapped_column(sa.String(64), default="")
    num_media: Mapped[int] = mapped_column(sa.Integer, default=0)
    media: Mapped[str | None] = mapped_column(EncryptedText)  # JSON list of {url, type}
    button_payload: Mapped[str | None] = mapped_column(sa.String(200))
    country: Mapped[str] = mapped_column(sa.String(2))
    language: Mapped[str | None] = mapped_column(sa.String(8))  # the language we answered in
    status: Mapped[str] = mapped_column(sa.String(12), default="received", index=True)
    kind: Mapped[str | None] = mapped_column(sa.String(12), index=True)
    action: Mapped[str | None] = mapped_column(sa.String(16))  # keyword action, or poll / menu
    flag: Mapped[str | None] = mapped_column(sa.String(30))  # for review, e.g. "possible_opt_out"
    campaign_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)  # the conversation's context
    step_id: Mapped[int | None] = mapped_column(sa.Integer)
    answered: Mapped[bool] = mapped_column(sa.Boolean, default=True)  # False: the loop guard kept quiet
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # opened in the inbox
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))

    contact = relationship("Contact")

    __table_args__ = (
        sa.CheckConstraint("channel in ('sms','whatsapp')", name="channel"),
        sa.Index("ix_inbound_message_contact_hash", "contact_id", "text_hash", "received_at"),
    )


class Keyword(db.Model):
    """A word or phrase (normalised: lower case, no accents, no punctuation) and what it does.
    Shipped defaults are marked ``built_in``; administrators add, switch off and remove words."""

    __tablename__ = "keyword"

    id: Mapped[int] = mapped_column(primary_key=True)
    word: Mapped[str] = mapped_column(sa.String(60), unique=True)
    action: Mapped[str] = mapped_column(sa.String(16))
    language: Mapped[str] = mapped_column(sa.String(8))  # the language the word tells us the person speaks
    value: Mapped[str | None] = mapped_column(sa.String(8))  # for "language": the language to switch to
    built_in: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("action in ('opt_out','opt_in','help','language','erase','real')", name="action"),
    )


class PollResponse(db.Model):
    """A person's answer to one poll question (one step occurrence): the choice, or free text kept as
    feedback when it could not be understood after one re-ask. A later valid answer replaces it."""

    __tablename__ = "poll_response"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    campaign_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    occurrence: Mapped[str] = mapped_column(sa.String(32))
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    choice: Mapped[int | None] = mapped_column(sa.Integer)  # None: not understood, kept as feedback
    inbound_message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("inbound_message.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(sa.String(8))
    country: Mapped[str] = mapped_column(sa.String(2))
    channel: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (sa.UniqueConstraint("step_id", "occurrence", "contact_id", name="poll_response_once"),)


class ConversationState(db.Model):
    """What a conversation remembers between two messages."""

    __tablename__ = "conversation_state"

    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    erasure_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reasked_message_id: Mapped[int | None] = mapped_column(sa.BigInteger)  # the poll/menu message re-asked
    last_ack_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
