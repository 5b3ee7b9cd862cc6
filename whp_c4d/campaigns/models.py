"""Tables for campaigns, their steps and multilingual content, and the settings authors rely on."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.models import UTCDateTime, utcnow
from ..extensions import db

STATUSES = ("draft", "in_review", "approved", "active", "paused", "completed", "archived")
STEP_KINDS = ("message", "poll", "menu")
TIMING_TYPES = ("at", "recurring", "drip")
RECURRENCES = ("weekly", "monthly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_QUIET = (time(20, 0), time(8, 0))
DEFAULT_ANSWER_WINDOW_HOURS = 72
ANY_COUNTRY = "*"  # price rows that apply where no country-specific price exists


class CampaignObjective(db.Model):
    """What a campaign is for; admins extend the list. Labels are data, one per UI language."""

    __tablename__ = "campaign_objective"

    code: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    labels: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    position: Mapped[int] = mapped_column(sa.Integer, default=100)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels.get("en") or self.code


class ContentVariable(db.Model):
    """A name like ``hotline`` that content may use as ``{hotline}``; values differ per country."""

    __tablename__ = "content_variable"

    name: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    description: Mapped[str] = mapped_column(sa.String(300), default="")

    values: Mapped[list[ContentVariableValue]] = relationship(
        cascade="all, delete-orphan", order_by="ContentVariableValue.country")

    def value_for(self, country: str) -> str | None:
        return next((v.value for v in self.values if v.country == country and v.value), None)


class ContentVariableValue(db.Model):
    __tablename__ = "content_variable_value"

    variable_name: Mapped[str] = mapped_column(
        sa.ForeignKey("content_variable.name", ondelete="CASCADE"), primary_key=True)
    country: Mapped[str] = mapped_column(sa.String(2), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(500))


class SegmentPrice(db.Model):
    """What one SMS segment (or one WhatsApp message) costs, per country and channel."""

    __tablename__ = "segment_price"

    country: Mapped[str] = mapped_column(sa.String(2), primary_key=True)  # or ANY_COUNTRY
    channel: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    price: Mapped[Decimal] = mapped_column(sa.Numeric(10, 5))
    currency: Mapped[str] = mapped_column(sa.String(3), default="USD")


class OfficialDomain(db.Model):
    """Links in content should point at these (and their subdomains); others get a warning."""

    __tablename__ = "official_domain"

    domain: Mapped[str] = mapped_column(sa.String(253), primary_key=True)


class Campaign(db.Model):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(80), unique=True)
    name: Mapped[str] = mapped_column(sa.String(160))
    objective_code: Mapped[str] = mapped_column(sa.ForeignKey("campaign_objective.code"))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    countries: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=list)  # first = base language
    fallbacks: Mapped[dict[str, list[str]]] = mapped_column(sa.JSON, default=dict)
    channels: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    segment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("segment.id", ondelete="SET NULL"))
    quiet_start: Mapped[time] = mapped_column(sa.Time, default=DEFAULT_QUIET[0])
    quiet_end: Mapped[time] = mapped_column(sa.Time, default=DEFAULT_QUIET[1])
    start_date: Mapped[date | None] = mapped_column(sa.Date)
    end_date: Mapped[date | None] = mapped_column(sa.Date)
    sms_fallback: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # A message that could not go out this many hours after its time is recorded as missed, not sent.
    max_delay_hours: Mapped[int] = mapped_column(sa.Integer, default=24, server_default="24")
    status: Mapped[str] = mapped_column(sa.String(20), default="draft", index=True)
    # Every saved change bumps the version; approval records which version was approved.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    last_editor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    approved_version: Mapped[int | None] = mapped_column(sa.Integer)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    objective: Mapped[CampaignObjective] = relationship()
    segment = relationship("Segment")
    owner = relationship("User", foreign_keys=[owner_id])
    last_editor = relationship("User", foreign_keys=[last_editor_id])
    approved_by = relationship("User", foreign_keys=[approved_by_id])
    steps: Mapped[list[Step]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", order_by="Step.position")

    __table_args__ = (sa.CheckConstraint(
        "status in ('draft','in_review','approved','active','paused','completed','archived')", name="status"),)

    @property
    def base_language(self) -> str | None:
        return self.languages[0] if self.languages else None

    def language_chain(self, language: str) -> list[str]:
        """Languages to try for a contact speaking ``language``: itself, its fallbacks, the base."""
        chain = [language, *self.fallbacks.get(language, [])]
        if self.base_language:
            chain.append(self.base_language)
        seen: list[str] = []
        for code in chain:
            if code not in seen:
                seen.append(code)
        return seen


class Step(db.Model):
    __tablename__ = "campaign_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(sa.String(60))
    position: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(10), default="message")
    timing_type: Mapped[str] = mapped_column(sa.String(10))
    at_date: Mapped[date | None] = mapped_column(sa.Date)
    local_time: Mapped[time] = mapped_column(sa.Time)
    # None: the recipient's own local time; else an IANA zone the officer picked for everybody.
    timezone: Mapped[str | None] = mapped_column(sa.String(64))
    every: Mapped[str | None] = mapped_column(sa.String(10))
    weekday: Mapped[int | None] = mapped_column(sa.Integer)  # 0 = Monday
    month_day: Mapped[int | None] = mapped_column(sa.Integer)
    drip_day: Mapped[int | None] = mapped_column(sa.Integer)
    answer_window_hours: Mapped[int | None] = mapped_column(sa.Integer)

    campaign: Mapped[Campaign] = relationship(back_populates="steps")
    contents: Mapped[list[StepContent]] = relationship(
        back_populates="step", cascade="all, delete-orphan", order_by="StepContent.language")

    __table_args__ = (
        sa.UniqueConstraint("campaign_id", "key", name="campaign_step_key"),
        sa.CheckConstraint("kind in ('message','poll','menu')", name="kind"),
        sa.CheckConstraint("timing_type in ('at','recurring','drip')", name="timing_type"),
    )

    def content(self, language: str) -> StepContent | None:
        return next((c for c in self.contents if c.language == language), None)

    @property
    def number(self) -> int:
        return self.position + 1

    def recurs_on(self, day: date) -> bool:
        """A recurring step's days: its weekday, or its day of the month (the last day in short months)."""
        if self.every == "weekly":
            return day.weekday() == self.weekday
        if self.every == "monthly":
            return day.day == min(self.month_day or 1, calendar.monthrange(day.year, day.month)[1])
        return False


