"""The officers' inbox: conversations grouped by contact (in SQL), the thread of one person, marking
read and handled, and manual replies queued through the outbox.

Scoping is always ``audience.services.visible_contacts(user)``: a limited officer neither counts nor
opens other countries' conversations. Message text is personal data: it is decrypted only for the rows
a page shows, never logged, never put in an audit event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l

from ..audience.models import Contact
from ..audience.services import visible_contacts
from ..auth.models import User
from ..auth.services import audit
from ..campaigns.models import Campaign
from ..core.database import id_arg
from ..core.errors import ServiceError
from ..core.models import utcnow
from ..extensions import db
from ..messaging import outbox
from ..messaging.models import OutboundMessage
from ..messaging.sendability import WHATSAPP_WINDOW, whatsapp_window_open
from .models import InboundMessage

PAGE_SIZE = 50
THREAD_LIMIT = 200  # messages of each direction a thread page reads; older ones are said to exist
EXCERPT_LENGTH = 90
MAX_REPLY_LENGTH = 1600  # Twilio's limit for one message body
DOUBLE_SUBMIT = timedelta(seconds=60)  # the same text to the same person again this soon: one message
KINDS = ("keyword", "feedback", "answer", "menu")
CHANNEL_LABELS = {"sms": "SMS", "whatsapp": "WhatsApp"}

REFUSALS = {
    "empty": _l("Write the reply first."),
    "never_wrote": _l("This person has never written to us. The inbox only answers people who wrote first; "
                      "reach others with a campaign."),
    "no_number": _l("This person has no current phone number."),
    "no_channel": _l("This person does not use %(channel)s."),
    "opted_out": _l("This person opted out of %(channel)s on %(date)s and has not written to us there since: "
                    "we may not write to them on this channel."),
    "whatsapp_never": _l("This person has never written to us on WhatsApp, so free text cannot be sent there: "
                         "outside the 24-hour window after their last message WhatsApp only delivers "
                         "pre-approved templates, which go out with campaigns."),
    "whatsapp_window_closed": _l("The 24-hour WhatsApp window closed at %(time)s (24 hours after the person's "
                                 "last WhatsApp message). Outside it WhatsApp only delivers pre-approved "
                                 "templates, which go out with campaigns."),
}


class ReplyRefused(ServiceError):
    """Why a manual reply cannot go on a channel; the text is translated when it is read."""

    @property
    def message(self) -> str:
        params = {k: (format_datetime(v, "short") if isinstance(v, datetime) else v) for k, v in self.params.items()}
        return str(REFUSALS[self.code]) % params if params else str(REFUSALS[self.code])


# --- the conversation list ---------------------------------------------------------------------------

@dataclass(frozen=True)
class InboxFilters:
    campaign_id: int | None = None
    country: str | None = None
    language: str | None = None
    kind: str | None = None
    flagged: bool = False
    unhandled: bool = False

    @classmethod
    def from_args(cls, args) -> InboxFilters:
        kind = args.get("kind") or None
        country = (args.get("country") or "").strip().upper()[:2] or None
        language = (args.get("language") or "").strip().lower()[:8] or None
        return cls(campaign_id=args.get("campaign", type=id_arg), country=country, language=language,
                   kind=kind if kind in KINDS else None, flagged=args.get("flagged") == "1",
                   unhandled=args.get("unhandled") == "1")

    @property
    def active(self) -> bool:
        return any((self.campaign_id, self.country, self.language, self.kind, self.flagged, self.unhandled))


@dataclass
class Conversation:
    contact: Contact
    last_at: datetime
    total: int
    unread: int
    unhandled: int
    keywords: int
    feedback: int
    flagged: int
    channels: list[str]
    last: InboundMessage | None = None

    @property
    def excerpt(self) -> str:
        return excerpt(self.last)


def excerpt(message: InboundMessage | None, length: int = EXCERPT_LENGTH) -> str:
    if message is None:
        return ""
    text = " ".join((message.body or "").split())
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def _count(condition) -> sa.ColumnElement[int]:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def _scope(user: User):
    """The WHERE clause of the contacts this user may see (None: all of them)."""
    return visible_contacts(user).whereclause


def conversation_query(user: User, filters: InboxFilters) -> sa.Select:
    """Per contact who wrote to us (and whom ``user`` may see): last message time and counts, in one
    grouped query. Filters on messages keep a conversation when any of its messages matches (HAVING).
    The inbox and the API both page over it."""
    m = InboundMessage
    agg = (sa.select(
        m.contact_id.label("contact_id"),
        sa.func.max(m.received_at).label("last_at"),
        sa.func.count(m.id).label("total"),
        _count(m.read_at.is_(None)).label("unread"),
        _count(m.handled_at.is_(None)).label("unhandled"),
        _count(m.kind == "keyword").label("keywords"),
        _count(m.kind == "feedback").label("feedback"),
        _count(m.flag.is_not(None)).label("flagged"),
        _count(sa.and_(m.flag.is_not(None), m.handled_at.is_(None))).label("flagged_open"),
        _count(m.channel == "sms").label("sms"),
        _count(m.channel == "whatsapp").label("whatsapp"),
    ).join(Contact, Contact.id == m.contact_id).group_by(m.contact_id))
    scope = _scope(user)
    if scope is not None:
        agg = agg.where(scope)
    if filters.country:
        agg = agg.where(Contact.country == filters.country)
    if filters.language:
        agg = agg.where(Contact.language == filters.language)
    if filters.campaign_id:
        agg = agg.having(_count(m.campaign_id == filters.campaign_id) > 0)
    if filters.kind:
        agg = agg.having(_count(m.kind == filters.kind) > 0)
    if filters.flagged:
        agg = agg.having(_count(m.flag.is_not(None)) > 0)
    if filters.unhandled:
        agg = agg.having(_count(m.handled_at.is_(None)) > 0)
    return agg


def conversations(user: User, filters: InboxFilters, page: int = 1,
                  page_size: int = PAGE_SIZE) -> tuple[list[Conversation], int, bool]:
    """One row per contact who wrote to us, newest last message first: (rows, total, more pages).
    Only the page's last messages are loaded and decrypted."""
    agg = conversation_query(user, filters)
    sub = agg.subquery()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(sub)) or 0
    page = max(page, 1)
    rows = db.session.execute(
        sa.select(Contact, sub).join(sub, sub.c.contact_id == Contact.id)
        .order_by(sub.c.last_at.desc(), Contact.id.desc())
        .limit(page_size + 1).offset((page - 1) * page_size)).all()
    more = len(rows) > page_size
    result = [Conversation(contact=r.Contact, last_at=r.last_at, total=r.total, unread=r.unread,
                           unhandled=r.unhandled, keywords=r.keywords, feedback=r.feedback, flagged=r.flagged,
                           channels=[c for c in ("sms", "whatsapp") if getattr(r, c)])
              for r in rows[:page_size]]
    last = last_messages([c.contact.id for c in result])
    for c in result:
        c.last = last.get(c.contact.id)
    return result, total, more


