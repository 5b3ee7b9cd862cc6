"""Expanding a step occurrence into the outbox: one row per recipient, in bulk, at most once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..messaging import outbox
from .models import Step
from .planning import PlannedGroup, plan_recipients, purpose_of

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


def expand_step(step: Step, occurrence: date | None = None, *, contact_ids: list[int] | None = None) -> int:
    """Put one outbound message per planned recipient into the outbox; a second expansion of the same
    occurrence adds nothing (unique step, contact, occurrence). Returns how many rows were added.
    The caller commits (one transaction per expansion)."""
    key = occurrence_key(step, occurrence)
    purpose = purpose_of(step)
    campaign = step.campaign
    delay = timedelta(hours=campaign.max_delay_hours or 24)
    templates: dict[PlannedGroup, dict] = {}  # rows of a group differ only by their contact

    def template(p: PlannedGroup) -> dict:
        expires = p.earliest_utc + delay
        if campaign.end_date:  # nothing goes out after the campaign's last day, in the person's own zone
            end = datetime.combine(campaign.end_date + timedelta(days=1), time(0), tzinfo=ZoneInfo(p.timezone))
            expires = min(expires, end.astimezone(UTC))
        return {
            "campaign_id": step.campaign_id, "step_id": step.id, "occurrence": key,
            "language": p.language, "channel": p.channel, "purpose": purpose, "country": p.country,
            "body": p.body, "template_sid": p.template_sid, "template_variables": p.template_variables,
            "media_url": p.media_url, "sms_fallback_body": p.sms_fallback_body, "segments": p.segments,
            "earliest_at": p.earliest_utc, "expires_at": expires, "timezone": p.timezone,
            "quiet_start": campaign.quiet_start, "quiet_end": campaign.quiet_end,
        }

    added = 0
    for chunk in plan_recipients(step, occurrence, contact_ids=contact_ids, chunk=BATCH, missing_only=key):
        rows = []
        for contact_id, group in chunk:
            columns = templates.get(group)
            if columns is None:
                columns = templates[group] = template(group)
            rows.append((contact_id, columns))
        added += outbox.insert_planned(rows)
    return added