class StepContent(db.Model):
    """What one step says in one language, per channel. Content is not personal data."""

    __tablename__ = "step_content"

    step_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign_step.id", ondelete="CASCADE"), primary_key=True)
    language: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    sms_text: Mapped[str] = mapped_column(sa.Text, default="")
    whatsapp_text: Mapped[str | None] = mapped_column(sa.Text)
    media_url: Mapped[str | None] = mapped_column(sa.String(500))
    template_sid: Mapped[str | None] = mapped_column(sa.String(34))
    template_variables: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    thanks: Mapped[str | None] = mapped_column(sa.Text)
    # [{"number": 1, "label": "Sí", "words": ["si"], "reply": "..."}], same numbers in every language.
    options: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)

    step: Mapped[Step] = relationship(back_populates="contents")

    @property
    def whatsapp_body(self) -> str:
        return self.whatsapp_text or self.sms_text


class CampaignEnrolment(db.Model):
    """When a contact joined a campaign: day 0 of its drip steps for that person."""

    __tablename__ = "campaign_enrolment"

    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True, index=True)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StepOccurrence(db.Model):
    """One firing of a step: dated steps once, recurring steps once per date, drip steps once (their
    rows trickle in as people join). The unique row is what makes a firing happen once, never twice,
    whatever the worker's downtime; an occurrence found too late is recorded as missed, not sent."""

    __tablename__ = "step_occurrence"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign_step.id", ondelete="CASCADE"), index=True)
    occurrence: Mapped[str] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(12))  # expanded | missed
    messages: Mapped[int] = mapped_column(sa.Integer, default=0)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.UniqueConstraint("step_id", "occurrence", name="step_occurrence_once"),
        sa.CheckConstraint("status in ('expanded','missed')", name="status"),
    )
