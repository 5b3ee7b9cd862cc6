"""Who gets a step, in which language and channel, with what text, at what local hour.

The messaging engine consumes ``plan_step``; the cost estimate and the approval checks use the same
audience, language and quiet-hour rules, so what the officer is shown is what will be sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from ..audience import segments as segment_rules
from ..audience.models import Contact, ContactChannel
from ..core.localtime import out_of_quiet_hours
from ..core.models import utcnow
from ..extensions import db
from ..messaging.segments import segments as count_segments
from .models import Campaign, CampaignEnrolment, ContentVariable, Step, StepContent
from .schemas import VARIABLE_RE


@dataclass(frozen=True)
class PlannedMessage:
    """One recipient's message for one step occurrence. Carries ids and content, never a number."""

    contact_id: int
    country: str
    timezone: str
    language: str
    channel: str                      # "sms" or "whatsapp"
    body: str                         # rendered text for the channel (WhatsApp free text inside the window)
    segments: int                     # SMS segments of the body (1 for WhatsApp)
    template_sid: str | None          # WhatsApp template for business-initiated sends
    template_variables: dict[str, str]
    media_url: str | None
    sms_fallback_body: str | None     # WhatsApp only: SMS text if the window is closed and no template
    local_send_at: datetime           # aware, in the recipient's zone, moved out of quiet hours
    earliest_utc: datetime


# --- variables ---------------------------------------------------------------------------------

def variable_values(country: str) -> dict[str, str]:
    rows = db.session.scalars(sa.select(ContentVariable).options(selectinload(ContentVariable.values))).all()
    return {v.name: (v.value_for(country) or "") for v in rows}


def render(text: str | None, values: dict[str, str]) -> str:
    """Replace ``{name}`` with the country's value; anything else in braces stays as written."""
    if not text:
        return ""
    return VARIABLE_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


# --- language, channel, time --------------------------------------------------------------------

def content_for(step: Step, language: str) -> tuple[str, StepContent] | None:
    """The content a contact speaking ``language`` gets: their language, its fallbacks, the base."""
    for code in step.campaign.language_chain(language):
        c = step.content(code)
        if c is not None and (c.sms_text or c.whatsapp_text):
            return code, c
    return None


def step_local_time(step: Step, day: date, contact_tz: str) -> datetime:
    """When the step is due for a contact, in the contact's zone, before quiet hours are applied."""
    zone = ZoneInfo(step.timezone) if step.timezone else ZoneInfo(contact_tz)
    when = datetime.combine(day, step.local_time, tzinfo=zone)
    return when.astimezone(ZoneInfo(contact_tz))


def purpose_of(step: Step) -> str:
    return "polls" if step.kind == "poll" else "campaigns"


def reachable_channels(contact: Contact, campaign: Campaign, purpose: str) -> list[str]:
    out = []
    for name in ("whatsapp", "sms"):  # WhatsApp first: cheaper per message and it can show media
        ch = contact.channel(name)
        if name in campaign.channels and ch is not None and ch.opted_out_at is None and getattr(ch, purpose):
            out.append(name)
    return out


# --- audience ------------------------------------------------------------------------------------

def audience_query(campaign: Campaign) -> sa.Select:
    """The campaign's recipients: its segment's members in its countries, active (not inbound-only).
    Not scoped to any user: the campaign reaches everybody its segment describes."""
    q = sa.select(Contact).where(Contact.status == "active", Contact.country.in_(campaign.countries or ["--"]))
    if campaign.segment is None:
        return q.where(sa.false())
    return segment_rules.filtered(q, campaign.segment.filters or {})


def audience_count(campaign: Campaign) -> int:
    q = audience_query(campaign).with_only_columns(sa.func.count(Contact.id)).order_by(None)
    return db.session.scalar(q) or 0


def enrol_audience(campaign: Campaign, now: datetime | None = None) -> int:
    """Enrol audience members not enrolled yet; their day 0 is now. Returns how many joined."""
    now = now or utcnow()
    ids = db.session.scalars(audience_query(campaign).with_only_columns(Contact.id).where(
        ~sa.exists().where(CampaignEnrolment.campaign_id == campaign.id,
                           CampaignEnrolment.contact_id == Contact.id))).all()
    if ids:
        db.session.execute(sa.insert(CampaignEnrolment), [
            {"campaign_id": campaign.id, "contact_id": cid, "enrolled_at": now} for cid in ids])
    return len(ids)


# --- the plan --------------------------------------------------------------------------------------