def last_messages(contact_ids: list[int]) -> dict[int, InboundMessage]:
    """Each contact's most recent inbound message (one query with a window function)."""
    if not contact_ids:
        return {}
    m = InboundMessage
    rank = sa.func.row_number().over(partition_by=m.contact_id,
                                     order_by=(m.received_at.desc(), m.id.desc())).label("rank")
    ranked = sa.select(m.id, rank).where(m.contact_id.in_(contact_ids)).subquery()
    rows = db.session.scalars(sa.select(m).where(m.id.in_(sa.select(ranked.c.id).where(ranked.c.rank == 1))))
    return {row.contact_id: row for row in rows}


def unread_count(user: User) -> int:
    """Unread inbound messages the user may see: one COUNT, for the navigation."""
    m = InboundMessage
    q = sa.select(sa.func.count(m.id)).where(m.read_at.is_(None))
    scope = _scope(user)
    if scope is not None:
        q = q.join(Contact, Contact.id == m.contact_id).where(scope)
    return db.session.scalar(q) or 0


def campaign_choices() -> list[tuple[int, str]]:
    return [(r.id, r.name) for r in db.session.execute(
        sa.select(Campaign.id, Campaign.name).where(Campaign.status != "draft").order_by(Campaign.name))]


# --- one conversation ----------------------------------------------------------------------------------

