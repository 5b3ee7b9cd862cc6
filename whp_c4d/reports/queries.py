"""The report queries: the engagement funnel (and the cost it implies), poll results, feedback and partner
reach, one function per report, each taking the ``ReportFilters`` read from the URL.

Counts here are exact; suppression ("<5") happens where they are shown (``tables``, the API). Messages
are counted from the campaigns' rollups (``rollup``: the outbox grouped at the finest grain the reports
use), filtered and rolled up here into every breakdown a page shows; people (replied, opted out) come
from the rollup for a campaign's unfiltered report, and are counted live otherwise (``facts``, where
the definitions are)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from ..auth.models import PartnerOrganisation, User
from ..campaigns.estimates import prices
from ..campaigns.models import ANY_COUNTRY, Campaign, Step
from ..extensions import db
from ..feedback.models import AGE_FIELDS, SEX_FIELDS, TYPES, FeedbackItem, FeedbackTopic, PartnerReport
from ..feedback.services import mask_numbers, visible_items
from ..inbound.results import PollResults, poll_results
from ..messaging.models import OutboundMessage
from . import facts, guard, rollup
from .facts import DELIVERED_STATUSES, FAILED_STATUSES, day_key, month_of
from .filters import ReportFilters

FUNNEL_STAGES = ("targeted", "sent", "delivered", "read", "replied", "opted_out", "failed")
#: Stages counted in people (distinct contacts); the others count messages.
PEOPLE_STAGES = frozenset({"replied", "opted_out"})
#: The breakdowns of a campaign's report.
CAMPAIGN_DIMENSIONS = rollup.ROLLUP_DIMENSIONS
NOT_CODED = ""  # the key of feedback items nobody has typed (or given a topic) yet
RUMOUR_LIST_LIMIT = 100


# --- the engagement funnel -----------------------------------------------------------------------------

@dataclass
class Funnel:
    """One group's funnel: messages, except ``replied`` and ``opted_out`` (people)."""

    targeted: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    replied: int = 0
    opted_out: int = 0
    failed: int = 0

    def values(self) -> list[int]:
        return [getattr(self, s) for s in FUNNEL_STAGES]

    def add(self, row: facts.OutRow) -> None:
        n = row.n
        self.targeted += n
        if row.sent:
            self.sent += n
        if row.status in DELIVERED_STATUSES:
            self.delivered += n
        if row.status == "read":
            self.read += n
        if row.status in FAILED_STATUSES:
            self.failed += n


@dataclass
class CostUnits:
    """What went out on one channel in one country: messages Twilio accepted and the units billed (SMS
    segments; one per WhatsApp message)."""

    messages: int = 0
    segments: int = 0
    replies: int = 0  # of the messages, answers to people (acknowledgements, inbox replies)


@dataclass
class Engagement:
    filters: ReportFilters
    dimensions: tuple[str, ...]
    total: Funnel
    by: dict[str, dict]  # dimension -> {key: Funnel}, in display order
    reasons: Counter  # (reason, error code) -> failed messages
    cost: dict[tuple[int | None, str, str], CostUnits]  # (campaign, country, channel) -> units sent
    names: dict[str, dict]  # dimension -> {key: name} for campaigns, {key: (step key, position)} for steps
    as_of: datetime | None = None  # the oldest rollup used, when one no longer matches the outbox
    guard: guard.EngagementGuard | None = None  # which counts may be shown (every one of them, in every view)

    def shown(self, stage: str, dim: str | None = None, key=None) -> int | str:
        """A count of the view (or of one row of a breakdown) as every report shows it."""
        return self.guard.shown(stage, **({dim: key} if dim else {}))

    def hidden(self, stage: str, dim: str | None = None, key=None) -> bool:
        return self.guard.hidden(stage, **({dim: key} if dim else {}))


def _row_key(dim: str, row: facts.OutRow):
    return row.week if dim == "week" else getattr(row, dim)


