"""What each report shows, as tables: labelled rows of counts already suppressed ("<5" for 1 to 4), the
same for the page (with a chart drawn from the table), the CSV and the XLSX export, so that every format
shows the same numbers. Built in a request (labels are translated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask_babel import format_date, format_number
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ..core.i18n import country_name, language_name
from ..core.smallcells import SMALL_CELL
from ..feedback.models import AGE_FIELDS, SEX_FIELDS
from ..feedback.services import SOURCE_LABELS, STATUS_LABELS, TYPE_LABELS
from ..inbound.results import DIMENSIONS as POLL_DIMENSIONS
from ..inbound.results import PollResults
from ..messaging.reasons import REASON_LABELS
from . import queries
from .guard import reason_key
from .queries import NOT_CODED, CostReport, Engagement, FeedbackReport, PartnerReach

HIDDEN = "—"  # a spend that would give a small count away

STAGE_LABELS = {"targeted": _l("Targeted"), "sent": _l("Sent"), "delivered": _l("Delivered"), "read": _l("Read"),
                "replied": _l("Replied (people)"), "opted_out": _l("Opted out (people)"), "failed": _l("Failed")}
DIMENSION_LABELS = {"campaign": _l("Campaign"), "step": _l("Step"), "country": _l("Country"),
                    "language": _l("Language"), "channel": _l("Channel"), "week": _l("Week of")}
BY_CHOICES = {"campaign": _l("Campaign"), "step": _l("Step"), "country": _l("Country"), "language": _l("Language"),
              "channel": _l("Channel"), "week": _l("Week")}
BY_TITLES = {"campaign": _l("Funnel by campaign"), "step": _l("Funnel by step"), "country": _l("Funnel by country"),
             "language": _l("Funnel by language"), "channel": _l("Funnel by channel"),
             "week": _l("Funnel by week")}
ACTIVITY_LABELS = {"workshop": _l("Workshop"), "community_meeting": _l("Community meeting"), "radio": _l("Radio"),
                   "materials": _l("Distribution of materials"), "social_media": _l("Social media"),
                   "other": _l("Other")}
REACH_LABELS = {"activities": _l("Activities"), "participants": _l("Participants"), "women": _l("Women"),
                "men": _l("Men"), "sex_other": _l("Other or not stated"), "age_under_13": _l("Under 13"),
                "age_13_17": _l("13 to 17"), "age_18_59": _l("18 to 59"), "age_60_plus": _l("60 and over")}


def shown(n: int | None) -> int | str:
    """A count as every report shows it: 0, "<5" for 1 to 4, else the number."""
    n = int(n or 0)
    return "<5" if 0 < n < SMALL_CELL else n


def display(value) -> str:
    """A cell on a page: counts in the reader's number format, anything else as it is."""
    if isinstance(value, int) and not isinstance(value, bool):
        return format_number(value)
    return "" if value is None else str(value)


def hidden(value) -> bool:
    return value == "<5"


@dataclass
class Table:
    key: str
    title: str
    head: list[str]
    rows: list[list] = field(default_factory=list)
    total: list | None = None
    chart: str | None = None  # "bars" (one column), "funnel" (the first four stages, nested), "columns" (time)
    column: int = 1  # the column a bars or columns chart draws
    numeric: frozenset[int] = frozenset()  # columns holding numbers (right-aligned)
    note: str | None = None

    @property
    def wide(self) -> bool:
        return len(self.head) > 3

    def chart_items(self) -> list[tuple[str, int | str]]:
        return [(str(r[0]), r[self.column]) for r in self.rows]


def _channel(code: str | None) -> str:
    return {"sms": "SMS", "whatsapp": "WhatsApp", "partner": _("Partner")}.get(code or "", code or "—")


def dimension_label(dim: str, key, names: dict | None = None) -> str:
    names = names or {}
    if key is None:
        return {"campaign": _("No campaign (replies)"), "step": _("Replies, no step")}.get(dim, "—")
    if dim == "campaign":
        return names.get("campaign", {}).get(key) or _("Campaign %(id)s", id=key)
    if dim == "step":
        found = names.get("step", {}).get(key)
        return f"{found[1] + 1}. {found[0]}" if found else _("Step %(id)s", id=key)
    if dim == "country":
        return country_name(key)
    if dim == "language":
        return language_name(key)
    if dim == "channel":
        return _channel(key)
    if dim == "week":
        return format_date(date.fromisoformat(key), "medium")
    return str(key)




def failure_label(reason: str | None, code: int | None) -> str:
    text = str(REASON_LABELS[reason]) if reason in REASON_LABELS else (reason or _("unknown"))
    return f"{text} ({code})" if code else text


# --- engagement ----------------------------------------------------------------------------------------

def funnel_table(e: Engagement) -> Table:
    t = Table("funnel", _("Engagement funnel"), [_("Stage"), _("Count")], chart="bars", numeric=frozenset({1}))
    t.rows = [[str(STAGE_LABELS[s]), e.shown(s)] for s in queries.FUNNEL_STAGES]
    return t