@dataclass
class ThreadItem:
    direction: str  # "in" (the person wrote) or "out" (we sent)
    at: datetime
    channel: str
    inbound: InboundMessage | None = None
    outbound: OutboundMessage | None = None

    @property
    def manual(self) -> bool:
        return self.outbound is not None and self.outbound.occurrence.startswith("manual:")


def has_written(contact: Contact) -> bool:
    return db.session.scalar(
        sa.select(InboundMessage.id).where(InboundMessage.contact_id == contact.id).limit(1)) is not None


def thread(contact: Contact, limit: int = THREAD_LIMIT) -> tuple[list[ThreadItem], bool]:
    """The person's messages and ours, oldest first (the latest ``limit``), and whether older ones exist."""
    m, o = InboundMessage, OutboundMessage
    inbound = db.session.scalars(sa.select(m).where(m.contact_id == contact.id)
                                 .order_by(m.received_at.desc(), m.id.desc()).limit(limit + 1)).all()
    out_at = sa.func.coalesce(o.sent_at, o.created_at)
    outbound = db.session.scalars(sa.select(o).where(o.contact_id == contact.id)
                                  .order_by(out_at.desc(), o.id.desc()).limit(limit + 1)).all()
    items = [ThreadItem("in", r.received_at, r.channel, inbound=r) for r in inbound[:limit]]
    items += [ThreadItem("out", r.sent_at or r.created_at, r.sent_channel or r.channel, outbound=r)
              for r in outbound[:limit]]
    items.sort(key=lambda i: (i.at, 0 if i.direction == "in" else 1))
    older = len(inbound) > limit or len(outbound) > limit or len(items) > limit
    return items[-limit:], older


def campaign_names(items: list[ThreadItem]) -> dict[int, str]:
    ids = {(i.inbound or i.outbound).campaign_id for i in items} - {None}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(Campaign.id, Campaign.name).where(Campaign.id.in_(ids))).all())


def mark_read(contact: Contact, now: datetime | None = None) -> int:
    """Opening a conversation reads it: one UPDATE of its unread messages."""
    result = db.session.execute(
        sa.update(InboundMessage).where(InboundMessage.contact_id == contact.id, InboundMessage.read_at.is_(None))
        .values(read_at=now or utcnow()).execution_options(synchronize_session=False))
    return result.rowcount or 0


def mark_handled(contact: Contact, actor: User, now: datetime | None = None) -> int:
    """Set handled (and read) on the person's unhandled messages; audited with the count only."""
    now = now or utcnow()
    m = InboundMessage
    result = db.session.execute(
        sa.update(m).where(m.contact_id == contact.id, m.handled_at.is_(None))
        .values(handled_at=now, handled_by_id=actor.id, read_at=sa.func.coalesce(m.read_at, now))
        .execution_options(synchronize_session=False))
    count = result.rowcount or 0
    if count:
        audit("inbox.handled", actor, target_type="contact", target_id=contact.id, messages=count)
    return count


def handlers(items: list[ThreadItem]) -> dict[int, str]:
    ids = {i.inbound.handled_by_id for i in items if i.inbound is not None} - {None}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.name).where(User.id.in_(ids))).all())


# --- manual replies ------------------------------------------------------------------------------------

