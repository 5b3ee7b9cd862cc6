"""What a campaign will cost and how long it takes to send, from the same rules the engine uses."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from ..extensions import db
from ..messaging.models import DEFAULT_CAP_PER_SECOND, Sender
from ..messaging.segments import segments as count_segments
from .models import ANY_COUNTRY, Campaign, SegmentPrice, Step
from .planning import group_routes, purpose_of, reachable_query, render, variable_values

# A recurring step without an end date is estimated over this many occurrences (and says so).
OPEN_ENDED_OCCURRENCES = 1


@dataclass
class CostLine:
    country: str
    language: str
    channel: str
    recipients: int = 0
    messages: int = 0
    segments: int = 0
    cost: Decimal | None = Decimal(0)
    currency: str = "USD"


@dataclass
class StepEstimate:
    step: Step
    occurrences: int
    open_ended: bool
    messages: int = 0
    units: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # channel -> segments/messages
    seconds: float = 0.0  # one occurrence at the senders' caps
    unreachable: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # reason -> people


@dataclass
class Estimate:
    lines: list[CostLine]
    steps: list[StepEstimate]
    recipients: int
    unreachable: int  # people of the audience at least one step cannot reach
    unreachable_by_reason: dict[str, int]  # why (the sendability decision's reasons), people
    totals: dict[str, Decimal]  # currency -> amount
    missing_prices: list[tuple[str, str]]  # (country, channel)
    caps: dict[str, int]
    caps_assumed: list[str]

    @property
    def total_segments(self) -> int:
        return sum(line.segments for line in self.lines if line.channel == "sms")

    @property
    def total_messages(self) -> int:
        return sum(line.messages for line in self.lines)

    @property
    def longest_send_seconds(self) -> float:
        return max((s.seconds for s in self.steps), default=0.0)


def occurrences(step: Step, campaign: Campaign, today: date | None = None) -> tuple[int, bool]:
    """How many times a step fires between the campaign's dates; (n, open_ended)."""
    if step.timing_type != "recurring":
        return 1, False
    start = max(campaign.start_date or today or date.today(), today or date.today())
    if campaign.end_date is None:
        return OPEN_ENDED_OCCURRENCES, True
    days = (campaign.end_date - start).days + 1
    return sum(step.recurs_on(start + timedelta(days=i)) for i in range(max(days, 0))), False


def prices() -> dict[tuple[str, str], SegmentPrice]:
    return {(p.country, p.channel): p for p in db.session.scalars(sa.select(SegmentPrice))}


def sender_caps() -> tuple[dict[str, int], list[str]]:
    """Messages (SMS: segments) per second each channel can send, summed over active senders."""
    caps: dict[str, int] = defaultdict(int)
    for s in db.session.scalars(sa.select(Sender).where(Sender.active.is_(True))):
        caps[s.channel] += s.cap_per_second
    assumed = [ch for ch in ("sms", "whatsapp") if not caps.get(ch)]
    for ch in assumed:
        caps[ch] = DEFAULT_CAP_PER_SECOND[ch]
    return dict(caps), assumed


def estimate(campaign: Campaign, today: date | None = None) -> Estimate:
    """Cost, time and reach of the campaign, deciding for every group of the audience (country,
    language, zone, consented channels) what the dispatcher would: the one sendability decision, with
    the WhatsApp window taken as closed (it cannot be known ahead). A WhatsApp message that will go as
    its SMS fallback is priced as SMS; people no step can reach are counted, with the reason."""
    price_table = prices()
    caps, assumed = sender_caps()
    groups = {}
    for purpose in {purpose_of(s) for s in campaign.steps} or {"campaigns"}:
        groups[purpose] = db.session.execute(reachable_query(campaign, purpose)).all()
    lines: dict[tuple[str, str, str], CostLine] = {}
    values_cache: dict[str, dict[str, str]] = {}
    recipients_seen: dict[tuple[str, str, str], int] = {}
    missing: set[tuple[str, str]] = set()
    step_estimates = []
    for step in campaign.steps:
        n, open_ended = occurrences(step, campaign, today)
        se = StepEstimate(step, n, open_ended)
        purpose = purpose_of(step)
        for gr in group_routes(campaign, step, groups[purpose]):  # no content: a check of its own
            country, count, used_language, content, route = gr.group[0], gr.count, gr.language, gr.content, gr.route
            if isinstance(route, str):
                se.unreachable[route] += count
                continue
            channel = route.channel
            values = values_cache.get(country)
            if values is None:
                values = values_cache[country] = variable_values(country)
            units = 1 if channel == "whatsapp" else count_segments(render(content.sms_text, values))
            key = (country, used_language, channel)
            line = lines.setdefault(key, CostLine(country, used_language, channel))
            recipients_seen[key] = max(recipients_seen.get(key, 0), count)
            line.messages += count * n
            line.segments += count * n * units
            se.messages += count
            se.units[channel] += count * units
        se.seconds = max((u / caps[ch] for ch, u in se.units.items()), default=0.0)
        step_estimates.append(se)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for key, line in lines.items():
        line.recipients = recipients_seen[key]
        price = price_table.get((line.country, line.channel)) or price_table.get((ANY_COUNTRY, line.channel))
        if price is None:
            line.cost = None
            missing.add((line.country, line.channel))
            continue
        line.currency = price.currency
        line.cost = (Decimal(line.segments) * price.price).quantize(Decimal("0.01"))
        totals[price.currency] += line.cost
    all_groups = groups.get("campaigns") or next(iter(groups.values()), [])
    recipients = sum(row[5] for row in all_groups)
    unreachable, by_reason = _unreachable(campaign, groups)
    return Estimate(lines=sorted(lines.values(), key=lambda x: (x.country, x.language, x.channel)),
                    steps=step_estimates, recipients=recipients, unreachable=unreachable,
                    unreachable_by_reason=dict(by_reason), totals=dict(totals), missing_prices=sorted(missing),
                    caps=caps, caps_assumed=assumed)


def _unreachable(campaign: Campaign, groups: dict[str, list]) -> tuple[int, dict[str, int]]:
    """People of the audience (``groups``: per purpose, the rows of ``reachable_query``) whom at least
    one step cannot reach, and how many for each reason: no consent on the campaign's channels, or what
    the sendability decision says. A person counts once per purpose; the larger purpose wins."""
    unreachable, by_reason = 0, defaultdict(int)
    for purpose, rows in groups.items():
        counts = {tuple(row[:5]): row[5] for row in rows}
        # Each group's first reason: no consent at all, else the first step (in order) that cannot reach it.
        first = {tuple(row[:5]): "no_consent" for row in rows if not row[3] and not row[4]}
        for step in campaign.steps:
            if purpose_of(step) == purpose:
                for gr in group_routes(campaign, step, rows):
                    if isinstance(gr.route, str):
                        first.setdefault(gr.group, gr.route)
        reasons: dict[str, int] = defaultdict(int)
        for group, reason in first.items():
            reasons[reason] += counts[group]
        unreachable = max(unreachable, sum(reasons.values()))
        for reason, n in reasons.items():
            by_reason[reason] = max(by_reason[reason], n)
    return unreachable, dict(by_reason)


def unreachable_people(campaign: Campaign) -> tuple[int, dict[str, int]]:
    """``_unreachable`` on the campaign's audience as it is now (the progress page)."""
    if campaign.segment_id is None:
        return 0, {}
    groups = {purpose: db.session.execute(reachable_query(campaign, purpose)).all()
              for purpose in {purpose_of(s) for s in campaign.steps} or {"campaigns"}}
    return _unreachable(campaign, groups)
