"""Tables of participatory evaluation: partner reports, the one feedback queue, its codebook, notices."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.crypto import EncryptedText
from ..core.models import UTCDateTime, utcnow
from ..extensions import db

ACTIVITY_TYPES = ("workshop", "community_meeting", "radio", "materials", "social_media", "other")
GROUPS = ("in_transit", "returnees", "host_community", "indigenous", "disabilities", "children", "women",
          "lgbtiq", "other")
SEX_FIELDS = ("women", "men", "sex_other")
AGE_FIELDS = ("age_under_13", "age_13_17", "age_18_59", "age_60_plus")

#: The IFRC community feedback framework's types, in its order.
TYPES = ("question", "request", "concern", "praise", "observation", "incomplete")
CRITICALITIES = ("urgent", "action", "none")
ITEM_STATUSES = ("new", "under_review", "referred", "answered", "closed")
#: Where an item came from: a reply to us, a poll answer kept as free text, or a partner report's field.
SOURCES = ("message", "poll", "partner_question", "partner_rumour", "partner_suggestion")
PARTNER_SOURCES = {"questions_heard": "partner_question", "rumours_heard": "partner_rumour",
                   "suggestions": "partner_suggestion"}


class PartnerReport(db.Model):
    """What a partner organisation reports after a community activity.

    Reach is counted twice, by sex and by age band; each breakdown adds up to the total. Free texts are
    encrypted (people may be named in them); the protection concern's text is for administrators only.
    ``submission_token`` is minted when the form is shown: a resubmission after a dropped connection
    carries the same token and finds the report already stored."""

    __tablename__ = "partner_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(sa.ForeignKey("partner_organisation.id", ondelete="CASCADE"),
                                            index=True)
    submission_token: Mapped[str] = mapped_column(sa.String(64), unique=True)
    source: Mapped[str] = mapped_column(sa.String(16), default="form")  # form | api
    activity_date: Mapped[date] = mapped_column(sa.Date, index=True)
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    admin_area: Mapped[str] = mapped_column(sa.String(80), default="")  # first administrative level
    locality: Mapped[str] = mapped_column(sa.String(200), default="")
    activity_type: Mapped[str] = mapped_column(sa.String(20))
    activity_other: Mapped[str] = mapped_column(sa.String(200), default="")
    campaign_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
    materials: Mapped[str] = mapped_column(sa.String(500), default="")
    participants: Mapped[int] = mapped_column(sa.Integer, default=0)
    women: Mapped[int] = mapped_column(sa.Integer, default=0)
    men: Mapped[int] = mapped_column(sa.Integer, default=0)
    sex_other: Mapped[int] = mapped_column(sa.Integer, default=0)  # other or not stated
    age_under_13: Mapped[int] = mapped_column(sa.Integer, default=0)
    age_13_17: Mapped[int] = mapped_column(sa.Integer, default=0)
    age_18_59: Mapped[int] = mapped_column(sa.Integer, default=0)
    age_60_plus: Mapped[int] = mapped_column(sa.Integer, default=0)
    groups: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    languages: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    what_worked: Mapped[str] = mapped_column(EncryptedText, default="")
    what_did_not: Mapped[str] = mapped_column(EncryptedText, default="")
    questions_heard: Mapped[str] = mapped_column(EncryptedText, default="")
    rumours_heard: Mapped[str] = mapped_column(EncryptedText, default="")
    suggestions: Mapped[str] = mapped_column(EncryptedText, default="")
    protection_concern: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    protection_text: Mapped[str | None] = mapped_column(EncryptedText)  # administrators only
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    partner = relationship("PartnerOrganisation")
    submitted_by = relationship("User", foreign_keys=[submitted_by_id])

    __table_args__ = (
        sa.CheckConstraint("activity_type in ('workshop','community_meeting','radio','materials',"
                           "'social_media','other')", name="activity_type"),
        sa.CheckConstraint("participants >= 0 and women >= 0 and men >= 0 and sex_other >= 0 and "
                           "age_under_13 >= 0 and age_13_17 >= 0 and age_18_59 >= 0 and age_60_plus >= 0",
                           name="counts_not_negative"),
    )


class FeedbackTopic(db.Model):
    """What an item is about; administrators edit the list. Labels are data, one per UI language."""

    __tablename__ = "feedback_topic"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    labels: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict)
    position: Mapped[int] = mapped_column(sa.Integer, default=100)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    def label(self, locale: str) -> str:
        return self.labels.get(locale) or self.labels.get("en") or self.code


class CodingRule(db.Model):
    """A keyword-based suggestion: when an item's text holds ``words`` (normalised, any of them),
    suggest this type and/or topic. Administrators edit the rules; the coder decides."""

    __tablename__ = "coding_rule"

    id: Mapped[int] = mapped_column(primary_key=True)
    words: Mapped[str] = mapped_column(sa.String(300))  # comma-separated, normalised
    language: Mapped[str | None] = mapped_column(sa.String(8))  # None: any language
    type: Mapped[str | None] = mapped_column(sa.String(16))
    topic_id: Mapped[int | None] = mapped_column(sa.ForeignKey("feedback_topic.id", ondelete="CASCADE"))
    sensitive: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    built_in: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic = relationship(FeedbackTopic)


class FeedbackItem(db.Model):
    """One thing people told us, from any source, and how it was coded (IFRC community feedback
    framework): type, topic, sensitivity, criticality, status and the action that closes the loop.

    The text is a copy, encrypted; an item about a person (``contact_id``) is erased with them. A
    sensitive item is seen only by administrators and the person it is assigned to."""

    __tablename__ = "feedback_item"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(20), index=True)
    inbound_message_id: Mapped[int | None] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("inbound_message.id", ondelete="CASCADE"), unique=True)
    partner_report_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("partner_report.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contact.id", ondelete="CASCADE"), index=True)
    partner_id: Mapped[int | None] = mapped_column(sa.Integer)
    text: Mapped[str] = mapped_column(EncryptedText, default="")
    country: Mapped[str] = mapped_column(sa.String(2), index=True)
    language: Mapped[str | None] = mapped_column(sa.String(8))
    channel: Mapped[str | None] = mapped_column(sa.String(16))  # sms | whatsapp | partner
    campaign_id: Mapped[int | None] = mapped_column(sa.Integer, index=True)
    step_id: Mapped[int | None] = mapped_column(sa.Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    suggested_type: Mapped[str | None] = mapped_column(sa.String(16))
    suggested_topic_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("feedback_topic.id", ondelete="SET NULL"))
    suggested_sensitive: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    type: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    topic_id: Mapped[int | None] = mapped_column(sa.ForeignKey("feedback_topic.id", ondelete="SET NULL"),
                                                 index=True)
    sensitive: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    criticality: Mapped[str] = mapped_column(sa.String(10), default="none")
    status: Mapped[str] = mapped_column(sa.String(16), default="new", index=True)
    loop_action: Mapped[str] = mapped_column(sa.Text, default="")  # how we close the loop, in our words
    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"),
                                                       index=True)
    coded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    coded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    topic = relationship(FeedbackTopic, foreign_keys=[topic_id])
    suggested_topic = relationship(FeedbackTopic, foreign_keys=[suggested_topic_id])
    assigned_to = relationship("User", foreign_keys=[assigned_to_id])
    coded_by = relationship("User", foreign_keys=[coded_by_id])
    contact = relationship("Contact")

    __table_args__ = (
        sa.CheckConstraint("source in ('message','poll','partner_question','partner_rumour','partner_suggestion')",
                           name="source"),
        sa.CheckConstraint("type is null or type in ('question','request','concern','praise','observation',"
                           "'incomplete')", name="type"),
        sa.CheckConstraint("criticality in ('urgent','action','none')", name="criticality"),
        sa.CheckConstraint("status in ('new','under_review','referred','answered','closed')", name="status"),
        sa.UniqueConstraint("partner_report_id", "source", name="feedback_item_once_per_report_field"),
    )


class Notice(db.Model):
    """Something administrators must look at (a protection concern reported by a partner). Carries ids
    only; the text stays where it is protected."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    target_type: Mapped[str] = mapped_column(sa.String(40))
    target_id: Mapped[int] = mapped_column(sa.Integer)
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
