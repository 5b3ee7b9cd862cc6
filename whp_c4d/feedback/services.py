"""The feedback queue: items filed from people's replies and partner reports (with the codebook's
suggestions, see ``codebook``), who may see what (sensitive items), and coding one by one or in bulk.

Item text is personal data: decrypted only for the rows a page shows, never logged, never audited."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from ..auth.models import User
from ..auth.services import audit
from ..core import retention
from ..core.database import id_arg
from ..core.errors import MESSAGES, ServiceError
from ..core.models import utcnow
from ..core.signals import contact_erasing, feedback_received
from ..extensions import db
from ..inbound.models import InboundMessage
from .codebook import SENSITIVE_TYPES, Suggestion, active_rules, apply_suggestion, suggest  # noqa: F401  (re-exported)
from .models import (
    CRITICALITIES,
    ITEM_STATUSES,
    PARTNER_SOURCES,
    SOURCES,
    TYPES,
    FeedbackItem,
    FeedbackTopic,
    PartnerReport,
)

MESSAGES.update({
    "feedback_nothing_selected": _l("Select at least one item."),
    "feedback_nothing_to_change": _l("Choose at least one thing to change for the selected items."),
    "feedback_unknown_type": _l("Unknown feedback type “%(value)s”."),
    "feedback_unknown_topic": _l("Unknown or inactive topic “%(value)s”."),
    "feedback_unknown_criticality": _l("Unknown criticality “%(value)s”."),
    "feedback_unknown_status": _l("Unknown status “%(value)s”."),
    "feedback_unknown_assignee": _l("The person to assign must be an active administrator, officer or evaluator."),
    "feedback_not_visible": _l("%(count)s of the selected items are no longer visible to you; nothing was changed."),
    "rule_words_required": _l("Give at least one word or phrase."),
    "rule_built_in": _l("A rule shipped with the product can only be switched off; add your own rule instead."),
    "topic_code_taken": _l("A topic with the code “%(value)s” already exists."),
    "rule_needs_effect": _l("A rule must suggest a type, a topic or sensitivity."),
})

TYPE_LABELS = {
    "question": _l("Question"),
    "request": _l("Request or suggestion"),
    "concern": _l("Report of a concern or incident"),
    "praise": _l("Encouragement or praise"),
    "observation": _l("Observation, perception or belief"),
    "incomplete": _l("Incomplete"),
}
CRITICALITY_LABELS = {"urgent": _l("Urgent"), "action": _l("Action needed"), "none": _l("None")}
STATUS_LABELS = {"new": _l("New"), "under_review": _l("Under review"), "referred": _l("Referred"),
                 "answered": _l("Answered"), "closed": _l("Closed")}
SOURCE_LABELS = {"message": _l("Message"), "poll": _l("Poll answer (free text)"),
                 "partner_question": _l("Partner: question heard"),
                 "partner_rumour": _l("Partner: rumour heard"),
                 "partner_suggestion": _l("Partner: suggestion")}
#: Roles that code feedback and may be assigned items.
CODER_ROLES = ("admin", "officer", "evaluator")

# Numbers people write into their messages ("llámame al +502 5555 0123") are masked wherever items are
# shown or exported: the queue is read by people who must never see a phone number.
_NUMBER_IN_TEXT = re.compile(r"\+?\d[\d \-().]{6,}\d")


def mask_numbers(text: str | None) -> str:
    return _NUMBER_IN_TEXT.sub("[…]", text or "")


# --- filing items ------------------------------------------------------------------------------------

def file_inbound(message: InboundMessage) -> FeedbackItem | None:
    """Add a message understood as feedback to the queue (once per message)."""
    if message.id is not None and db.session.scalar(
            sa.select(FeedbackItem.id).where(FeedbackItem.inbound_message_id == message.id)):
        return None
    from ..campaigns.models import Step

    step_kind = db.session.scalar(sa.select(Step.kind).where(Step.id == message.step_id)) if message.step_id else None
    item = FeedbackItem(
        source="poll" if step_kind == "poll" else "message", inbound_message_id=message.id,
        contact_id=message.contact_id, text=message.body or "", country=message.country,
        language=message.language, channel=message.channel, campaign_id=message.campaign_id,
        step_id=message.step_id, received_at=message.received_at or utcnow(), updated_at=utcnow())
    apply_suggestion(item)
    db.session.add(item)
    db.session.flush()
    return item


@feedback_received.connect
def _on_feedback(_sender: Any, *, message: InboundMessage, **_kw: Any) -> None:
    file_inbound(message)


def collect_inbound(limit: int = 1000) -> int:
    """File feedback messages that have no item yet (stored before this queue existed, or filed by a
    process that died in between). Idempotent; the worker runs it."""
    missing = db.session.scalars(
        sa.select(InboundMessage).where(
            InboundMessage.kind == "feedback",
            ~sa.exists().where(FeedbackItem.inbound_message_id == InboundMessage.id))
        .order_by(InboundMessage.id).limit(limit)).all()
    for message in missing:
        file_inbound(message)
    return len(missing)


def sync_partner_items(report: PartnerReport) -> None:
    """One item per filled field of questions, rumours and suggestions heard. A corrected text updates
    its item (its coding is kept); a field emptied removes an item nobody has coded yet."""
    existing = {i.source: i for i in db.session.scalars(
        sa.select(FeedbackItem).where(FeedbackItem.partner_report_id == report.id))}
    rules = active_rules()
    for field, source in PARTNER_SOURCES.items():
        text = (getattr(report, field) or "").strip()
        item = existing.get(source)
        if not text:
            if item is not None and item.coded_at is None:
                db.session.delete(item)
            continue
        if item is None:
            item = FeedbackItem(source=source, partner_report_id=report.id, partner_id=report.partner_id,
                                channel="partner")
            db.session.add(item)
        elif item.text == text and item.country == report.country:
            continue
        item.text, item.country = text, report.country
        item.language = (report.languages or [None])[0]
        item.campaign_id = (report.campaign_ids or [None])[0]
        item.received_at = datetime.combine(report.activity_date, time(12), tzinfo=UTC)
        item.updated_at = utcnow()
        apply_suggestion(item, rules)
        if source == "partner_rumour" and item.suggested_type is None:
            item.suggested_type = "observation"  # a rumour heard is an observation, perception or belief
    db.session.flush()


# --- who sees what -----------------------------------------------------------------------------------

def visible_items(user: User) -> sa.Select:
    """Items ``user`` may see: everything for administrators; for others, sensitive ones only when
    assigned to them. Officers limited to some countries see those countries' items."""
    q = sa.select(FeedbackItem)
    if user.role != "admin":
        q = q.where(sa.or_(FeedbackItem.sensitive.is_(False), FeedbackItem.assigned_to_id == user.id))
        if user.role == "officer" and user.countries:
            q = q.where(FeedbackItem.country.in_(user.countries))
    return q


