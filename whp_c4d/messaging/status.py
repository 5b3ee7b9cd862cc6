"""Message status: what Twilio reports, mapped to our statuses and applied by rank, never backwards."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..core.models import utcnow
from .models import STATUS_RANK, TERMINAL, MessageEvent, OutboundMessage

# Twilio's statuses in ours: everything Twilio holds before handing over to the carrier is "queued".
TWILIO_TO_OURS = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
    "delivered": "delivered", "read": "read", "undelivered": "undelivered", "failed": "failed",
    "canceled": "cancelled", "received": "delivered",
}


def apply_status(session: Session, msg: OutboundMessage, twilio_status: str, error_code: int | None, *,
                 source: str, log_event: bool = True) -> bool:
    """Record the report (append-only) and move the message forward if the report is ahead of it.
    Returns whether the message changed. Late, repeated and backward reports are kept, not applied."""
    ours = TWILIO_TO_OURS.get((twilio_status or "").lower())
    applied = (ours is not None and msg.status not in TERMINAL
               and STATUS_RANK[ours] > STATUS_RANK.get(msg.status, 0))
    if log_event:
        session.add(MessageEvent(message_id=msg.id, provider_sid=msg.provider_sid,
                                 status=(twilio_status or "")[:16], error_code=error_code, source=source,
                                 applied=applied))
    if applied:
        msg.status, msg.updated_at = ours, utcnow()
        if ours in ("undelivered", "failed"):
            msg.error_code, msg.reason = error_code, "undelivered" if ours == "undelivered" else "failed_at_twilio"
    return applied