@dataclass
class ChannelOption:
    channel: str
    refusal: ReplyRefused | None = None
    window_until: datetime | None = None  # WhatsApp: free text may go until then
    window_closed_at: datetime | None = None  # WhatsApp: ...or could until then

    @property
    def allowed(self) -> bool:
        return self.refusal is None

    @property
    def label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)


def reply_options(contact: Contact, now: datetime | None = None, *, written: bool | None = None) -> list[ChannelOption]:
    """For each channel the person uses: may an officer write free text there now, and if not, why."""
    now = now or utcnow()
    if written is None:
        written = has_written(contact)
    options = []
    for state in sorted(contact.channels, key=lambda s: s.channel != "whatsapp"):  # WhatsApp first, as sending
        option = ChannelOption(state.channel)
        label = CHANNEL_LABELS.get(state.channel, state.channel)
        window_open = False
        if state.channel == "whatsapp" and state.last_inbound_at is not None:
            window_open = whatsapp_window_open(contact, now)
            if window_open:
                option.window_until = state.last_inbound_at + WHATSAPP_WINDOW
            else:
                option.window_closed_at = state.last_inbound_at + WHATSAPP_WINDOW
        if not written:
            option.refusal = ReplyRefused("never_wrote")
        elif contact.current_number is None:
            option.refusal = ReplyRefused("no_number")
        elif state.opted_out_at is not None and (state.last_inbound_at is None
                                                 or state.last_inbound_at <= state.opted_out_at):
            option.refusal = ReplyRefused("opted_out", channel=label, date=state.opted_out_at)
        elif state.channel == "whatsapp" and not window_open:
            option.refusal = (ReplyRefused("whatsapp_window_closed", time=option.window_closed_at)
                              if option.window_closed_at else ReplyRefused("whatsapp_never"))
        options.append(option)
    return options


def queue_manual_reply(contact: Contact, channel: str, text: str, actor: User, *, now: datetime | None = None,
                       ip: str | None = None) -> OutboundMessage:
    """Put an officer's answer in the outbox (``purpose="reply"``: it relies on no campaign consent, the
    person wrote to us), due now, valid one hour. Refused with a reason a person can act on. The same text
    to the same person on the same channel again within a minute (a double click) is the same message.
    Audited without the text. The caller commits."""
    now = now or utcnow()
    text = (text or "").strip()
    if not text:
        raise ReplyRefused("empty")
    if len(text) > MAX_REPLY_LENGTH:
        raise ServiceError("value_too_long", max=MAX_REPLY_LENGTH)
    option = next((o for o in reply_options(contact, now) if o.channel == channel), None)
    if option is None:
        if not has_written(contact):
            raise ReplyRefused("never_wrote")
        raise ReplyRefused("no_channel", channel=CHANNEL_LABELS.get(channel, channel))
    if option.refusal is not None:
        raise option.refusal
    o = OutboundMessage
    same = db.session.scalar(sa.select(o).where(
        o.contact_id == contact.id, o.purpose == "reply", o.channel == channel, o.occurrence.like("manual:%"),
        o.created_at >= now - DOUBLE_SUBMIT, o.body == text).order_by(o.id.desc()).limit(1))
    if same is not None:
        return same
    last = db.session.scalar(sa.select(InboundMessage).where(InboundMessage.contact_id == contact.id)
                             .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc()).limit(1))
    row = outbox.enqueue_reply(contact, channel, text, kind="manual", occurrence=f"manual:{last.id if last else 0}",
                               campaign_id=last.campaign_id if last else None, now=now)
    if row is None:  # the outbox's own rule, should the checks above ever disagree with it
        state = contact.channel(channel)
        raise ReplyRefused("opted_out", channel=CHANNEL_LABELS.get(channel, channel), date=state.opted_out_at)
    audit("inbox.replied", actor, target_type="contact", target_id=contact.id, ip=ip, channel=channel,
          message_id=row.id, segments=row.segments)
    return row
