"""The sweep: what the scheduler runs every few seconds for active campaigns. It enrols new audience
members, and fires every step occurrence that is due, exactly once (a unique ``step_occurrence`` row),
or records it as missed when it is found too late. Dated and recurring steps are expanded up to a day
ahead (each row waits in the outbox for its recipient's local hour); drip steps are re-swept so people
who join later get the sequence from their own day 0.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa

from ..core.database import dialect_insert
from ..core.models import utcnow
from ..extensions import db
from .expansion import expand_step, occurrence_key
from .models import Campaign, Step, StepOccurrence
from .planning import enrol_audience

log = logging.getLogger(__name__)

LOOKAHEAD = timedelta(hours=36)  # expand dated occurrences this early: every zone's local hour is covered
EARLIEST_ZONE, LATEST_ZONE = timedelta(hours=14), timedelta(hours=-12)  # UTC+14 … UTC-12


@dataclass
class SweepResult:
    campaigns: int = 0
    enrolled: int = 0
    expanded: dict[str, int] = field(default_factory=dict)  # "step:occurrence" -> rows added
    missed: list[str] = field(default_factory=list)


def _occurrence_window(day: date, local: time) -> tuple[datetime, datetime]:
    """The first and last UTC instants at which ``day`` at ``local`` happens somewhere on Earth."""
    naive = datetime.combine(day, local, tzinfo=UTC)
    return naive - EARLIEST_ZONE, naive - LATEST_ZONE


def due_dates(step: Step, campaign: Campaign, now: datetime) -> list[date]:
    """Dates of this step's occurrences that should be fired or judged now."""
    if step.timing_type == "at":
        return [step.at_date] if step.at_date else []
    if step.timing_type != "recurring":
        return []
    start = campaign.start_date or (campaign.activated_at or now).date()
    first = max(start, (now - timedelta(hours=campaign.max_delay_hours + 36)).date())
    last = (now + LOOKAHEAD + timedelta(days=1)).date()
    if campaign.end_date:
        last = min(last, campaign.end_date)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)
            if step.recurs_on(first + timedelta(days=i))]


def _record(step: Step, key: str, status: str, messages: int, now: datetime) -> bool:
    """Claim the occurrence; False when another sweep (another worker) already did."""
    table = StepOccurrence.__table__
    stmt = dialect_insert(table).values(step_id=step.id, occurrence=key, status=status, messages=messages, at=now)
    stmt = stmt.on_conflict_do_nothing(index_elements=["step_id", "occurrence"]).returning(table.c.id)
    return db.session.execute(stmt).first() is not None


def _fire(step: Step, day: date | None, now: datetime, result: SweepResult) -> None:
    campaign = step.campaign
    key = occurrence_key(step, day)
    done = db.session.scalar(sa.select(StepOccurrence.status).where(StepOccurrence.step_id == step.id,
                                                                   StepOccurrence.occurrence == key))
    first, last = _occurrence_window(day, step.local_time)
    if done == "expanded":
        if now <= last + timedelta(hours=campaign.max_delay_hours):  # people who joined since
            added = expand_step(step, day)
            if added:
                result.expanded[f"{step.id}:{key}"] = added
        return
    if done is not None:
        return
    if now < first - LOOKAHEAD:
        return  # not yet
    too_late = now > last + timedelta(hours=campaign.max_delay_hours)
    past_end = campaign.end_date is not None and day > campaign.end_date
    before_start = campaign.start_date is not None and day < campaign.start_date
    if too_late or past_end or before_start:
        if _record(step, key, "missed", 0, now):
            result.missed.append(f"{step.id}:{key}")
            log.warning("campaign %s step %s occurrence %s recorded as missed", campaign.id, step.id, key)
        return
    if not _record(step, key, "expanded", 0, now):
        return
    added = expand_step(step, day)
    db.session.execute(sa.update(StepOccurrence).where(StepOccurrence.step_id == step.id,
                                                       StepOccurrence.occurrence == key).values(messages=added))
    result.expanded[f"{step.id}:{key}"] = added


def sweep(now: datetime | None = None) -> SweepResult:
    """One pass over the active campaigns. Each campaign commits on its own, so one campaign's failure
    does not hold the others back."""
    now = now or utcnow()
    result = SweepResult()
    ids = db.session.scalars(sa.select(Campaign.id).where(Campaign.status == "active")).all()
    for campaign_id in ids:
        try:
            campaign = db.session.get(Campaign, campaign_id)
            if campaign is None or campaign.status != "active":
                continue
            result.campaigns += 1
            result.enrolled += enrol_audience(campaign, now)
            for step in campaign.steps:
                if step.timing_type == "drip":
                    _record(step, "drip", "expanded", 0, now)
                    added = expand_step(step)
                    if added:
                        result.expanded[f"{step.id}:drip"] = added
                else:
                    for day in due_dates(step, campaign, now):
                        _fire(step, day, now, result)
            db.session.commit()
        except Exception:  # noqa: BLE001 - one broken campaign must not stop the others
            db.session.rollback()
            log.exception("sweep of campaign %s failed", campaign_id)
    return result
