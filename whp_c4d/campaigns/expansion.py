"""Expanding a step occurrence into the outbox: one row per recipient, in bulk, at most once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite

from ..core.models import utcnow
from ..extensions import db
from ..messaging.models import OutboundMessage
from .models import Step
from .planning import plan_step, purpose_of

BATCH = 1000


def occurrence_key(step: Step, occurrence: date | None) -> str:
    """What makes an occurrence unique: its date for dated and recurring steps; drip steps happen once
    per contact."""
    if step.timing_type == "drip":
        return "drip"
    if step.timing_type == "at":
        return step.at_date.isoformat()
    if occurrence is None:
        raise ValueError("a recurring step needs the occurrence date")
    return occurrence.isoformat()


def _insert(rows: list[dict]) -> int:
    dialect = db.engine.dialect.name
    table = OutboundMessage.__table__
    stmt = (postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)).on_conflict_do_nothing(
        index_elements=["step_id", "contact_id", "occurrence"])
    # RETURNING counts what was really inserted (rowcount is unreliable for batched inserts).
    return len(db.session.execute(stmt.returning(table.c.id), rows).all())


def expand_step(step: Step, occurrence: date | None = None, *, contact_ids: list[int] | None = None) -> int:
    """Put one outbound message per planned recipient into the outbox; a second expansion of the same
    occurrence adds nothing (unique step, contact, occurrence). Returns how many rows were added.
    The caller commits (one transaction per expansion)."""
    key = occurrence_key(step, occurrence)
    purpose = purpose_of(step)
    campaign_id = step.campaign_id
    now = utcnow()
    added = 0
    batch: list[dict] = []
    campaign = step.campaign
    delay = timedelta(hours=campaign.max_delay_hours or 24)
    for p in plan_step(step, occurrence, contact_ids=contact_ids, missing_only=key):
        expires = p.earliest_utc + delay
        if campaign.end_date:  # nothing goes out after the campaign's last day, in the person's own zone
            end = datetime.combine(campaign.end_date + timedelta(days=1), time(0), tzinfo=ZoneInfo(p.timezone))
            expires = min(expires, end.astimezone(UTC))
        batch.append({
            "contact_id": p.contact_id, "campaign_id": campaign_id, "step_id": step.id, "occurrence": key,
            "language": p.language, "channel": p.channel, "purpose": purpose, "country": p.country,
            "body": p.body, "template_sid": p.template_sid, "template_variables": p.template_variables,
            "media_url": p.media_url, "sms_fallback_body": p.sms_fallback_body, "segments": p.segments,
            "earliest_at": p.earliest_utc, "expires_at": expires, "timezone": p.timezone,
            "quiet_start": campaign.quiet_start, "quiet_end": campaign.quiet_end, "status": "pending", "attempts": 0, "created_at": now,
            "updated_at": now,
        })
        if len(batch) >= BATCH:
            added += _insert(batch)
            batch = []
    if batch:
        added += _insert(batch)
    return added
