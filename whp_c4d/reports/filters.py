"""The filters every report takes, read from the URL's GET parameters so that a view can be shared.

Parsing never raises: a value that cannot be used is left out and named in ``errors`` (field, translated
message), so a page shows the report without it and says why, and the API answers 400 with the same
messages. The user's scope (an officer limited to some countries) is part of the filters, so that every
query narrows by it the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from ..auth.models import User
from ..campaigns.models import Campaign, Step
from ..core import phones
from ..extensions import db

#: What a breakdown may be by, in the order the pages offer them.
DIMENSIONS = ("campaign", "step", "country", "language", "channel", "week")
CHANNELS = ("sms", "whatsapp")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class ReportFilters:
    campaign_id: int | None = None
    step_id: int | None = None
    country: str | None = None
    language: str | None = None
    channel: str | None = None
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    by: str = "campaign"
    #: Countries the viewer may see (None: all). Not a URL parameter: it comes from the user.
    scope: tuple[str, ...] | None = None

    @property
    def active(self) -> bool:
        return any((self.campaign_id, self.step_id, self.country, self.language, self.channel, self.date_from,
                    self.date_to))

    @property
    def narrowed(self) -> bool:
        """Anything beyond the campaign narrows the rows counted (the viewer's scope too)."""
        return self.scope is not None or any((self.step_id, self.country, self.language, self.channel,
                                              self.date_from, self.date_to))

    @property
    def starts(self) -> datetime | None:
        return datetime.combine(self.date_from, time(0), tzinfo=UTC) if self.date_from else None

    @property
    def ends(self) -> datetime | None:
        """The first instant after the last day (UTC): rows are kept when strictly before it."""
        return datetime.combine(self.date_to + timedelta(days=1), time(0), tzinfo=UTC) if self.date_to else None

    def args(self, **changes) -> dict[str, str]:
        """The URL parameters that give these filters back (``changes`` override some)."""
        f = replace(self, **changes) if changes else self
        out = {"campaign": f.campaign_id, "step": f.step_id, "country": f.country, "language": f.language,
               "channel": f.channel, "from": f.date_from.isoformat() if f.date_from else None,
               "to": f.date_to.isoformat() if f.date_to else None, "by": f.by}
        return {k: str(v) for k, v in out.items() if v not in (None, "")}

    def described(self) -> dict[str, str]:
        """For an audit event: which filters, never anything about a person."""
        return self.args()

    def country_allowed(self, column) -> list:
        """WHERE clauses on a country column: the chosen country, and the viewer's scope."""
        clauses = []
        if self.country:
            clauses.append(column == self.country)
        if self.scope is not None:
            clauses.append(column.in_(self.scope))
        return clauses

    def between(self, column) -> list:
        clauses = []
        if self.starts is not None:
            clauses.append(column >= self.starts)
        if self.ends is not None:
            clauses.append(column < self.ends)
        return clauses


def scope_of(user: User) -> tuple[str, ...] | None:
    """The countries a user's reports cover: an officer limited to some countries sees only those."""
    if user.role == "officer" and user.countries:
        return tuple(sorted(user.countries))
    return None


def _int(raw: str) -> int | None:
    raw = raw.strip()
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def parse_filters(args, user: User, *, default_by: str = "campaign",
                  allowed_by: tuple[str, ...] = DIMENSIONS) -> tuple[ReportFilters, list[tuple[str, str]]]:
    """Filters from GET parameters ``campaign``, ``step``, ``country``, ``language``, ``channel``,
    ``from``, ``to`` (ISO dates, inclusive) and ``by``; returns them and the (field, message) errors."""
    errors: list[tuple[str, str]] = []
    values: dict = {"scope": scope_of(user), "by": default_by}

    def text(name: str, size: int = 40) -> str:
        return (args.get(name) or "").strip()[:size]

    if raw := text("campaign"):
        campaign_id = _int(raw)
        if campaign_id is None or db.session.get(Campaign, campaign_id) is None:
            errors.append(("campaign", _("There is no campaign “%(value)s”: choose one from the list.", value=raw)))
        else:
            values["campaign_id"] = campaign_id
    if raw := text("step"):
        step_id = _int(raw)
        step = db.session.get(Step, step_id) if step_id is not None else None
        if step is None:
            errors.append(("step", _("There is no step “%(value)s”: choose one from the list.", value=raw)))
        elif values.get("campaign_id") not in (None, step.campaign_id):
            errors.append(("step", _("This step belongs to another campaign: choose a step of the chosen "
                                     "campaign.")))
        else:
            values["step_id"] = step.id
            values.setdefault("campaign_id", step.campaign_id)
    if raw := text("country"):
        if not phones.is_country(raw):
            errors.append(("country", _("“%(value)s” is not a country code such as GT or HT.", value=raw)))
        else:
            values["country"] = raw.upper()
    if raw := text("language").lower():
        if not _LANGUAGE.match(raw):
            errors.append(("language", _("“%(value)s” is not a language code such as es or ht.", value=raw)))
        else:
            values["language"] = raw
    if raw := text("channel").lower():
        if raw not in CHANNELS:
            errors.append(("channel", _("Unknown channel “%(value)s”: use sms or whatsapp.", value=raw)))
        else:
            values["channel"] = raw
    for name, key in (("from", "date_from"), ("to", "date_to")):
        if raw := text(name):
            day = _date(raw)
            if day is None:
                errors.append((name, _("“%(value)s” is not a date: write it as 2026-03-31.", value=raw)))
            else:
                values[key] = day
    # Whole weeks, Monday to Sunday (UTC): a range of days could be narrowed day by day until the difference
    # between two ranges is one person; a range of weeks is a sum of the cells ``guard`` checks.
    if values.get("date_from"):
        values["date_from"] -= timedelta(days=values["date_from"].weekday())
    if values.get("date_to"):
        values["date_to"] += timedelta(days=6 - values["date_to"].weekday())
    if values.get("date_from") and values.get("date_to") and values["date_from"] > values["date_to"]:
        errors.append(("to", _("The end date is before the start date.")))
        values.pop("date_to")
    if raw := text("by").lower():
        if raw not in allowed_by:
            errors.append(("by", _("A report cannot be broken down by “%(value)s”: use one of %(choices)s.",
                                   value=raw, choices=", ".join(allowed_by))))
        else:
            values["by"] = raw
    return ReportFilters(**values), errors


def campaign_choices() -> list[tuple[int, str]]:
    """Every campaign, for the filter list (a draft has no results, but a paused or archived one has)."""
    return list(db.session.execute(sa.select(Campaign.id, Campaign.name).order_by(Campaign.name)).all())


def step_choices(campaign_id: int | None) -> list[tuple[int, str]]:
    if not campaign_id:
        return []
    return list(db.session.execute(sa.select(Step.id, Step.key).where(Step.campaign_id == campaign_id)
                                   .order_by(Step.position)).all())
