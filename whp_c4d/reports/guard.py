"""Which report counts may be shown, whatever view of them is asked for.

Every count of the engagement reports (the funnel, its breakdowns, failures by reason, units sent) is a
cell of one cube over every campaign (``core.disclosure``): campaign › step, country, language, channel,
week and failure reason, with the funnel's stages and the units as measures. Feedback counts are a cube
of campaign, country, language, channel and week, with type, topic, source and month shown one at a
time. Hidden cells are chosen on the whole cube, so the same cells are hidden in every view, page, export
and API answer.

Dates: a report's dates are whole weeks (``filters``), so a view over a range of weeks is the sum of
week cells. It is checked twice: on the cube of that range (so that two views of the same range cannot
be subtracted), and against the hidden weeks of the whole cube: a range that holds some of a view's
hidden weeks but not all of them is hidden, since the difference with a neighbouring range would give
one away; so is a range that holds every week of a hidden view."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from flask import current_app

from ..core.disclosure import ALL, Cube, Layout
from ..core.models import utcnow
from ..extensions import db
from ..inbound.models import InboundMessage
from . import facts, rollup
from .filters import ReportFilters

_UNKNOWN = object()  # the campaign of a step no message names

#: The last cubes built per app (``app.extensions``), by report, viewer scope and weeks: a page, its
#: exports and the API answers of one state of the data share them (an attacker's thousand queries cost
#: one build). Each entry: (records, built (monotonic), whole, ranged, built (UTC)).
_CACHE_SIZE = 16
_LOCK = threading.Lock()


class Guard:
    """A report's cube for a viewer (their scope of countries) and the view's range of weeks."""

    layout: Layout
    published: Callable[[tuple, str], bool] | None = None
    may_lag = False  # whether a cube built from older records may serve for a while (see the cache)

    def __init__(self, f: ReportFilters, stamp, load: Callable[[], tuple[dict, dict]]):
        """``stamp``: what the records are, cheaply (e.g. the rollups used and the latest inbound id);
        ``load``: the records themselves, (counts, people) per base cell, read only when a cube is built."""
        self.f = f
        self.week = self.layout.dims.index("week")
        self.weeks = (f.date_from.isoformat() if f.date_from else "", f.date_to.isoformat() if f.date_to else "9999")
        ranged = bool(f.date_from or f.date_to)
        key = (type(self).__name__, f.scope, self.weeks if ranged else None)
        now = time.monotonic()
        cache = current_app.extensions.setdefault("c4d_disclosure_cubes", OrderedDict())
        with _LOCK:
            found = cache.get(key)
            same = found is not None and found[0] == stamp
            if same or (found is not None and self.may_lag and now - found[1] < rollup.refresh_seconds()):
                cache.move_to_end(key)
                # Built from the same records, or recently enough: like a rollup, the engagement report may
                # be a few minutes behind ("as of"), so that a busy evening does not rebuild it on every page.
                self.whole, self.ranged = found[2], found[3]
                self.as_of = None if same else found[4]
                return
        counts, people = load()
        w = self.week
        whole = self._cube(counts, people)
        part = (self._cube({k: v for k, v in counts.items() if self._in_range(k[w])},
                           {k: v for k, v in people.items() if self._in_range(k[w])}) if ranged else None)
        self.whole, self.ranged, self.as_of = whole, part, None
        with _LOCK:
            cache[key] = (stamp, now, whole, part, utcnow())
            while len(cache) > _CACHE_SIZE:
                cache.popitem(last=False)

    def _cube(self, counts, people) -> Cube:
        return Cube(self.layout, counts=counts, people=people, published=self.published)

    def _in_range(self, week) -> bool:
        return self.weeks[0] <= week <= self.weeks[1]

    def view(self, **extra) -> dict:
        """The view's dimension values (the filters), with ``extra`` (a row of a breakdown)."""
        f = self.f
        v = {"campaign": f.campaign_id, "country": f.country, "language": f.language, "channel": f.channel}
        v = {k: x for k, x in v.items() if x is not None and k in self.layout.dims}
        v.update(extra)
        return v

    def _cell(self, cube: Cube, **extra) -> tuple:
        return cube.cell(**self.view(**extra))

    def cube(self) -> Cube:
        return self.ranged or self.whole

    def measure(self, measure: str, extra: dict) -> tuple[str, dict]:
        """The cube's measure and cell for a count a report names (a subclass may map one to another)."""
        return measure, extra

    def value(self, measure: str, **extra) -> int:
        measure, extra = self.measure(measure, extra)
        c = self.cube()
        return c.value(self._cell(c, **extra), measure)

    def hidden(self, measure: str, **extra) -> bool:
        """Whether the view's count (or one row of its breakdown: ``extra``) is hidden."""
        measure, extra = self.measure(measure, extra)
        whole_cell = self._cell(self.whole, **extra)
        if _UNKNOWN in whole_cell:
            return True
        if self.ranged is None:
            return self.whole.is_hidden(whole_cell, measure)
        if self.ranged.is_hidden(self._cell(self.ranged, **extra), measure):
            return True
        if extra.get("week", ALL) is not ALL:
            return self.whole.is_hidden(whole_cell, measure)
        weeks = [(cell[self.week], cell) for cell in self._week_cells(whole_cell)]
        hidden_in = {self._in_range(w) for w, cell in weeks if self.whole.is_hidden(cell, measure)}
        if len(hidden_in) > 1:
            return True
        nonzero = [w for w, cell in weeks if self.whole.value(cell, measure)]
        return all(self._in_range(w) for w in nonzero) and self.whole.is_hidden(whole_cell, measure)

    def _week_cells(self, cell: tuple) -> list[tuple]:
        i = self.week
        if not hasattr(self, "_by_line"):
            self._by_line: dict[tuple, list[tuple]] = defaultdict(list)
            for c in self.whole.values:
                if c[i] is not ALL:
                    self._by_line[c[:i] + (ALL,) + c[i + 1:]].append(c)
        return self._by_line.get(cell, [])

    def shown(self, measure: str, **extra) -> int | str:
        return "<5" if self.hidden(measure, **extra) else self.value(measure, **extra)

    def keys(self, dim: str) -> list:
        """The values of ``dim`` that have counts under the view (the rows of a breakdown by it)."""
        c = self.cube()
        base = self._cell(c)
        dims = self.layout.dims
        i = dims.index(dim)
        if base[i] is not ALL:  # the view is already one value of it
            return [base[i]]
        out = []
        for cell in c.values:
            if cell[i] is ALL or any(cell[j] != base[j] for j in range(len(dims)) if j != i):
                continue
            out.append(cell[i])
        return out