def plan_step(step: Step, occurrence: date | None = None, *, contact_ids: list[int] | None = None,
              batch: int = 1000, missing_only: str | None = None) -> Iterator[PlannedMessage]:
    """Yield what each recipient gets for one occurrence of a step.

    ``occurrence``: ignored for a step at a date (it has its own); the local date of this occurrence
    for a recurring step; ignored for a drip step, whose day is each contact's enrolment day + N
    (contacts not enrolled are skipped). Contacts with no consented channel or no content in any
    language of their chain are skipped.
    """
    campaign = step.campaign
    if step.timing_type == "recurring" and occurrence is None:
        raise ValueError("a recurring step needs the occurrence date")
    q = audience_query(campaign).options(selectinload(Contact.channels)).order_by(Contact.id)
    enrolled: dict[int, datetime] = {}
    if step.timing_type == "drip":
        q = q.add_columns(CampaignEnrolment.enrolled_at).join(CampaignEnrolment, sa.and_(
            CampaignEnrolment.contact_id == Contact.id, CampaignEnrolment.campaign_id == campaign.id))
    if contact_ids is not None:
        q = q.where(Contact.id.in_(contact_ids))
    if missing_only is not None:  # a re-sweep plans only people this occurrence has not reached yet
        from ..messaging.models import OutboundMessage

        q = q.where(~sa.exists().where(OutboundMessage.step_id == step.id, OutboundMessage.contact_id == Contact.id,
                                       OutboundMessage.occurrence == missing_only))
    values_by_country: dict[str, dict[str, str]] = {}
    purpose = purpose_of(step)
    last_id = 0
    while True:
        rows = db.session.execute(q.where(Contact.id > last_id).limit(batch)).all()
        if not rows:
            return
        for row in rows:
            contact = row[0]
            last_id = contact.id
            if step.timing_type == "drip":
                enrolled[contact.id] = row[1]
            planned = _plan_one(step, campaign, contact, occurrence, enrolled.get(contact.id), purpose,
                                values_by_country)
            if planned is not None:
                yield planned


def _plan_one(step: Step, campaign: Campaign, contact: Contact, occurrence: date | None,
              enrolled_at: datetime | None, purpose: str, values_cache: dict) -> PlannedMessage | None:
    channels = reachable_channels(contact, campaign, purpose)
    found = content_for(step, contact.language)
    if not channels or found is None:
        return None
    language, content = found
    values = values_cache.get(contact.country)
    if values is None:
        values = values_cache[contact.country] = variable_values(contact.country)
    if step.timing_type == "at":
        day = step.at_date
    elif step.timing_type == "recurring":
        day = occurrence
    else:
        day = enrolled_at.astimezone(ZoneInfo(contact.timezone)).date() + timedelta(days=step.drip_day or 0)
    local = out_of_quiet_hours(step_local_time(step, day, contact.timezone), campaign.quiet_start,
                               campaign.quiet_end)
    channel = channels[0]
    fallback_ok = channel == "whatsapp" and campaign.sms_fallback and "sms" in channels
    key = ("rendered", contact.country, language, channel, fallback_ok)
    rendered = values_cache.get(key)
    if rendered is None:  # the same text for everybody in a country, language and channel
        rendered = values_cache[key] = _render_for(content, channel, values, fallback_ok)
    body, segs, template_variables, media_url, sms_fallback = rendered
    return PlannedMessage(
        contact_id=contact.id, country=contact.country, timezone=contact.timezone, language=language, channel=channel, body=body,
        segments=segs,
        template_sid=content.template_sid if channel == "whatsapp" else None,
        template_variables=dict(template_variables), media_url=media_url,
        sms_fallback_body=sms_fallback, local_send_at=local, earliest_utc=local.astimezone(UTC))


def _render_for(content: StepContent, channel: str, values: dict[str, str], fallback_ok: bool) -> tuple:
    if channel == "whatsapp":
        sms_fallback = render(content.sms_text, values) if fallback_ok and content.sms_text else None
        variables = {k: render(v, values) for k, v in (content.template_variables or {}).items()}
        return render(content.whatsapp_body, values), 1, variables, content.media_url, sms_fallback
    body = render(content.sms_text, values)
    return body, count_segments(body), {}, None, None


def reachable_query(campaign: Campaign, purpose: str = "campaigns") -> sa.Select:
    """(country, language, timezone, whatsapp?, sms?, count) over the audience, for estimates."""
    def has(name: str):
        return sa.exists().where(
            ContactChannel.contact_id == Contact.id, ContactChannel.channel == name,
            ContactChannel.opted_out_at.is_(None), getattr(ContactChannel, purpose).is_(True))

    wa = sa.case((has("whatsapp"), 1), else_=0).label("wa") if "whatsapp" in campaign.channels else sa.literal(0)
    sms = sa.case((has("sms"), 1), else_=0).label("sms") if "sms" in campaign.channels else sa.literal(0)
    sub = audience_query(campaign).with_only_columns(
        Contact.country.label("country"), Contact.language.label("language"), Contact.timezone.label("tz"),
        wa.label("wa"), sms.label("sms")).order_by(None).subquery()
    return sa.select(sub.c.country, sub.c.language, sub.c.tz, sub.c.wa, sub.c.sms, sa.func.count()).group_by(
        sub.c.country, sub.c.language, sub.c.tz, sub.c.wa, sub.c.sms)
