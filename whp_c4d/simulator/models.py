"""The simulator's messages. Numbers and text are encrypted like the contacts' own, and a blind index
of each number lets erasure and retention find a person's simulated messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Mapped, mapped_column

from ..audience.models import PhoneNumber
from ..core import retention
from ..core.crypto import EncryptedText
from ..core.models import UTCDateTime, utcnow
from ..core.signals import contact_erasing
from ..extensions import db


class SimulatorMessage(db.Model):
    """One message the simulator accepted (``outbound-api``) or one a simulated phone sent in
    (``inbound``). Status, error code and ``sent_at`` move as its planned events fall due
    (``SimulatorEvent``); ``status_callback`` is where it reports them. ``webhook_status`` is the HTTP
    status the app answered to an inbound message's webhook (None: not reached)."""

    __tablename__ = "simulator_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str] = mapped_column(sa.String(34), unique=True)
    account_sid: Mapped[str] = mapped_column(sa.String(34))
    direction: Mapped[str] = mapped_column(sa.String(16), default="outbound-api")
    channel: Mapped[str] = mapped_column(sa.String(16))
    to_address: Mapped[str] = mapped_column(EncryptedText)
    to_index: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # blind index of the E.164 number
    from_address: Mapped[str | None] = mapped_column(EncryptedText)
    from_index: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    messaging_service_sid: Mapped[str | None] = mapped_column(sa.String(34))
    body: Mapped[str | None] = mapped_column(EncryptedText)
    media_urls: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    content_sid: Mapped[str | None] = mapped_column(sa.String(34))
    content_variables: Mapped[str | None] = mapped_column(EncryptedText)  # may hold a name or a date
    status_callback: Mapped[str | None] = mapped_column(sa.Text)
    validity_period: Mapped[int | None] = mapped_column(sa.Integer)
    num_segments: Mapped[int] = mapped_column(sa.Integer, default=1)
    status: Mapped[str] = mapped_column(sa.String(20), index=True)
    error_code: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    webhook_status: Mapped[int | None] = mapped_column(sa.Integer)

    __table_args__ = (
        sa.CheckConstraint("direction in ('outbound-api','inbound')", name="direction"),
        sa.CheckConstraint("channel in ('sms','whatsapp')", name="channel"),
    )


class SimulatorEvent(db.Model):
    """One planned step of a message's life (``sent``, ``delivered``, ``read``, ``undelivered``…), due at
    ``due_at``. When it falls due its status is applied to the message (``applied``, never backwards) and,
    if the message has a ``StatusCallback``, posted there: ``state`` goes ``pending`` -> ``done``, or
    ``given_up`` after the last failed attempt. A ``duplicate`` re-sends a callback and changes nothing.
    No personal data: ids, statuses, codes and times."""

    __tablename__ = "simulator_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("simulator_message.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20))
    error_code: Mapped[int | None] = mapped_column(sa.Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    applied: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    duplicate: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_http_status: Mapped[int | None] = mapped_column(sa.Integer)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.CheckConstraint("state in ('pending','done','given_up')", name="state"),
        sa.Index("ix_simulator_event_state_due_at", "state", "due_at"),
    )


class SimulatorSettings(db.Model):
    """The simulator's fault injection as changed at runtime (one row, id 1): what differs from the
    environment's defaults, so every process (web, worker, ``c4d simulator``) agrees."""

    __tablename__ = "simulator_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    values: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


@contact_erasing.connect
def _erase_simulated_messages(_sender: Any, *, contact_id: int, **_kw: Any) -> None:
    """A person erased is erased from the simulator too: every message to or from any of their numbers."""
    indexes = list(db.session.scalars(sa.select(PhoneNumber.blind_index).where(PhoneNumber.contact_id == contact_id)))
    if indexes:
        db.session.execute(
            sa.delete(SimulatorMessage)
            .where(sa.or_(SimulatorMessage.to_index.in_(indexes), SimulatorMessage.from_index.in_(indexes)))
            .execution_options(synchronize_session=False)
        )


def _purge_simulated_messages(cutoff: datetime) -> int:
    result = db.session.execute(sa.delete(SimulatorMessage).where(SimulatorMessage.created_at < cutoff)
                                .execution_options(synchronize_session=False))
    return result.rowcount or 0


retention.register(retention.DataKind(
    "simulator_messages", lambda: _l("Messages in the Twilio simulator"), 30, _purge_simulated_messages, 1))