# --- engagement and cost ---------------------------------------------------------------------------------

def reason_key(reason: str | None, code: int | None) -> str:
    """A failure's reason as a value of the cube's last dimension (only ``failed`` is broken down by it)."""
    return f"{reason or ''}:{code or ''}"


def _engagement_counts(rows: Iterable[facts.OutRow], answers: bool) -> dict[tuple, dict[str, int]]:
    """Per record: the funnel's messages, or (``answers``) the answers to people, which cost but are not in
    the funnel. They are two cubes: no report shows their sum (it would give one away from the other)."""
    out: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        if r.reply != answers:
            continue
        failed = r.status in facts.FAILED_STATUSES and not r.reply
        v = out[(r.campaign, r.step, r.country, r.language, r.channel, r.week,
                 reason_key(r.reason, r.code) if failed else None)]
        if r.sent:
            v["sent"] += r.n
            v["cost_segments"] += r.units
        if r.reply:
            continue
        v["targeted"] += r.n
        if r.status in facts.DELIVERED_STATUSES:
            v["delivered"] += r.n
        if r.status == "read":
            v["read"] += r.n
        if failed:
            v["failed"] += r.n
    return out


class _Outbox(Guard):
    layout = Layout(("campaign", "step", "country", "language", "channel", "week", "reason"),
                    nested={"step": "campaign"})
    may_lag = True

    @staticmethod
    def published(cell: tuple, measure: str) -> bool:
        """Failures are shown by reason; units are never checked on their own (see ``EngagementGuard``)."""
        return measure != "cost_segments" and (cell[-1] is ALL or measure == "failed")

    def view(self, **extra) -> dict:
        v = super().view(**({"step": self.f.step_id} if self.f.step_id else {}) | extra)
        if "step" in v and "campaign" not in v:  # a step is broken down under its campaign
            v["campaign"] = self.step_campaign.get(v["step"], _UNKNOWN)
        return v


