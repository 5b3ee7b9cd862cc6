"""What the engagement reports count, read live: the outbox grouped at the reports' finest grain, and the
people who replied or opted out. ``rollup`` stores the first per campaign; ``queries`` rolls both up.

Definitions (the pages show them as a legend):
- targeted: outbox rows of campaign steps (one per person per step occurrence; replies are not counted);
- sent: rows Twilio accepted (a provider SID, or queued/sent/delivered/read/undelivered);
- delivered: delivered or read; read: read (WhatsApp only reports it);
- replied: distinct people who wrote in the campaign's context, except opt-out keywords;
- opted out: distinct people who sent an opt-out keyword in that context, or whose message failed with
  Twilio's error 21610 (they had replied STOP to that sender);
- failed: failed, undelivered, skipped or missed rows, by our reason or Twilio's error code.
Days and weeks are UTC: the day a row was created (its step fired) or a reply was received; a week is
named by its Monday."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from ..extensions import db
from ..inbound.models import InboundMessage
from ..messaging.models import OutboundMessage
from .filters import ReportFilters

SENT_STATUSES = ("accepted", "queued", "sent", "delivered", "read", "undelivered")
DELIVERED_STATUSES = ("delivered", "read")
FAILED_STATUSES = ("failed", "undelivered", "skipped", "missed")
TWILIO_OPTED_OUT = 21610
#: Breakdowns people are counted by (distinct per value).
PEOPLE_DIMENSIONS = ("campaign", "step", "country", "language", "channel", "week")


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def day_of(column) -> sa.ColumnElement:
    if _postgres():
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    return sa.func.date(column)


def week_of(column) -> sa.ColumnElement:
    """The Monday (UTC) of the column's week; ``day_key`` makes it a 'YYYY-MM-DD' text on both databases."""
    if _postgres():
        return sa.cast(sa.func.date_trunc("week", sa.func.timezone("UTC", column)), sa.Date)
    return sa.func.date(column, "weekday 0", "-6 days")


def month_of(column) -> sa.ColumnElement:
    if _postgres():
        return sa.cast(sa.func.date_trunc("month", sa.func.timezone("UTC", column)), sa.Date)
    return sa.func.strftime("%Y-%m-01", column)


def day_key(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)[:10]