def engagement(f: ReportFilters, dimensions: Sequence[str] = ("campaign",)) -> Engagement:
    """The funnel overall and broken down by each of ``dimensions``, the failures by reason and the units
    sent (for the cost): messages from the campaigns' rollups, people as ``facts.people`` counts them."""
    dims = tuple(dict.fromkeys(dimensions))
    rollups = rollup.rollups(rollup.campaigns_with_messages())
    everything = [r for ru in rollups for r in ru.rows]
    everything += facts.outbound_rows(OutboundMessage.campaign_id.is_(None))  # answers outside any campaign
    rows = [r for r in everything if (not f.campaign_id or r.campaign == f.campaign_id) and facts.keeps(f, r)]
    rollups = [ru for ru in rollups if not f.campaign_id or ru.campaign_id == f.campaign_id]

    total = Funnel()
    by: dict[str, dict] = {d: defaultdict(Funnel) for d in dims}
    reasons: Counter = Counter()
    cost: dict[tuple[int | None, str, str], CostUnits] = defaultdict(CostUnits)
    for row in rows:
        if row.sent:
            line = cost[(row.campaign, row.country, row.channel)]
            line.messages += row.n
            line.segments += row.units
            line.replies += row.n if row.reply else 0
        if row.reply:
            continue
        total.add(row)
        for d in dims:
            by[d][_row_key(d, row)].add(row)
        if row.status in FAILED_STATUSES:
            reasons[(row.reason, row.code)] += row.n

    # People come from the guard's cube, so that what is shown is what was checked.
    g = guard.EngagementGuard(f, everything)
    total.replied, total.opted_out = g.value("replied"), g.value("opted_out")
    for d in dims:
        for key in g.keys(d):
            if g.value("replied", **{d: key}) or g.value("opted_out", **{d: key}):
                by[d][key]  # noqa: B018 - a row for people who replied where no message of the view went
        for key, funnel in by[d].items():
            funnel.replied, funnel.opted_out = g.value("replied", **{d: key}), g.value("opted_out", **{d: key})
    names = _names(by)
    ordered = {d: dict(sorted(by[d].items(), key=lambda kv, d=d: _order(d, kv[0], names))) for d in dims}
    stale = [ru.computed_at for ru in rollups if not ru.current] + ([g.as_of] if g.as_of else [])
    return Engagement(filters=f, dimensions=dims, total=total, by=ordered, reasons=reasons, cost=dict(cost),
                      names=names, as_of=min(stale) if stale else None, guard=g)