def visible_item(user: User, item_id: int) -> FeedbackItem | None:
    return db.session.scalar(visible_items(user).where(FeedbackItem.id == item_id))


def coders() -> list[User]:
    return list(db.session.scalars(sa.select(User).where(User.active.is_(True), User.role.in_(CODER_ROLES))
                                   .order_by(User.name)))


# --- the queue -----------------------------------------------------------------------------------------

PAGE_SIZES = (50, 100, 200)
UNCODED = "uncoded"


@dataclass
class QueueFilters:
    """The queue's filters, from the URL so that a view can be shared."""

    status: str | None = None
    type: str | None = None  # a type, or UNCODED
    topic_id: int | None = None
    source: str | None = None
    country: str | None = None
    language: str | None = None
    campaign_id: int | None = None
    criticality: str | None = None
    mine: bool = False
    sensitive: bool = False
    per_page: int = PAGE_SIZES[0]

    @classmethod
    def from_args(cls, args) -> QueueFilters:
        def one_of(name: str, allowed) -> str | None:
            value = (args.get(name) or "").strip()
            return value if value in allowed else None

        per_page = args.get("per_page", PAGE_SIZES[0], type=int)
        return cls(status=one_of("status", ITEM_STATUSES), type=one_of("type", (*TYPES, UNCODED)),
                   topic_id=args.get("topic", type=id_arg), source=one_of("source", SOURCES),
                   country=(args.get("country") or "").strip().upper()[:2] or None,
                   language=(args.get("language") or "").strip().lower()[:8] or None,
                   campaign_id=args.get("campaign", type=id_arg), criticality=one_of("criticality", CRITICALITIES),
                   mine=args.get("mine") == "1", sensitive=args.get("sensitive") == "1",
                   per_page=per_page if per_page in PAGE_SIZES else PAGE_SIZES[0])

    @property
    def active(self) -> bool:
        return any((self.status, self.type, self.topic_id, self.source, self.country, self.language,
                    self.campaign_id, self.criticality, self.mine, self.sensitive))

    def apply(self, q: sa.Select, user: User) -> sa.Select:
        f = FeedbackItem
        if self.status:
            q = q.where(f.status == self.status)
        if self.type == UNCODED:
            q = q.where(f.type.is_(None))
        elif self.type:
            q = q.where(f.type == self.type)
        if self.topic_id:
            q = q.where(f.topic_id == self.topic_id)
        if self.source:
            q = q.where(f.source == self.source)
        if self.country:
            q = q.where(f.country == self.country)
        if self.language:
            q = q.where(f.language == self.language)
        if self.campaign_id:
            q = q.where(f.campaign_id == self.campaign_id)
        if self.criticality:
            q = q.where(f.criticality == self.criticality)
        if self.mine:
            q = q.where(f.assigned_to_id == user.id)
        if self.sensitive:
            q = q.where(f.sensitive.is_(True))
        return q


