"""A campaign's sending progress, from the outbox: counts by status, by country, language and channel,
failures by reason, the current rate and the time left at the senders' caps. Grouped in SQL.

Those who operate the campaign see exact counts; anyone else (evaluators) sees counts of 1 to 4 as
"<5", on the page and in its JSON, as in every report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from ..core.disclosure import ALL, Cube, Layout
from ..core.models import utcnow
from ..core.smallcells import cell
from ..extensions import db
from ..messaging.models import OutboundMessage
from .estimates import sender_caps, unreachable_people
from .models import Campaign, StepOccurrence

WAITING = ("pending", "held", "claimed", "sending", "uncertain")
LEFT = ("queued", "sent", "delivered", "read", "undelivered")  # accepted by Twilio
COLUMNS = ("waiting", "queued", "sent", "delivered", "read", "failed", "skipped")
FAILING = ("failed", "undelivered", "skipped", "missed")  # the statuses listed by reason
#: Every count of the page is a cell of this cube (for those who see small counts hidden).
LAYOUT = Layout(("country", "language", "channel", "column", "reason"))


def _published(cell: tuple, measure: str) -> bool:
    """Failures are listed by reason for the whole campaign only, over every column."""
    return cell[4] is ALL or all(v is ALL for v in cell[:4])


def _column(status: str) -> str:
    if status in WAITING:
        return "waiting"
    if status in ("undelivered", "failed"):
        return "failed"
    if status in ("skipped", "cancelled", "missed"):
        return "skipped"
    return status if status in COLUMNS else "queued"


@dataclass
class Progress:
    totals: dict[str, int]
    by_group: list[tuple[str, str, str, dict[str, int]]]  # country, language, channel, columns
    failures: list[tuple[str, int | None, int]]  # reason, error code, count
    rate_per_minute: int
    eta_seconds: float | None
    missed_occurrences: int
    # People of the audience, as it is now, whom a step cannot reach (by the one sendability decision);
    # None when not asked for (the page's three-second refresh does not show it).
    unreachable: int | None = None
    unreachable_by_reason: dict[str, int] = field(default_factory=dict)
    at_time: datetime = field(default_factory=utcnow)
    suppress_small_cells: bool = False  # counts stay exact here; at() is what people see
    # (country, language, channel, column, failure reason or None) -> messages: what every count sums
    records: dict[tuple, int] = field(default_factory=dict)
    _cubes: tuple | None = None

    @property
    def total(self) -> int:
        return sum(self.totals.values())

    def show(self, n: int) -> int | str:
        """A count on its own (the rate of the last minute) as this viewer may see it."""
        return cell(n) if self.suppress_small_cells else n

    def _cube(self) -> Cube:
        """The counts as one cube (country, language, channel, column, failure reason), so that no total
        minus the other rows gives a hidden one away (``core.disclosure``)."""
        if self._cubes is None:
            people = {(r,): {"n": n} for r, n in self.unreachable_by_reason.items()}
            self._cubes = (Cube(LAYOUT, counts={k: {"n": n} for k, n in self.records.items()}, published=_published),
                           Cube(Layout(("reason",)), counts=people))
        return self._cubes[0]

    def at(self, column: str | None = None, group: tuple[str, str, str] | None = None,
           failure: tuple[str, int | None] | None = None) -> int | str:
        """A count of messages (one per person and step occurrence) as this viewer may see it: a column's
        total (or the outbox's: no column), one group's, or one failure reason's."""
        if not self.suppress_small_cells:  # the counts as grouped, no cube needed
            if failure:
                return next(n for r, code, n in self.failures if (r, code) == failure)
            if group:
                return next(cols for *key, cols in self.by_group if tuple(key) == group)[column]
            return self.totals[column] if column else self.total
        country, language, channel = group or (ALL, ALL, ALL)
        reason = f"{failure[0]}:{failure[1] or ''}" if failure else ALL
        key = (country, language, channel, column or ALL, reason)
        return str(self._cube().shown(key, "n"))  # as ``cell`` gives it: text, "<5" when hidden

    def unreachable_at(self, reason: str | None = None) -> int | str:
        n = self.unreachable_by_reason.get(reason, 0) if reason else (self.unreachable or 0)
        if not self.suppress_small_cells:
            return n
        self._cube()
        people = self._cubes[1]
        return str(people.shown(people.cell(**({"reason": reason} if reason else {})), "n"))

    def as_json(self) -> dict:
        at = self.at
        return {"totals": {k: at(k) for k in self.totals}, "total": at(),
                "rate_per_minute": self.show(self.rate_per_minute),
                "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
                "missed_occurrences": self.missed_occurrences, "small_cells_suppressed": self.suppress_small_cells,
                "groups": [{"country": c, "language": lang, "channel": ch, **{k: at(k, (c, lang, ch)) for k in cols}}
                           for c, lang, ch, cols in self.by_group],
                "failures": [{"reason": r, "error_code": code, "count": at(failure=(r, code))}
                             for r, code, _n in self.failures],
                **({} if self.unreachable is None else {
                    "unreachable": self.unreachable_at(),
                    "unreachable_by_reason": {r: self.unreachable_at(r) for r in self.unreachable_by_reason}}),
                "at": self.at_time.isoformat()}


def progress(campaign: Campaign, now: datetime | None = None, *, suppress_small_cells: bool = False,
             reach: bool = True) -> Progress:
    """``reach``: also count the audience who cannot be reached (queries over the whole audience: the page
    shows it; the JSON its script fetches every three seconds leaves it out unless ``?reach=1``)."""
    now = now or utcnow()
    m = OutboundMessage
    channel = sa.func.coalesce(m.sent_channel, m.channel)
    failing = m.status.in_(FAILING)
    rows = db.session.execute(
        sa.select(m.country, m.language, channel, m.status, sa.case((failing, m.reason)),
                  sa.case((failing, m.error_code)), sa.func.count())
        .where(m.campaign_id == campaign.id)
        .group_by(m.country, m.language, channel, m.status, sa.case((failing, m.reason)),
                  sa.case((failing, m.error_code)))).all()
    totals = dict.fromkeys(COLUMNS, 0)
    groups: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COLUMNS, 0))
    records: dict[tuple, int] = defaultdict(int)
    waiting_units: dict[str, int] = defaultdict(int)
    for country, language, ch, status, reason, code, n in rows:
        col = _column(status)
        totals[col] += n
        groups[(country, language, ch)][col] += n
        failed = status in FAILING
        records[(country, language, ch, col, f"{reason or '-'}:{code or ''}" if failed else None)] += n
    # Time left counts what is due now; later steps wait for their day, not for the senders.
    for ch, n, units in db.session.execute(
            sa.select(channel, sa.func.count(), sa.func.sum(m.segments)).where(
                m.campaign_id == campaign.id, m.status.in_(("pending", "claimed", "sending")), m.earliest_at <= now)
            .group_by(channel)).all():
        waiting_units[ch] += int(units or n) if ch == "sms" else n
    failures = db.session.execute(
        sa.select(m.reason, m.error_code, sa.func.count()).where(
            m.campaign_id == campaign.id, m.status.in_(FAILING))
        .group_by(m.reason, m.error_code).order_by(sa.func.count().desc())).all()
    recent = db.session.scalar(sa.select(sa.func.count()).where(
        m.campaign_id == campaign.id, m.sent_at >= now - timedelta(minutes=1))) or 0
    caps, _assumed = sender_caps()
    eta = None
    if any(waiting_units.values()):
        eta = max(units / caps.get(ch, 1) for ch, units in waiting_units.items())
    missed = db.session.scalar(sa.select(sa.func.count()).select_from(StepOccurrence).where(
        StepOccurrence.status == "missed",
        StepOccurrence.step_id.in_([s.id for s in campaign.steps] or [-1]))) or 0
    unreachable, by_reason = unreachable_people(campaign) if reach else (None, {})
    return Progress(totals=totals, by_group=[(c, lang, ch, cols) for (c, lang, ch), cols in sorted(groups.items())],
                    failures=[(r or "-", code, n) for r, code, n in failures], rate_per_minute=recent,
                    eta_seconds=eta, missed_occurrences=missed, unreachable=unreachable,
                    unreachable_by_reason=by_reason, at_time=now, suppress_small_cells=suppress_small_cells,
                    records=dict(records))