def _names(by: dict) -> dict[str, dict]:
    names: dict[str, dict] = {}
    if "campaign" in by:
        ids = [k for k in by["campaign"] if k is not None]
        names["campaign"] = dict(db.session.execute(
            sa.select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all()) if ids else {}
    if "step" in by:
        ids = [k for k in by["step"] if k is not None]
        names["step"] = {sid: (key, pos) for sid, key, pos in db.session.execute(
            sa.select(Step.id, Step.key, Step.position).where(Step.id.in_(ids)))} if ids else {}
    return names


def _order(dim: str, key, names: dict):
    if dim == "step":
        key_pos = names.get("step", {}).get(key)
        return (key_pos is None, key_pos[1] if key_pos else 0, key or 0)
    if dim == "campaign":
        return (key is None, str(names.get("campaign", {}).get(key, "")).lower(), key or 0)
    return (key is None, str(key or ""))


# --- polls ---------------------------------------------------------------------------------------------

def polls(f: ReportFilters) -> list[PollResults]:
    """The results of the campaign's poll steps (or the chosen step), with counts suppressed for
    everybody: reports hide small cells whoever reads them. Every answer counts (``inbound.results``);
    the breakdowns by language, country and channel are in the results themselves."""
    if not f.campaign_id:
        return []
    q = sa.select(Step).where(Step.campaign_id == f.campaign_id, Step.kind == "poll").order_by(Step.position)
    if f.step_id:
        q = q.where(Step.id == f.step_id)
    return [r for step in db.session.scalars(q)
            if (r := poll_results(step, suppress_small_cells=True)) is not None]


# --- feedback ------------------------------------------------------------------------------------------

@dataclass
class RumourRow:
    id: int
    received_at: datetime
    country: str
    source: str
    type: str | None
    topic: str | None
    text: str  # numbers masked
    status: str


@dataclass
class FeedbackReport:
    total: int
    by_type: dict[str, int]  # type code or NOT_CODED -> items
    by_topic: dict[str, int]  # topic code or NOT_CODED -> items
    by_country: dict[str, int]
    by_month: dict[str, int]  # 'YYYY-MM' -> items
    by_source: dict[str, int]
    topics: dict[str, FeedbackTopic]
    rumours: list[RumourRow]
    rumours_total: int
    rumours_hidden: int  # sensitive ones the viewer may not read (counted, not listed)
    guard: guard.FeedbackGuard | None = None  # which counts may be shown


def _feedback_filters(f: ReportFilters) -> list:
    fi = FeedbackItem
    where = []
    if f.campaign_id:
        where.append(fi.campaign_id == f.campaign_id)
    if f.step_id:
        where.append(fi.step_id == f.step_id)
    if f.language:
        where.append(fi.language == f.language)
    if f.channel:
        where.append(fi.channel == f.channel)
    return where + f.country_allowed(fi.country) + f.between(fi.received_at)


def _rumour_clause():
    fi = FeedbackItem
    return sa.or_(fi.type == "observation", sa.and_(fi.source == "partner_rumour", fi.type.is_(None)))


def feedback(f: ReportFilters, user: User, *, rumour_limit: int = RUMOUR_LIST_LIMIT) -> FeedbackReport:
    """Feedback items by type (with "not coded yet"), topic, country, month and source. Sensitive items
    count in every total; their texts appear in the rumours list only to those ``visible_items`` lets read
    them."""
    fi = FeedbackItem
    where = _feedback_filters(f)

    def grouped(col) -> dict:
        return {k: n for k, n in db.session.execute(sa.select(col, sa.func.count()).where(*where).group_by(col))}

    by_type_raw = grouped(fi.type)
    topic_rows = db.session.execute(sa.select(FeedbackTopic.code, sa.func.count()).select_from(fi)
                                    .join(FeedbackTopic, FeedbackTopic.id == fi.topic_id, isouter=True)
                                    .where(*where).group_by(FeedbackTopic.code)).all()
    topics = {t.code: t for t in db.session.scalars(sa.select(FeedbackTopic).order_by(FeedbackTopic.position))}
    by_type = {t: by_type_raw.get(t, 0) for t in TYPES}
    by_type[NOT_CODED] = by_type_raw.get(None, 0)
    topic_counts = {code: n for code, n in topic_rows}
    by_topic = {code: topic_counts.get(code, 0) for code in topics if topic_counts.get(code) or topics[code].active}
    by_topic[NOT_CODED] = topic_counts.get(None, 0)
    by_country = dict(sorted(grouped(fi.country).items()))
    by_month = {}
    month = month_of(fi.received_at)
    for value, n in db.session.execute(sa.select(month, sa.func.count()).where(*where).group_by(month)):
        key = day_key(value)[:7]
        by_month[key] = by_month.get(key, 0) + n
    by_source = dict(sorted(grouped(fi.source).items()))

    rumours = _rumour_clause()
    rumours_total = db.session.scalar(sa.select(sa.func.count()).select_from(fi).where(*where, rumours)) or 0
    visible = visible_items(user).where(*where, rumours)
    visible_count = db.session.scalar(sa.select(sa.func.count()).select_from(visible.subquery())) or 0
    items = db.session.scalars(visible.order_by(fi.received_at.desc(), fi.id.desc()).limit(rumour_limit))
    code_of = {t.id: t.code for t in topics.values()}
    rows = [RumourRow(id=i.id, received_at=i.received_at, country=i.country, source=i.source, type=i.type,
                      topic=code_of.get(i.topic_id), text=mask_numbers(i.text),
                      status=i.status) for i in items]
    return FeedbackReport(total=sum(by_type.values()), by_type=by_type, by_topic=by_topic, by_country=by_country,
                          by_month=dict(sorted(by_month.items())), by_source=by_source, topics=topics,
                          rumours=rows, rumours_total=rumours_total, rumours_hidden=rumours_total - visible_count,
                          guard=guard.FeedbackGuard(f))


@dataclass
class FeedbackExportRow:
    id: int
    received_at: datetime
    source: str
    country: str
    language: str | None
    channel: str | None
    campaign_id: int | None
    step_id: int | None
    pseudonym: str | None
    partner: str | None
    type: str | None
    topic: str | None
    sensitive: bool
    criticality: str
    status: str
    text: str
    loop_action: str
    coded_at: datetime | None


def feedback_items(f: ReportFilters, user: User, *, batch: int = 1000) -> Iterable[FeedbackExportRow]:
    """Every item the user may see under the filters, oldest first, pseudonymised (the contact's
    pseudonym, never a number; numbers written in texts masked), read in batches for a streamed export.

    Who may see what is decided now, in the request: the rows are read later, while the response
    streams, when the request's session (and the user loaded in it) may be gone."""
    return _feedback_item_batches(visible_items(user).where(*_feedback_filters(f)).subquery(), batch)


def _feedback_item_batches(visible, batch: int) -> Iterator[FeedbackExportRow]:
    from ..audience.models import Contact

    fi = FeedbackItem
    topics = {t.id: t.code for t in db.session.scalars(sa.select(FeedbackTopic))}
    last = 0
    while True:
        rows = db.session.execute(
            sa.select(fi, Contact.pseudonym, PartnerOrganisation.name)
            .where(fi.id.in_(sa.select(visible.c.id)), fi.id > last)
            .join(Contact, Contact.id == fi.contact_id, isouter=True)
            .join(PartnerOrganisation, PartnerOrganisation.id == fi.partner_id, isouter=True)
            .order_by(fi.id).limit(batch)).all()
        if not rows:
            return
        for item, pseudonym, partner in rows:
            yield FeedbackExportRow(
                id=item.id, received_at=item.received_at, source=item.source, country=item.country,
                language=item.language, channel=item.channel, campaign_id=item.campaign_id, step_id=item.step_id,
                pseudonym=pseudonym, partner=partner, type=item.type, topic=topics.get(item.topic_id),
                sensitive=item.sensitive, criticality=item.criticality, status=item.status,
                text=mask_numbers(item.text), loop_action=mask_numbers(item.loop_action), coded_at=item.coded_at)
        last = rows[-1][0].id
        for item, _pseudonym, _partner in rows:  # a long export keeps one batch in memory, not the whole queue
            db.session.expunge(item)


# --- partner reach -------------------------------------------------------------------------------------

REACH_FIELDS = ("participants", *SEX_FIELDS, *AGE_FIELDS)


@dataclass
class Reach:
    activities: int = 0
    participants: int = 0
    women: int = 0
    men: int = 0
    sex_other: int = 0
    age_under_13: int = 0
    age_13_17: int = 0
    age_18_59: int = 0
    age_60_plus: int = 0

    def add(self, row) -> None:
        self.activities += 1
        for name in REACH_FIELDS:
            setattr(self, name, getattr(self, name) + int(getattr(row, name) or 0))


@dataclass
class PartnerReach:
    total: Reach
    by_country: dict[str, Reach]
    by_activity: dict[str, Reach]
    by_partner: dict[str, Reach]


def partner_reach(f: ReportFilters) -> PartnerReach:
    """Activities and participants reported by partners, by country, activity type and organisation. A
    campaign or language filter keeps the activities that list it (JSON lists, read per report: partner
    reports are a few thousand at most, not millions)."""
    p = PartnerReport
    where = f.country_allowed(p.country)
    if f.date_from:
        where.append(p.activity_date >= f.date_from)
    if f.date_to:
        where.append(p.activity_date <= f.date_to)
    rows = db.session.execute(
        sa.select(p.country, p.activity_type, p.campaign_ids, p.languages, PartnerOrganisation.name,
                  *[getattr(p, name) for name in REACH_FIELDS])
        .join(PartnerOrganisation, PartnerOrganisation.id == p.partner_id).where(*where)).all()
    total, by_country, by_activity, by_partner = Reach(), defaultdict(Reach), defaultdict(Reach), defaultdict(Reach)
    for row in rows:
        if f.campaign_id and f.campaign_id not in (row.campaign_ids or []):
            continue
        if f.language and f.language not in (row.languages or []):
            continue
        for target in (total, by_country[row.country], by_activity[row.activity_type], by_partner[row.name]):
            target.add(row)
    return PartnerReach(total=total, by_country=dict(sorted(by_country.items())),
                        by_activity=dict(sorted(by_activity.items())), by_partner=dict(sorted(by_partner.items())))


# --- cost ----------------------------------------------------------------------------------------------

@dataclass
class CostLine:
    country: str
    channel: str
    units: CostUnits
    price: Decimal | None
    currency: str | None

    @property
    def spend(self) -> Decimal | None:
        if self.price is None:
            return None
        return (Decimal(self.units.segments) * self.price).quantize(Decimal("0.01"))


@dataclass
class CostReport:
    lines: list[CostLine]
    by_campaign: list[tuple[int | None, str | None, CostUnits, dict[str, Decimal]]]
    totals: dict[str, Decimal]  # currency -> spend
    messages: int
    segments: int
    missing_prices: list[tuple[str, str]] = field(default_factory=list)
    guard: guard.EngagementGuard | None = None  # which counts may be shown


def cost(f: ReportFilters, report: Engagement | None = None) -> CostReport:
    """Units sent (SMS segments, WhatsApp messages) and their estimated spend by country and channel, at
    today's prices (a country's own price, else the price for any country); also by campaign. Replies
    (acknowledgements, inbox answers) cost too and are counted, apart, in ``replies``."""
    report = report or engagement(f, ())
    table = prices()
    by_line: dict[tuple[str, str], CostUnits] = defaultdict(CostUnits)
    by_campaign: dict[int | None, CostUnits] = defaultdict(CostUnits)
    campaign_spend: dict[int | None, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))

    def price_for(country: str, channel: str):
        return table.get((country, channel)) or table.get((ANY_COUNTRY, channel))

    for (cid, country, channel), units in report.cost.items():
        for target in (by_line[(country, channel)], by_campaign[cid]):
            target.messages += units.messages
            target.segments += units.segments
            target.replies += units.replies
        price = price_for(country, channel)
        if price is not None:
            campaign_spend[cid][price.currency] += Decimal(units.segments) * price.price
    lines, missing = [], []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (country, channel), units in sorted(by_line.items()):
        price = price_for(country, channel)
        line = CostLine(country, channel, units, price.price if price else None, price.currency if price else None)
        if price is None:
            missing.append((country, channel))
        else:
            totals[line.currency] += line.spend
        lines.append(line)
    ids = [c for c in by_campaign if c is not None]
    names = dict(db.session.execute(sa.select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids)))
                 .all()) if ids else {}
    campaigns = [(cid, names.get(cid), units, {cur: v.quantize(Decimal("0.01")) for cur, v in campaign_spend[cid].items()})
                 for cid, units in sorted(by_campaign.items(),
                                          key=lambda kv: (kv[0] is None, str(names.get(kv[0], "")).lower()))]
    return CostReport(lines=lines, by_campaign=campaigns, totals=dict(totals),
                      messages=sum(x.units.messages for x in lines), segments=sum(x.units.segments for x in lines),
                      missing_prices=missing, guard=report.guard)


# --- pages made of several reports ---------------------------------------------------------------------

@dataclass
class CampaignReport:
    campaign: Campaign
    engagement: Engagement
    polls: list[PollResults]
    feedback: FeedbackReport
    cost: CostReport


def campaign_report(f: ReportFilters, user: User) -> CampaignReport:
    """Everything the per-campaign report shows: the funnel by each breakdown, its polls, its feedback
    and its cost, under the same filters."""
    e = engagement(f, CAMPAIGN_DIMENSIONS)
    return CampaignReport(campaign=db.session.get(Campaign, f.campaign_id), engagement=e, polls=polls(f),
                          feedback=feedback(f, user, rumour_limit=10), cost=cost(f, e))


@dataclass
class Summary:
    engagement: Engagement
    feedback: FeedbackReport
    reach: PartnerReach


def summary(f: ReportFilters, user: User) -> Summary:
    """The dashboard's: the funnel of every campaign together, feedback by type and partner reach."""
    return Summary(engagement=engagement(f, ()), feedback=feedback(f, user, rumour_limit=0), reach=partner_reach(f))