def breakdown_table(e: Engagement, dim: str) -> Table:
    head = [str(DIMENSION_LABELS[dim])] + [str(STAGE_LABELS[s]) for s in queries.FUNNEL_STAGES]
    t = Table(f"funnel_by_{dim}", str(BY_TITLES[dim]), head, chart="columns" if dim == "week" else "funnel",
              column=2, numeric=frozenset(range(1, len(head))))
    t.rows = [[dimension_label(dim, key, e.names)] + [e.shown(s, dim, key) for s in queries.FUNNEL_STAGES]
              for key in e.by[dim]]
    t.total = [_("Total")] + [e.shown(s) for s in queries.FUNNEL_STAGES]
    if dim != "campaign":
        t.note = _("People who replied or opted out are counted once in each row they appear in, so rows "
                   "can add up to more than the total.")
    return t


def reasons_table(e: Engagement) -> Table:
    t = Table("failed_by_reason", _("Failed, by reason"), [_("Reason (Twilio error code)"), _("Messages")],
              chart="bars", numeric=frozenset({1}))
    t.rows = [[failure_label(reason, code), e.shown("failed", "reason", reason_key(reason, code))]
              for (reason, code), n in sorted(e.reasons.items(), key=lambda kv: -kv[1])]
    return t


def engagement_tables(e: Engagement) -> list[Table]:
    return [funnel_table(e)] + [breakdown_table(e, d) for d in e.dimensions] + [reasons_table(e)]


# --- cost ----------------------------------------------------------------------------------------------

def _money(value: Decimal | None, currency: str | None = None) -> str:
    if value is None:
        return HIDDEN
    return f"{value:.2f} {currency}" if currency else f"{value:.2f}"


def cost_tables(c: CostReport, *, by_campaign: bool = True) -> list[Table]:
    t = Table("cost", _("Units sent and estimated spend, by country and channel"),
              [_("Country"), _("Channel"), _("Campaign messages sent"), _("Answers to people"), _("Units (SMS segments)"),
               _("Price per unit"), _("Estimated spend")], chart="bars", column=4, numeric=frozenset({2, 3, 4, 5, 6}))
    g = c.guard
    for line in c.lines:
        where = {"country": line.country, "channel": line.channel}
        units = g.shown("cost_segments", **where)
        spend = HIDDEN if hidden(units) or line.spend is None else _money(line.spend, line.currency)
        price = f"{line.price} {line.currency}" if line.price is not None else _("no price")
        t.rows.append([country_name(line.country), _channel(line.channel), g.shown("sent", **where),
                       g.shown("cost_replies", **where), units, price, spend])
    total_units = g.shown("cost_segments")
    t.total = [_("Total"), "", g.shown("sent"), g.shown("cost_replies"), total_units, "",
               HIDDEN if hidden(total_units) else
               "; ".join(_money(v, cur) for cur, v in sorted(c.totals.items())) or HIDDEN]
    t.note = _("Spend is estimated at today's prices per unit (an SMS segment, a WhatsApp message); “—” where "
               "fewer than 5 units were sent or no price is set.")
    tables = [t]
    if by_campaign:
        b = Table("cost_by_campaign", _("Units sent and estimated spend, by campaign"),
                  [_("Campaign"), _("Campaign messages sent"), _("Answers to people"), _("Units (SMS segments)"),
                   _("Estimated spend")], chart="bars", column=3, numeric=frozenset({1, 2, 3, 4}))
        for cid, name, _units, spend in c.by_campaign:
            label = name or (_("Campaign %(id)s", id=cid) if cid else _("No campaign (replies)"))
            shown_units = g.shown("cost_segments", campaign=cid)
            money = HIDDEN if hidden(shown_units) else ("; ".join(_money(v, cur) for cur, v in sorted(spend.items()))
                                                        or HIDDEN)
            b.rows.append([label, g.shown("sent", campaign=cid), g.shown("cost_replies", campaign=cid), shown_units,
                           money])
        tables.append(b)
    return tables


# --- polls ---------------------------------------------------------------------------------------------

def poll_tables(results: list[PollResults]) -> list[Table]:
    tables = []
    heads = {"language": _("Language"), "country": _("Country"), "channel": _("Channel")}
    for r in results:
        t = Table(f"poll_{r.step.id}", _("Poll %(step)s: %(question)s", step=r.step.key, question=r.question),
                  [_("Choice"), _("People")], chart="bars", numeric=frozenset({1}))
        t.rows = [[f"{c.number} · {c.label}", r.at(c)] for c in r.choices]
        t.rows.append([_("Not understood"), r.at(r.not_understood)])
        t.total = [_("Total"), r.at("total")]
        tables.append(t)
        for d in POLL_DIMENSIONS:
            values = r.values[d]
            if not values:
                continue
            by = Table(f"poll_{r.step.id}_by_{d}", _("Poll %(step)s by %(dimension)s", step=r.step.key,
                                                     dimension=str(heads[d]).lower()),
                       [_("Choice")] + [dimension_label(d, v) for v in values], numeric=frozenset(
                           range(1, len(values) + 1)))
            by.rows = [[f"{c.number} · {c.label}"] + [r.at(c, d, v) for v in values] for c in r.choices]
            by.rows.append([_("Not understood")] + [r.at(r.not_understood, d, v) for v in values])
            by.total = [_("Total")] + [r.at("total", d, v) for v in values]
            tables.append(by)
    return tables