def queue(user: User, filters: QueueFilters, page: int = 1) -> tuple[list[FeedbackItem], int, bool]:
    """One page of the queue, newest first: items, how many match, whether there is a next page."""
    q = filters.apply(visible_items(user), user)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(q.order_by(None).subquery()))
    rows = list(db.session.scalars(
        q.options(sa.orm.selectinload(FeedbackItem.contact), sa.orm.selectinload(FeedbackItem.topic),
                  sa.orm.selectinload(FeedbackItem.suggested_topic), sa.orm.selectinload(FeedbackItem.assigned_to))
        .order_by(FeedbackItem.received_at.desc(), FeedbackItem.id.desc())
        .offset((page - 1) * filters.per_page).limit(filters.per_page + 1)))
    return rows[:filters.per_page], total or 0, len(rows) > filters.per_page


def queue_counts(user: User) -> dict[str, int]:
    """What waits for the coders: uncoded items, urgent ones not closed, items assigned to ``user``."""
    q = visible_items(user).subquery()
    row = db.session.execute(sa.select(
        sa.func.count().filter(q.c.type.is_(None)),
        sa.func.count().filter(q.c.criticality == "urgent", q.c.status.not_in(("answered", "closed"))),
        sa.func.count().filter(q.c.assigned_to_id == user.id, q.c.status.not_in(("answered", "closed"))),
    ).select_from(q)).one()
    return {"uncoded": row[0], "urgent": row[1], "mine": row[2]}


# --- coding ------------------------------------------------------------------------------------------

_UNSET: Any = object()


@dataclass
class Coding:
    """What to set on items; fields left ``_UNSET`` are not changed. ``assigned_to_id=None`` unassigns."""

    type: Any = _UNSET
    topic_id: Any = _UNSET
    sensitive: Any = _UNSET
    criticality: Any = _UNSET
    status: Any = _UNSET
    loop_action: Any = _UNSET
    assigned_to_id: Any = _UNSET
    use_suggestion: bool = False

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not _UNSET and k != "use_suggestion"}