class AnswersGuard(_Outbox):
    """Answers to people (acknowledgements, the inbox's replies): what the cost report counts apart."""

    def __init__(self, f: ReportFilters, rows: list[facts.OutRow], stamp, step_campaign: dict):
        self.step_campaign = step_campaign
        super().__init__(f, stamp, lambda: (_engagement_counts(
            (r for r in rows if f.scope is None or r.country in f.scope), answers=True), {}))


class EngagementGuard(_Outbox):
    """The funnel, failures by reason, people; and, through ``answers``, the cost's counts."""

    def __init__(self, f: ReportFilters, rows: list[facts.OutRow]):
        """``rows``: the outbox of every campaign, at the finest grain (the rollups and the replies)."""
        self.step_campaign = {r.step: r.campaign for r in rows if r.step is not None}

        def load():
            counts = _engagement_counts((r for r in rows if f.scope is None or r.country in f.scope), answers=False)
            people = {k + (None,): v for k, v in facts.people_records(ReportFilters(scope=f.scope)).items()}
            return counts, people

        latest = db.session.scalar(sa.select(sa.func.max(InboundMessage.id))) or 0
        stamp = (hash(frozenset(rows)), len(rows), latest)
        super().__init__(f, stamp, load)
        self.answers = AnswersGuard(f, rows, stamp, self.step_campaign)

    def value(self, measure: str, **extra) -> int:
        if measure == "cost_replies":
            return self.answers.value("sent", **extra)
        if measure == "cost_segments":
            return super().value(measure, **extra) + self.answers.value(measure, **extra)
        return super().value(measure, **extra)

    def hidden(self, measure: str, **extra) -> bool:
        if measure == "cost_replies":
            return self.answers.hidden("sent", **extra)
        if measure == "cost_segments":  # a WhatsApp message is one unit: units show only where both counts do
            return any(g.value("sent", **extra) and g.hidden("sent", **extra)
                       for g in (super(), self.answers))
        return super().hidden(measure, **extra)


# --- feedback --------------------------------------------------------------------------------------------

#: The breakdowns a feedback report shows, one at a time (never crossed with each other).
FEEDBACK_BREAKDOWNS = ("type", "topic", "source", "month")


class FeedbackGuard(Guard):
    layout = Layout(("campaign", "step", "country", "language", "channel", "week") + FEEDBACK_BREAKDOWNS,
                    nested={"step": "campaign"})

    @staticmethod
    def published(cell: tuple, measure: str) -> bool:
        return sum(v is not ALL for v in cell[6:]) <= 1

    def __init__(self, f: ReportFilters):
        from ..feedback.models import FeedbackItem, FeedbackTopic

        fi = FeedbackItem

        def load():
            week, month = facts.week_of(fi.received_at), facts.month_of(fi.received_at)
            keys = [fi.campaign_id, fi.step_id, fi.country, fi.language, fi.channel, week, month, fi.type,
                    FeedbackTopic.code, fi.source]
            q = (sa.select(*keys, sa.func.count()).select_from(fi)
                 .join(FeedbackTopic, FeedbackTopic.id == fi.topic_id, isouter=True)
                 .where(*ReportFilters(scope=f.scope).country_allowed(fi.country)).group_by(*keys))
            counts: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            for campaign, step, country, language, channel, w, m, kind, topic, source, n in db.session.execute(q):
                key = (campaign, step, country, language, channel, facts.day_key(w), kind or "", topic or "",
                       source, facts.day_key(m)[:7])
                counts[key]["items"] += n
            return counts, {}

        stamp = tuple(db.session.execute(sa.select(sa.func.count(), sa.func.max(fi.id), sa.func.max(fi.updated_at),
                                                   sa.func.max(FeedbackTopic.id)).select_from(fi).join(
            FeedbackTopic, FeedbackTopic.id == fi.topic_id, isouter=True)).one())
        super().__init__(f, stamp, load)

    def view(self, **extra) -> dict:
        return super().view(**({"step": self.f.step_id} if self.f.step_id else {}) | extra)
