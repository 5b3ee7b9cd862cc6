"""Tables of the messaging engine: the senders (numbers and Messaging Services) messages go out from."""

from __future__ import annotations

from datetime import datetime

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