def monday(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


# --- the outbox at the finest grain ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OutRow:
    """Messages sharing every key the reports break down or filter by."""

    campaign: int | None
    day: str
    step: int | None
    country: str
    language: str
    channel: str  # the channel it went out on, else the planned one
    status: str
    sent: bool
    reply: bool  # an answer to a person (acknowledgement, inbox reply): costs, but is not in the funnel
    reason: str | None  # for failed rows: our reason
    code: int | None  # for failed rows: Twilio's error code
    n: int
    units: int  # SMS segments, or one per WhatsApp message

    @property
    def week(self) -> str:
        return monday(self.day)

    def as_list(self) -> list:
        return [self.day, self.step, self.country, self.language, self.channel, self.status, int(self.sent),
                int(self.reply), self.reason, self.code, self.n, self.units]

    @classmethod
    def from_list(cls, campaign: int | None, v: list) -> OutRow:
        return cls(campaign, v[0], v[1], v[2], v[3], v[4], v[5], bool(v[6]), bool(v[7]), v[8], v[9], v[10], v[11])


def outbound_rows(*where) -> list[OutRow]:
    """One GROUP BY over the outbox rows matching ``where``: a few thousand groups for a million rows."""
    m = OutboundMessage
    failed = m.status.in_(FAILED_STATUSES)
    channel = sa.func.coalesce(m.sent_channel, m.channel)
    group = [m.campaign_id, day_of(m.created_at), m.step_id, m.country, m.language, channel, m.status,
             sa.or_(m.provider_sid.is_not(None), m.status.in_(SENT_STATUSES)), m.purpose == "reply",
             sa.case((failed, m.reason)), sa.case((failed, m.error_code))]
    units = sa.func.sum(sa.case((channel == "sms", m.segments), else_=1))
    rows = db.session.execute(sa.select(*group, sa.func.count(), units).where(*where).group_by(*group)).all()
    return [OutRow(r[0], day_key(r[1]), r[2], r[3], r[4], r[5], r[6], bool(r[7]), bool(r[8]), r[9], r[10], r[11],
                   int(r[12] or 0)) for r in rows]


def keeps(f: ReportFilters, row: OutRow) -> bool:
    """Whether a grouped row passes the filters (those a rollup can answer: all but the campaign)."""
    if f.step_id and row.step != f.step_id:
        return False
    if f.country and row.country != f.country:
        return False
    if f.scope is not None and row.country not in f.scope:
        return False
    if f.language and row.language != f.language:
        return False
    if f.channel and row.channel != f.channel:
        return False
    if f.date_from and row.day < f.date_from.isoformat():
        return False
    return not (f.date_to and row.day > f.date_to.isoformat())


def outbound_filters(f: ReportFilters) -> list:
    m = OutboundMessage
    where = []
    if f.campaign_id:
        where.append(m.campaign_id == f.campaign_id)
    if f.step_id:
        where.append(m.step_id == f.step_id)
    if f.language:
        where.append(m.language == f.language)
    if f.channel:
        where.append(sa.func.coalesce(m.sent_channel, m.channel) == f.channel)
    return where + f.country_allowed(m.country) + f.between(m.created_at)


# --- people --------------------------------------------------------------------------------------------

@dataclass
class People:
    """Distinct people who replied and who opted out, overall and per value of each breakdown."""

    replied: int = 0
    opted_out: int = 0
    by: dict[str, dict] = None  # dimension -> {key: [replied, opted_out]}

    def as_json(self) -> dict:
        return {"replied": self.replied, "opted_out": self.opted_out,
                "by": {d: [[k, v[0], v[1]] for k, v in values.items()] for d, values in self.by.items()}}

    @classmethod
    def from_json(cls, data: dict) -> People:
        return cls(data["replied"], data["opted_out"],
                   {d: {k: [r, o] for k, r, o in rows} for d, rows in data["by"].items()})


def _inbound_filters(f: ReportFilters) -> list:
    i = InboundMessage
    where = [i.campaign_id.is_not(None)]
    if f.campaign_id:
        where.append(i.campaign_id == f.campaign_id)
    if f.step_id:
        where.append(i.step_id == f.step_id)
    if f.language:
        where.append(i.language == f.language)
    if f.channel:
        where.append(i.channel == f.channel)
    return where + f.country_allowed(i.country) + f.between(i.received_at)


def _inbound_dimension(dim: str):
    i = InboundMessage
    return {"campaign": i.campaign_id, "step": i.step_id, "country": i.country, "language": i.language,
            "channel": i.channel, "week": week_of(i.received_at)}[dim]


def _outbound_dimension(dim: str):
    m = OutboundMessage
    return {"campaign": m.campaign_id, "step": m.step_id, "country": m.country, "language": m.language,
            "channel": sa.func.coalesce(m.sent_channel, m.channel), "week": week_of(m.created_at)}[dim]


def _key(dim: str, value):
    return day_key(value) if dim == "week" else value


def people(f: ReportFilters, dims: Sequence[str]) -> People:
    """Replied: one COUNT(DISTINCT) per breakdown over the inbound messages in campaign contexts. Opted
    out: the (few) opt-out keywords and 21610 failures, read with their keys and counted in Python, since
    a person may be in both."""
    i, m = InboundMessage, OutboundMessage
    where = _inbound_filters(f)
    replied = sa.and_(*where, sa.not_(sa.and_(sa.func.coalesce(i.kind, "") == "keyword",
                                              sa.func.coalesce(i.action, "") == "opt_out")))
    result = People(by={d: defaultdict(lambda: [0, 0]) for d in dims})
    result.replied = db.session.scalar(sa.select(sa.func.count(sa.distinct(i.contact_id))).where(replied)) or 0
    for d in dims:
        col = _inbound_dimension(d)
        for value, n in db.session.execute(
                sa.select(col, sa.func.count(sa.distinct(i.contact_id))).where(replied).group_by(col)):
            result.by[d][_key(d, value)][0] = n
    opted_total: set[int] = set()
    opted: dict[str, dict] = {d: defaultdict(set) for d in dims}
    queries = [sa.select(i.contact_id, *[_inbound_dimension(d).label(d) for d in dims])
               .where(*where, i.kind == "keyword", i.action == "opt_out"),
               sa.select(m.contact_id, *[_outbound_dimension(d).label(d) for d in dims])
               .where(*outbound_filters(f), m.error_code == TWILIO_OPTED_OUT)]
    for q in queries:
        for row in db.session.execute(q.distinct()):
            opted_total.add(row.contact_id)
            for d in dims:
                opted[d][_key(d, getattr(row, d))].add(row.contact_id)
    result.opted_out = len(opted_total)
    for d in dims:
        for key, who in opted[d].items():
            result.by[d][key][1] = len(who)
    result.by = {d: dict(v) for d, v in result.by.items()}
    return result


def people_records(f: ReportFilters) -> dict[tuple, dict[str, set[int]]]:
    """Who replied and who opted out, per (campaign, step, country, language, channel, week), as sets of
    contact ids: the people of ``people`` at the finest grain, so that every marginal counts distinct
    people (``reports.guard`` builds its cube from them). Only the viewer's scope and the dates narrow."""
    i, m = InboundMessage, OutboundMessage
    scoped = ReportFilters(scope=f.scope, date_from=f.date_from, date_to=f.date_to)
    where = _inbound_filters(scoped)
    opt_out = sa.and_(sa.func.coalesce(i.kind, "") == "keyword", sa.func.coalesce(i.action, "") == "opt_out")
    keys = [_inbound_dimension(d) for d in PEOPLE_DIMENSIONS]
    out: dict[tuple, dict[str, set[int]]] = defaultdict(lambda: {"replied": set(), "opted_out": set()})
    for row in db.session.execute(sa.select(i.contact_id, opt_out, *keys).where(*where).distinct()):
        key = tuple(_key(d, v) for d, v in zip(PEOPLE_DIMENSIONS, row[2:], strict=True))
        out[key]["opted_out" if row[1] else "replied"].add(row[0])
    keys = [_outbound_dimension(d) for d in PEOPLE_DIMENSIONS]
    for row in db.session.execute(sa.select(m.contact_id, *keys).where(
            *outbound_filters(scoped), m.error_code == TWILIO_OPTED_OUT).distinct()):
        key = tuple(_key(d, v) for d, v in zip(PEOPLE_DIMENSIONS, row[1:], strict=True))
        out[key]["opted_out"].add(row[0])
    return dict(out)
