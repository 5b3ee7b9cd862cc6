"""Message status: what Twilio reports, mapped to our statuses and applied by rank, never backwards."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..core.models import utcnow
from .models import STATUS_RANK, TERMINAL, MessageEvent, OutboundMessage

# Twilio's statuses in ours: everything Twilio holds before handing over to the carrier is "queued".
TWILIO_TO_OURS = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
    "delivered": "delivered", "read": "read", "undelivered": "undelivered", "failed": "failed",
    "canceled": "cancelled", "received": "delivered",
}


def next_status(current: str, twilio_status: str | None) -> str | None:
    """Our status after this report, or None when the report does not move the message forward (late,
    repeated, backward, unknown, or the message is already terminal)."""
    ours = TWILIO_TO_OURS.get((twilio_status or "").lower())
    if ours is None or current in TERMINAL or STATUS_RANK[ours] <= STATUS_RANK.get(current, 0):
        return None
    return ours


def apply_status(session: Session, msg: OutboundMessage, twilio_status: str, error_code: int | None, *,
                 source: str, log_event: bool = True) -> bool:
    """Record the report (append-only) and move the message forward if the report is ahead of it.
    Returns whether the message changed. Late, repeated and backward reports are kept, not applied.

    The move is one conditional UPDATE (only from a status ranked below the new one): two reports of
    one message arriving at once (sent and delivered, in two web processes) cannot undo each other, as
    a read-then-write would let them."""
    ours = next_status(msg.status, twilio_status)
    applied = False
    if ours is not None:
        values = {"status": ours, "updated_at": utcnow()}
        if ours in ("undelivered", "failed"):
            values.update(error_code=error_code, reason="undelivered" if ours == "undelivered" else "failed_at_twilio")
        below = [s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[ours] and s not in TERMINAL]
        m = OutboundMessage
        result = session.execute(sa.update(m).where(m.id == msg.id, m.status.in_(below)).values(**values)
                                 .execution_options(synchronize_session=False))
        applied = result.rowcount == 1
        if applied:
            for key, value in values.items():
                set_committed_value(msg, key, value)
    if log_event:
        session.add(MessageEvent(message_id=msg.id, provider_sid=msg.provider_sid,
                                 status=(twilio_status or "")[:16], error_code=error_code, source=source,
                                 applied=applied))
    return applied