# --- feedback ------------------------------------------------------------------------------------------

def feedback_tables(fr: FeedbackReport, locale: str, *, rumours: bool = True) -> list[Table]:
    g = fr.guard

    def counts(key: str, title: str, head: str, dim: str, items, chart: str = "bars") -> Table:
        t = Table(key, title, [head, _("Items")], chart=chart, numeric=frozenset({1}))
        t.rows = [[label, g.shown("items", **{dim: k})] for k, label in items]
        t.total = [_("Total"), g.shown("items")]
        return t

    def topic(code: str) -> str:
        return fr.topics[code].label(locale) if code in fr.topics else code

    not_coded = _("Not coded yet")
    tables = [
        counts("feedback_by_type", _("Feedback by type"), _("Type"), "type",
               [(k, str(TYPE_LABELS[k]) if k != NOT_CODED else not_coded) for k in fr.by_type]),
        counts("feedback_by_topic", _("Feedback by topic"), _("Topic"), "topic",
               [(k, topic(k) if k != NOT_CODED else _("No topic yet")) for k in fr.by_topic]),
        counts("feedback_by_country", _("Feedback by country"), _("Country"), "country",
               [(k, country_name(k)) for k in fr.by_country]),
        counts("feedback_by_month", _("Feedback over time"), _("Month"), "month",
               [(k, format_date(date.fromisoformat(k + "-01"), "MMM y")) for k in fr.by_month], "columns"),
        counts("feedback_by_source", _("Feedback by source"), _("Source"), "source",
               [(k, str(SOURCE_LABELS.get(k, k))) for k in fr.by_source]),
    ]
    if rumours:
        t = Table("rumours", _("Rumours and perceptions"), [_("Received"), _("Country"), _("Source"), _("Topic"),
                                                            _("What was heard"), _("Status")])
        t.rows = [[format_date(r.received_at, "medium"), country_name(r.country), str(SOURCE_LABELS.get(r.source, r.source)),
                   topic(r.topic) if r.topic else "—", r.text, str(STATUS_LABELS.get(r.status, r.status))]
                  for r in fr.rumours]
        notes = [_("Items coded “observation, perception or belief”, and rumours partners heard that nobody has "
                   "coded yet; numbers written in them are masked.")]
        if fr.rumours_hidden:
            notes.append(_("%(count)s sensitive items are counted but not listed: only the person they are "
                           "assigned to and administrators read them.", count=shown(fr.rumours_hidden)))
        if fr.rumours_total - fr.rumours_hidden > len(fr.rumours):
            notes.append(_("The %(count)s most recent are listed; the feedback report's export has them all.",
                           count=len(fr.rumours)))
        t.note = " ".join(notes)
        tables.append(t)
    return tables


# --- partner reach -------------------------------------------------------------------------------------

REACH_COLUMNS = ("activities", "participants", *SEX_FIELDS, *AGE_FIELDS)


def partner_tables(pr: PartnerReach) -> list[Table]:
    head = [str(REACH_LABELS[c]) for c in REACH_COLUMNS]
    numeric = frozenset(range(1, len(head) + 1))
    tables = []
    for key, title, first, groups, label in (
            ("reach_by_country", _("Partner reach by country"), _("Country"), pr.by_country, country_name),
            ("reach_by_activity", _("Partner reach by type of activity"), _("Activity"), pr.by_activity,
             lambda k: str(ACTIVITY_LABELS.get(k, k))),
            ("reach_by_partner", _("Partner reach by organisation"), _("Organisation"), pr.by_partner, str)):
        t = Table(key, title, [first, *head], chart="bars", column=2, numeric=numeric)
        t.rows = [[label(k)] + [shown(getattr(r, c)) for c in REACH_COLUMNS] for k, r in groups.items()]
        t.total = [_("Total")] + [shown(getattr(pr.total, c)) for c in REACH_COLUMNS]
        tables.append(t)
    for key, title, fields in (("reach_by_sex", _("Participants by sex"), SEX_FIELDS),
                               ("reach_by_age", _("Participants by age band"), AGE_FIELDS)):
        t = Table(key, title, [_("Group"), _("Participants")], chart="bars", numeric=frozenset({1}))
        t.rows = [[str(REACH_LABELS[c]), shown(getattr(pr.total, c))] for c in fields]
        t.total = [_("Total"), shown(pr.total.participants)]
        tables.append(t)
    tables[0].note = _("As partners report them after each activity: participants by sex and by age band each "
                       "add up to the total when both are given.")
    return tables