def _check(coding: Coding) -> None:
    ch = coding.changes()
    if ch.get("type") not in (None, *TYPES) and "type" in ch:
        raise ServiceError("feedback_unknown_type", value=ch["type"])
    if ch.get("topic_id") is not None:
        if not db.session.scalar(sa.select(FeedbackTopic.id).where(FeedbackTopic.id == ch["topic_id"],
                                                                   FeedbackTopic.active.is_(True))):
            raise ServiceError("feedback_unknown_topic", value=ch["topic_id"])
    if "criticality" in ch and ch["criticality"] not in CRITICALITIES:
        raise ServiceError("feedback_unknown_criticality", value=ch["criticality"])
    if "status" in ch and ch["status"] not in ITEM_STATUSES:
        raise ServiceError("feedback_unknown_status", value=ch["status"])
    if ch.get("assigned_to_id") is not None:
        ok = db.session.scalar(sa.select(User.id).where(User.id == ch["assigned_to_id"], User.active.is_(True),
                                                        User.role.in_(CODER_ROLES)))
        if not ok:
            raise ServiceError("feedback_unknown_assignee")


def code_items(user: User, item_ids: Iterable[int], coding: Coding, *, ip: str | None = None) -> int:
    """Code the given items the same way (one, or a bulk selection), all or nothing. Items the user can
    no longer see refuse the whole change. Coding an item sensitive while nobody is assigned assigns it
    to the coder, who would otherwise lose sight of what they just read. Returns how many changed."""
    ids = sorted({int(i) for i in item_ids})
    if not ids:
        raise ServiceError("feedback_nothing_selected")
    if not coding.changes() and not coding.use_suggestion:
        raise ServiceError("feedback_nothing_to_change")
    _check(coding)
    items = list(db.session.scalars(visible_items(user).where(FeedbackItem.id.in_(ids))))
    if len(items) != len(ids):
        raise ServiceError("feedback_not_visible", count=len(ids) - len(items))
    now = utcnow()
    changes = coding.changes()
    for item in items:
        if coding.use_suggestion:
            if item.suggested_type and "type" not in changes:
                item.type = item.suggested_type
            if item.suggested_topic_id and "topic_id" not in changes:
                item.topic_id = item.suggested_topic_id
            if item.suggested_sensitive and "sensitive" not in changes:
                item.sensitive = True
        for name, value in changes.items():
            setattr(item, name, value)
        if item.type in SENSITIVE_TYPES:  # always, whatever the form said
            item.sensitive = True
        if item.sensitive and item.assigned_to_id is None and user.role != "admin":
            item.assigned_to_id = user.id
        if item.status == "new" and "status" not in changes and (item.type or item.topic_id):
            item.status = "under_review"
        item.coded_by_id, item.coded_at, item.updated_at = user.id, now, now
    db.session.flush()
    audit("feedback.coded", user, target_type="feedback_item", target_id=ids[0] if len(ids) == 1 else None, ip=ip,
          count=len(ids), ids=ids[:200], fields=sorted(changes) + (["suggestion"] if coding.use_suggestion else []))
    return len(items)


# --- erasure and retention ---------------------------------------------------------------------------

@contact_erasing.connect
def _erase_items(_sender: Any, *, contact_id: int, **_kw: Any) -> None:
    db.session.execute(sa.delete(FeedbackItem).where(FeedbackItem.contact_id == contact_id)
                       .execution_options(synchronize_session=False))


def _purge_items(cutoff: datetime) -> int:
    result = db.session.execute(sa.delete(FeedbackItem).where(FeedbackItem.received_at < cutoff,
                                                              FeedbackItem.partner_report_id.is_(None))
                                .execution_options(synchronize_session=False))
    return result.rowcount or 0


def _purge_reports(cutoff: datetime) -> int:
    result = db.session.execute(sa.delete(PartnerReport).where(PartnerReport.created_at < cutoff)
                                .execution_options(synchronize_session=False))
    return result.rowcount or 0


retention.register(retention.DataKind(
    "feedback_items", lambda: _l("Feedback items from people's messages (with their coding)"), 730,
    _purge_items, 30))
retention.register(retention.DataKind(
    "partner_reports", lambda: _l("Partner activity reports (and the feedback items filed from them)"), 1825,
    _purge_reports, 90))
