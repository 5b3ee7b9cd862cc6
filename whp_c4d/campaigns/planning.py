"""Who gets a step, in which language and channel, with what text, at what local hour.

The messaging engine consumes ``plan_step``; the cost estimate and the approval checks use the same
audience, language and quiet-hour rules, so what the officer is shown is what will be sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import selectinload

from ..audience import segments as segment_rules
from ..audience.models import Contact, ContactChannel
from ..core.localtime import out_of_quiet_hours
from ..core.models import utcnow
from ..extensions import db
from ..messaging import sendability
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


def planned_route(campaign: Campaign, content: StepContent, purpose: str,
                  channels: tuple[str, ...]) -> tuple[str, bool, sendability.Route | str]:
    """For someone reachable on ``channels`` (consented, among the campaign's, WhatsApp first): the
    channel their row is planned on, whether it carries the SMS fallback, and what the dispatcher will
    decide when the WhatsApp window is closed (it cannot be known ahead), by the one sendability
    decision. The planner, the checks before approval and the estimate all ask this."""
    channel = channels[0]
    fallback = channel == "whatsapp" and bool(campaign.sms_fallback) and "sms" in channels and bool(content.sms_text)
    message = sendability.Message(
        purpose=purpose, channel=channel,
        has_text=bool(content.whatsapp_body if channel == "whatsapp" else content.sms_text),
        has_template=channel == "whatsapp" and bool(content.template_sid), has_fallback=fallback)
    route = sendability.decide(message, active=True, has_number=True, now=None,
                               channels={name: sendability.ChannelState(consented=True) for name in channels})
    return channel, fallback, route


@dataclass(frozen=True)
class GroupRoute:
    """What a step does for one group of the audience (a row of ``reachable_query``)."""

    group: tuple                  # (country, language, zone, wa, sms): the row without its count
    count: int
    language: str                 # the content's language, after the fallback chain
    content: StepContent
    route: sendability.Route | str  # "no_consent" when the group consented to none of the channels


def group_routes(campaign: Campaign, step: Step, groups: list) -> Iterator[GroupRoute]:
    """For each group of the audience that has content for ``step`` (in a language of its chain): what
    the dispatcher will do, by ``planned_route``. The estimate and the checks walk the audience with it."""
    purpose = purpose_of(step)
    for row in groups:
        country, language, _zone, wa, sms, count = row
        found = content_for(step, language)
        if found is None:
            continue
        reach = tuple(name for name, ok in (("whatsapp", wa), ("sms", sms)) if ok)
        route = planned_route(campaign, found[1], purpose, reach)[2] if reach else "no_consent"
        yield GroupRoute(tuple(row[:5]), count, found[0], found[1], route)


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

@dataclass(frozen=True, eq=False)
class PlannedGroup:
    """What every recipient with the same country, language, zone, reachable channels and local day
    gets for one occurrence: a PlannedMessage without its contact. Compared by identity (one object per
    such combination in a plan), so it can key a cache."""

    country: str
    timezone: str
    language: str
    channel: str
    body: str
    segments: int
    template_sid: str | None
    template_variables: dict[str, str]  # shared by the group: ``message`` hands each recipient a copy
    media_url: str | None
    sms_fallback_body: str | None
    local_send_at: datetime
    earliest_utc: datetime

    def message(self, contact_id: int) -> PlannedMessage:
        return PlannedMessage(
            contact_id=contact_id, country=self.country, timezone=self.timezone, language=self.language,
            channel=self.channel, body=self.body, segments=self.segments, template_sid=self.template_sid,
            template_variables=dict(self.template_variables), media_url=self.media_url,
            sms_fallback_body=self.sms_fallback_body, local_send_at=self.local_send_at,
            earliest_utc=self.earliest_utc)


def plan_step(step: Step, occurrence: date | None = None, *, contact_ids: list[int] | None = None,
              batch: int = 1000, missing_only: str | None = None) -> Iterator[PlannedMessage]:
    """Yield what each recipient gets for one occurrence of a step, in contact id order.

    ``occurrence``: ignored for a step at a date (it has its own); the local date of this occurrence
    for a recurring step; ignored for a drip step, whose day is each contact's enrolment day + N
    (contacts not enrolled are skipped). Contacts with no consented channel or no content in any
    language of their chain are skipped. ``missing_only``: an occurrence key; people who already have
    a row for it in the outbox are skipped.
    """
    for chunk in plan_recipients(step, occurrence, contact_ids=contact_ids, chunk=batch, missing_only=missing_only):
        for contact_id, group in chunk:
            yield group.message(contact_id)


def plan_recipients(step: Step, occurrence: date | None = None, *, contact_ids: list[int] | None = None,
                    chunk: int = 1000, missing_only: str | None = None) -> Iterator[list[tuple[int, PlannedGroup]]]:
    """``plan_step`` for large audiences: lists of at most ``chunk`` (contact id, plan) pairs in contact id
    order, where recipients who get the same message share one PlannedGroup.

    The recipients' ids are read once (one query without LIMIT or ORDER BY, so the database can
    hash-join the audience and the enrolments and subtract the outbox as sets), then each chunk's few
    columns and consented channels are read by id: no ORM objects, no query that starts over for every
    batch.
    """
    campaign = step.campaign
    if step.timing_type == "recurring" and occurrence is None:
        raise ValueError("a recurring step needs the occurrence date")
    drip = step.timing_type == "drip"
    enrolled_on = sa.and_(CampaignEnrolment.contact_id == Contact.id, CampaignEnrolment.campaign_id == campaign.id)
    q = audience_query(campaign).with_only_columns(Contact.id).order_by(None)
    if drip:
        q = q.join(CampaignEnrolment, enrolled_on)
    if contact_ids is not None:
        q = q.where(Contact.id.in_(contact_ids))
    if missing_only is not None:  # a re-sweep plans only people this occurrence has not reached yet
        from ..messaging.models import OutboundMessage

        # EXCEPT, not NOT EXISTS: a set operation (hash or sort) whatever the statistics say. With none,
        # or stale ones after a bulk insert, PostgreSQL estimated one audience row and ran the anti-join
        # as a nested loop that scanned all of the step's rows in the outbox for every contact.
        q = q.except_(sa.select(OutboundMessage.contact_id).where(OutboundMessage.step_id == step.id,
                                                                  OutboundMessage.occurrence == missing_only))
    # Through the session's connection: plain rows, no ORM machinery for a hundred thousand tuples.
    ids = sorted(db.session.connection().execute(q).scalars().all())
    if not ids:
        return
    purpose = purpose_of(step)
    wanted = [name for name in ("whatsapp", "sms") if name in campaign.channels]  # WhatsApp first
    contacts = _among(sa.select(Contact.id, Contact.country, Contact.language, Contact.timezone), Contact.id)
    consented = _among(sa.select(ContactChannel.contact_id, ContactChannel.channel).where(
        ContactChannel.opted_out_at.is_(None), getattr(ContactChannel, purpose).is_(True)), ContactChannel.contact_id)
    # Enrolments on their own: joined to the contacts above, the planner may hash all of them each time.
    enrolments = _among(sa.select(CampaignEnrolment.contact_id, CampaignEnrolment.enrolled_at).where(
        CampaignEnrolment.campaign_id == campaign.id), CampaignEnrolment.contact_id)
    planner = _Planner(step, campaign, occurrence)
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        chosen = _among_params(part)
        conn = db.session.connection()  # the session's, even if the caller committed since the last chunk
        rows = {r[0]: r for r in conn.execute(contacts, chosen).all()}
        reach: dict[int, list[str]] = {}
        for contact_id, channel in conn.execute(consented, chosen).all():
            if channel in wanted:
                reach.setdefault(contact_id, []).append(channel)
        enrolled = dict(conn.execute(enrolments, chosen).all()) if drip else {}
        planned = []
        for contact_id in part:
            row, channels = rows.get(contact_id), reach.get(contact_id)
            if row is None or not channels or (drip and contact_id not in enrolled):
                continue
            group = planner.group(row, tuple(sorted(channels, key=wanted.index)), enrolled.get(contact_id))
            if group is not None:
                planned.append((contact_id, group))
        if planned:
            yield planned


def _among(query: sa.Select, column: sa.ColumnElement[int]) -> sa.Select:
    """``query`` restricted to ``column IN (a chunk of ids)``, the chunk given by ``_among_params``.

    The ids travel as one text parameter, so every chunk runs the same statement, compiled and
    prepared once, where ``IN (...)`` renders, sends and parses a thousand placeholders each time.
    SQLite: ``IN (SELECT value FROM json_each(:ids))``, one index probe per id. PostgreSQL: a join
    with ``unnest(string_to_array(:ids, ',')::int[])``, the function evaluated once per execution, and
    the chunk's range spelt out, so that whatever the statistics (none, stale, fresh) and whether
    the plan is custom or generic (psycopg prepares a statement run five times), each chunk reads at
    most its range or its ids through an index, or hashes them against one scan (a sparse chunk).
    ``= ANY(...)`` was not: the planner may scan the whole table for each chunk, or leave the array in a
    filter that parses the parameter again for every row."""
    ids = sa.bindparam("chosen_ids", type_=sa.Text)
    if db.engine.dialect.name == "postgresql":
        chosen = sa.func.unnest(sa.cast(sa.func.string_to_array(ids, ","), postgresql.ARRAY(sa.Integer))).table_valued(
            "id").render_derived(name="chosen")
        return query.join(chosen, chosen.c.id == column).where(
            column.between(sa.bindparam("chosen_low"), sa.bindparam("chosen_high")))
    return query.where(column.in_(sa.select(sa.func.json_each(ids).table_valued("value").c.value)))


def _among_params(ids: list[int]) -> dict:
    """The parameters of ``_among`` for a sorted chunk of ids."""
    if db.engine.dialect.name == "postgresql":
        return {"chosen_ids": ",".join(map(str, ids)), "chosen_low": ids[0], "chosen_high": ids[-1]}
    return {"chosen_ids": json.dumps(ids)}


class _Planner:
    """The rules of one step occurrence, computed once per distinct (country, language, zone, channels,
    day) and remembered: rows of a group differ only by their contact."""

    def __init__(self, step: Step, campaign: Campaign, occurrence: date | None):
        self.step, self.campaign, self.occurrence = step, campaign, occurrence
        self.timing = step.timing_type
        self.day = step.at_date if self.timing == "at" else occurrence  # a drip step: per contact
        self.drip_days = timedelta(days=step.drip_day or 0)
        self.groups: dict[tuple, PlannedGroup | None] = {}
        self.days: dict[tuple, date] = {}
        self.contents: dict[str, tuple[str, StepContent] | None] = {}
        self.values: dict[str, dict[str, str]] = {}
        self.rendered: dict[tuple, tuple] = {}

    def group(self, row, channels: tuple[str, ...], enrolled_at: datetime | None) -> PlannedGroup | None:
        """The plan of a contact (``row``: id, country, language, timezone) who can be reached on
        ``channels`` (in order of preference); None when no language of their chain has content."""
        country, language, zone = row[1], row[2], row[3]
        day = self.day
        if self.timing == "drip":  # the local date of their enrolment, plus N days
            day = self.days.get((enrolled_at, zone))
            if day is None:
                day = self.days[(enrolled_at, zone)] = enrolled_at.astimezone(ZoneInfo(zone)).date() + self.drip_days
        key = (country, language, zone, channels, day)
        try:
            return self.groups[key]
        except KeyError:
            group = self.groups[key] = self._plan(country, language, zone, channels, day)
            return group

    def _plan(self, country: str, language: str, zone: str, channels: tuple[str, ...],
              day: date) -> PlannedGroup | None:
        step, campaign = self.step, self.campaign
        if language not in self.contents:
            self.contents[language] = content_for(step, language)
        found = self.contents[language]
        if not channels or found is None:
            return None
        language, content = found
        values = self.values.get(country)
        if values is None:
            values = self.values[country] = variable_values(country)
        local = out_of_quiet_hours(step_local_time(step, day, zone), campaign.quiet_start, campaign.quiet_end)
        channel, fallback_ok, _route = planned_route(campaign, content, purpose_of(step), channels)
        key = (country, language, channel, fallback_ok)
        rendered = self.rendered.get(key)
        if rendered is None:  # the same text for everybody in a country, language and channel
            rendered = self.rendered[key] = _render_for(content, channel, values, fallback_ok)
        body, segs, template_variables, media_url, sms_fallback = rendered
        return PlannedGroup(
            country=country, timezone=zone, language=language, channel=channel, body=body, segments=segs,
            template_sid=content.template_sid if channel == "whatsapp" else None,
            template_variables=template_variables, media_url=media_url, sms_fallback_body=sms_fallback,
            local_send_at=local, earliest_utc=local.astimezone(UTC))


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
