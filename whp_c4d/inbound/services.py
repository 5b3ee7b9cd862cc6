"""What happens when a person writes to us: store the message once, find or create the contact,
understand it (opt-out first, then an open poll or menu, then keywords, else feedback) and answer
through the outbox, in the person's language.

``receive`` is all the webhook does before answering Twilio: one insert, committed. ``process`` does
the rest; the webhook calls it right after (so answers go out at once) and the worker calls it for
anything a crash left ``received``. Both are idempotent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from ..audience import services as audience
from ..audience.erasure import erase_contact
from ..audience.models import Contact, ContactChannel, PhoneNumber
from ..auth.services import audit
from ..campaigns.models import Campaign, Step, StepContent
from ..campaigns.planning import render, variable_values
from ..core import phones
from ..core.crypto import keys
from ..core.database import dialect_insert
from ..core.errors import ServiceError
from ..core.models import utcnow
from ..core.signals import feedback_received
from ..extensions import db
from ..messaging import outbox
from ..messaging.models import OutboundMessage
from . import keywords as kw
from .models import ConversationState, InboundMessage, Keyword, PollResponse

log = logging.getLogger(__name__)

ERASURE_CONFIRM_WITHIN = timedelta(hours=1)
ACK_EVERY = timedelta(hours=24)  # at most one automatic acknowledgement per conversation window
LOOP_WINDOW, LOOP_LIMIT = timedelta(minutes=5), 20  # identical texts from one number: then silence
DEFAULT_POLL_WINDOW_HOURS = 72  # a poll or menu without its own answer window stays open this long
REASK_MAX_WORDS = 3  # a longer message while a poll is open is feedback, not a failed answer

# The language people of a country most likely write in, when we know nothing else.
COUNTRY_LANGUAGE = {"HT": "ht", "SR": "nl", "BZ": "en", "BS": "en", "BB": "en", "JM": "en", "US": "en",
                    "CA": "en", "FR": "fr", "NL": "nl"}
# Fields of Twilio's inbound webhook we keep; everything else (ProfileName, location…) is dropped.
REQUIRED = ("MessageSid", "From")


class MalformedInbound(ValueError):
    """The request is not an inbound message we can store; the message says why (no personal data)."""


@dataclass
class Received:
    message: InboundMessage
    duplicate: bool


# --- receiving ----------------------------------------------------------------------------------------

def receive(form: Mapping[str, str], now: datetime | None = None) -> Received:
    """Store the message once per MessageSid (Twilio retries), with the contact it comes from; a number
    we do not know becomes an "inbound only" contact. The caller commits."""
    now = now or utcnow()
    # NUL is no character anyone writes, and PostgreSQL refuses it in text: dropped, so the message is kept.
    form = {k: (v or "").replace("\x00", "") for k, v in form.items()}
    sid = (form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid") or "").strip()
    sender = (form.get("From") or "").strip()
    if not sid or not sender:
        raise MalformedInbound("MessageSid and From are required")
    if len(sid) != 34 or not sid[:2].isalpha() or not sid[2:].isalnum():
        raise MalformedInbound("MessageSid is not a Twilio message SID")
    existing = db.session.scalar(sa.select(InboundMessage).where(InboundMessage.provider_sid == sid))
    if existing is not None:
        return Received(existing, True)
    channel = "whatsapp" if sender.lower().startswith("whatsapp:") else "sms"
    raw_number = sender.split(":", 1)[1] if channel == "whatsapp" else sender
    try:  # Twilio signed it: the number is somebody's phone, even one libphonenumber does not know yet
        parsed = phones.parse_as_given(raw_number, (form.get("FromCountry") or "").upper() or None)
    except phones.InvalidNumber:
        raise MalformedInbound("From is empty") from None
    try:
        num_media = max(0, min(int(form.get("NumMedia") or 0), 10))
    except ValueError:
        raise MalformedInbound("NumMedia is not a number") from None
    body = (form.get("Body") or "")[:1600]
    contact = db.session.scalar(  # the contact with its channels, in one query (any of their numbers)
        sa.select(Contact).join(PhoneNumber, PhoneNumber.contact_id == Contact.id)
        .where(PhoneNumber.blind_index == keys().blind_index(parsed.e164))
        .options(selectinload(Contact.channels)))
    if contact is None:
        contact = _new_contact(parsed, body, channel)
    media = [{"url": form.get(f"MediaUrl{i}", "")[:500], "type": form.get(f"MediaContentType{i}", "")[:100]}
             for i in range(num_media) if form.get(f"MediaUrl{i}")]
    payload = (form.get("ButtonPayload") or "").strip()[:200] or None
    message = InboundMessage(
        provider_sid=sid, contact_id=contact.id, channel=channel, to_address=(form.get("To") or "")[:64],
        body=body, text_hash=keys().blind_index("text:" + kw.normalise(payload or body)), num_media=len(media),
        media=json.dumps(media) if media else None, button_payload=payload, country=contact.country,
        received_at=now)
    db.session.add(message)
    state = contact.channel(channel)
    if state is None:
        state = ContactChannel(channel=channel, campaigns=False, polls=False)
        contact.channels.append(state)
    state.last_inbound_at = now
    audience.mark_activity(contact, now)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except sa.exc.IntegrityError:  # the same MessageSid arrived twice at once: the first one wins
        existing = db.session.scalar(sa.select(InboundMessage).where(InboundMessage.provider_sid == sid))
        if existing is None:
            raise
        return Received(existing, True)
    return Received(message, False)


def _new_contact(parsed: phones.ParsedNumber, body: str, channel: str) -> Contact:
    """Somebody we do not know: a minimal contact that receives no campaign until they opt in."""
    default = COUNTRY_LANGUAGE.get(parsed.country, "es")
    language = kw.guess_language(body, default, audience.enabled_languages(), keyword_entries())
    # A number on the suppression list (erased before) that writes again comes back as inbound only:
    # the person chose to write; they still get no campaign until they opt in.
    contact = Contact(pseudonym=audience.new_pseudonym(), status="inbound_only", language=language,
                      country=parsed.country, timezone=phones.timezone_for(parsed.e164, parsed.country))
    contact.numbers.append(PhoneNumber(e164=parsed.e164, blind_index=keys().blind_index(parsed.e164),
                                       country=parsed.country))
    db.session.add(contact)
    db.session.flush()
    audit("contact.created", None, target_type="contact", target_id=contact.id, source="inbound")
    return contact


# --- understanding -------------------------------------------------------------------------------------

def keyword_entries() -> list[kw.KeywordEntry]:
    """The active keywords, as plain tuples (read on every inbound message: no ORM objects)."""
    rows = db.session.execute(sa.select(Keyword.word, Keyword.action, Keyword.language, Keyword.value)
                              .where(Keyword.active.is_(True)).order_by(Keyword.id))
    return [kw.KeywordEntry(*row) for row in rows]


@dataclass
class OpenQuestion:
    """The poll or menu the person's last campaign message asked, while its answer window is open."""

    message: OutboundMessage
    step: Step
    campaign: Campaign


def open_question(contact: Contact, now: datetime) -> OpenQuestion | None:
    """The latest poll or menu sent to the person, if its answer window is still open (other campaign
    messages may have arrived since: the question stays open for its window)."""
    row = db.session.execute(
        sa.select(OutboundMessage, Step).join(Step, Step.id == OutboundMessage.step_id)
        .where(OutboundMessage.contact_id == contact.id, OutboundMessage.sent_at.is_not(None),
               OutboundMessage.purpose != "reply", Step.kind.in_(("poll", "menu")))
        .order_by(OutboundMessage.sent_at.desc(), OutboundMessage.id.desc()).limit(1)).first()
    if row is None:
        return None
    last, step = row
    hours = step.answer_window_hours or DEFAULT_POLL_WINDOW_HOURS
    if now - last.sent_at > timedelta(hours=hours):
        return None
    return OpenQuestion(last, step, step.campaign)


def _choices(step: Step) -> list[kw.Choice]:
    words: dict[int, list[str]] = {}
    for content in step.contents:
        for opt in content.options or []:
            n = opt.get("number")
            if isinstance(n, int):
                words.setdefault(n, []).extend([opt.get("label") or "", *(opt.get("words") or [])])
    return [kw.Choice(n, tuple(w for w in ws if w)) for n, ws in sorted(words.items())]


@dataclass(frozen=True)
class DirectReply:
    """An answer that must not be stored (the erasure confirmation): sent after the commit, from memory."""

    channel: str
    country: str
    number: str
    text: str


def process(message: InboundMessage, now: datetime | None = None) -> list[DirectReply]:
    """Understand one stored message and queue the answers. Idempotent: a processed message is left
    alone. The caller commits, then passes what this returns to ``send_direct``."""
    if message.status != "received":
        return []
    with db.session.no_autoflush:  # the reads below never need this message's pending changes
        return _process(message, now)


def _process(message: InboundMessage, now: datetime | None) -> list[DirectReply]:
    now = now or utcnow()
    contact = db.session.get(Contact, message.contact_id)
    message.status, message.processed_at = "processed", now
    if contact is None:
        return []
    conv = _conversation(contact)
    text = message.button_payload or message.body
    entries = keyword_entries()
    language = contact.language
    message.language = language

    if _looping(message, now):
        message.kind, message.answered = "ignored", False
        log.info("inbound %s: loop guard, not answered", message.id)
        return []

    # 1. An erasure waiting for its confirmation.
    if conv.erasure_requested_at is not None:
        requested, conv.erasure_requested_at = conv.erasure_requested_at, None
        erase_words = [e.word for e in entries if e.action == "erase"]
        if now - requested <= ERASURE_CONFIRM_WITHIN and kw.is_confirmation(text, erase_words):
            message.kind, message.action = "keyword", "erase"
            return _erase(contact, message, language)

    match = kw.match_keyword(text, entries)
    # 2. Stop always works first, whatever else is going on.
    if match is not None and match.action == "opt_out":
        _keyword(contact, message, match, now)
        return []
    # 3. An open poll or menu takes the answer.
    question = open_question(contact, now)
    if question is not None:
        choice = kw.parse_choice(text, _choices(question.step))
        if choice is not None:
            _answer(contact, message, question, choice, now)
            return []
    # 4. Keywords.
    if match is not None:
        _keyword(contact, message, match, now)
        return []
    # 5. A poll or menu answer we did not understand: one re-ask, then it is feedback. A sentence is
    # not an attempt at an answer ("¿esto es de verdad?…"): it is feedback at once.
    if (question is not None and conv.reasked_message_id != question.message.id
            and len(kw.normalise(text).split()) <= REASK_MAX_WORDS):
        conv.reasked_message_id = question.message.id
        message.kind, message.action = "answer", question.step.kind
        message.campaign_id, message.step_id = question.campaign.id, question.step.id
        _reply(contact, message, "reask", _text("reask", language))
        return []
    # 6. Everything else is feedback for the evaluators.
    message.kind = "feedback"
    if question is not None:
        message.campaign_id, message.step_id = question.campaign.id, question.step.id
        if question.step.kind == "poll":
            _record_response(contact, message, question, None, now)
    else:
        context = _last_campaign_message(contact)
        message.campaign_id = context.campaign_id if context else None
    if kw.mentions(text, entries, "opt_out"):
        message.flag = "possible_opt_out"
    feedback_received.send(message=message)
    if contact.status == "inbound_only" and not _has_replied_before(contact, message):
        _reply(contact, message, "welcome", _text("welcome", language))
    elif conv.last_ack_at is None or now - conv.last_ack_at >= ACK_EVERY:
        conv.last_ack_at = now
        _reply(contact, message, "ack", _text("ack", language))
    return []


def _keyword(contact: Contact, message: InboundMessage, match: kw.KeywordMatch, now: datetime) -> None:
    message.kind, message.action = "keyword", match.action
    language = contact.language
    if match.action == "opt_out":
        for state in list(contact.channels):  # every channel of this person, not only the one they used
            if state.opted_out_at is None or state.campaigns or state.polls:
                audience.record_consent(contact, state.channel, granted=False, source="keyword", actor=None)
        _reply(contact, message, "opt_out", _text("opt_out", language))
    elif match.action == "opt_in":
        audience.record_consent(contact, message.channel, granted=True, source="keyword", actor=None,
                                notice_version="keyword-" + match.language)
        _reply(contact, message, "opt_in", _text("opt_in", language))
    elif match.action == "help":
        _reply(contact, message, "help", _text("help", language, contact.country))
    elif match.action == "language" and match.value:
        try:
            contact.language = audience.check_language(match.value)
        except ServiceError:
            pass
        message.language = contact.language
        _reply(contact, message, "language", _text("language", contact.language))
    elif match.action == "erase":
        _conversation(contact).erasure_requested_at = now
        _reply(contact, message, "erase_ask", _text("erase_ask", language))
    elif match.action == "real":
        _reply(contact, message, "real", _text("real", language, contact.country))


def _answer(contact: Contact, message: InboundMessage, question: OpenQuestion, choice: int, now: datetime) -> None:
    step, language = question.step, question.message.language
    message.campaign_id, message.step_id = question.campaign.id, step.id
    content = _content(step, language)
    if step.kind == "poll":
        message.kind, message.action = "answer", "poll"
        _record_response(contact, message, question, choice, now)
        thanks = render(content.thanks, variable_values(contact.country)) if content and content.thanks else ""
        _reply(contact, message, "thanks", thanks or _text("thanks", language))
    else:
        message.kind, message.action = "menu", "menu"
        option = next((o for o in (content.options if content else []) if o.get("number") == choice), None)
        reply = render(option.get("reply"), variable_values(contact.country)) if option else ""
        if reply:
            _reply(contact, message, f"menu{choice}", reply)


def _record_response(contact: Contact, message: InboundMessage, question: OpenQuestion, choice: int | None,
                     now: datetime) -> None:
    om = question.message
    row = db.session.scalar(sa.select(PollResponse).where(
        PollResponse.step_id == om.step_id, PollResponse.occurrence == om.occurrence,
        PollResponse.contact_id == contact.id))
    if row is None:
        row = PollResponse(step_id=om.step_id, campaign_id=om.campaign_id, occurrence=om.occurrence,
                           contact_id=contact.id, created_at=now)
        db.session.add(row)
    elif choice is None and row.choice is not None:
        return  # free text after a valid answer does not undo the answer
    row.choice, row.inbound_message_id = choice, message.id
    row.language, row.country, row.channel, row.updated_at = om.language, contact.country, message.channel, now


def _erase(contact: Contact, message: InboundMessage, language: str) -> list[DirectReply]:
    """Erase at the person's request, then tell them, from memory: after erasure nothing about them
    may stay in the database, not even an outbox row holding the confirmation."""
    number = contact.current_number.e164 if contact.current_number else None
    reply = DirectReply(message.channel, contact.country, number or "", _text("erased", language))
    erase_contact(contact, None, reason="keyword")
    db.session.flush()
    return [reply] if number else []


def send_direct(replies: list[DirectReply], config) -> None:
    """Send answers that must not be stored, after the commit. A failure is logged (no number), not
    retried: there is nothing left to retry from."""
    from ..messaging.channels import SendError, channel_from_config
    from ..messaging.services import sending_address

    for reply in replies:
        sender = sending_address(reply.channel, reply.country, config)
        if sender is None:
            log.warning("erasure confirmation not sent: no %s sender", reply.channel)
            continue
        to = ("whatsapp:" if reply.channel == "whatsapp" else "") + reply.number
        try:
            channel_from_config(config).send(to=to, body=reply.text, **sender.api_fields)
        except SendError as exc:
            log.warning("erasure confirmation not sent: %s", exc.kind)


def _conversation(contact: Contact) -> ConversationState:
    """The contact's conversation state, created once even when two of their messages are understood
    at the same moment in two web processes."""
    conv = db.session.get(ConversationState, contact.id)
    if conv is None:
        db.session.execute(dialect_insert(ConversationState.__table__).values(contact_id=contact.id)
                           .on_conflict_do_nothing())
        conv = db.session.get(ConversationState, contact.id)
    return conv


def _looping(message: InboundMessage, now: datetime) -> bool:
    same = db.session.scalar(sa.select(sa.func.count()).select_from(InboundMessage).where(
        InboundMessage.contact_id == message.contact_id, InboundMessage.text_hash == message.text_hash,
        InboundMessage.received_at >= now - LOOP_WINDOW))
    return (same or 0) > LOOP_LIMIT


def _last_campaign_message(contact: Contact) -> OutboundMessage | None:
    return db.session.scalar(
        sa.select(OutboundMessage).where(OutboundMessage.contact_id == contact.id,
                                         OutboundMessage.campaign_id.is_not(None),
                                         OutboundMessage.sent_at.is_not(None))
        .order_by(OutboundMessage.sent_at.desc()).limit(1))


def _has_replied_before(contact: Contact, message: InboundMessage) -> bool:
    return bool(db.session.scalar(sa.select(OutboundMessage.id).where(
        OutboundMessage.contact_id == contact.id, OutboundMessage.purpose == "reply").limit(1)))


def _content(step: Step, language: str) -> StepContent | None:
    by_lang = {c.language: c for c in step.contents}
    return by_lang.get(language) or next(iter(by_lang.values()), None)


# --- answering -----------------------------------------------------------------------------------------

def _reply(contact: Contact, message: InboundMessage, kind: str, text: str) -> None:
    """Queue an answer on the channel the person wrote on, due now, in the outbox (so it is paced,
    tracked and reconciled like any message). Replies rely on no campaign consent: the person just
    wrote to us. After an opt-out the outbox queues only what the person explicitly asked for (the
    confirmation, help, joining again…), never an automatic thank-you or acknowledgement."""
    if not text:
        return
    outbox.enqueue_reply(contact, message.channel, text, kind=kind, occurrence=f"r{message.id}:{kind}",
                         campaign_id=message.campaign_id, language=message.language or contact.language)


# Programme-wide words a reply names: the keyword to stop and to join, in each language.
STOP_WORD = {"es": "BAJA", "en": "STOP", "fr": "ARRET", "ht": "SISPANN", "nl": "STOPPEN"}
JOIN_WORD = {"es": "ALTA", "en": "START", "fr": "COMMENCER", "ht": "KOMANSE", "nl": "AANMELDEN"}
YES_WORD = {"es": "SI", "en": "YES", "fr": "OUI", "ht": "WI", "nl": "JA"}


def _text(kind: str, language: str, country: str | None = None) -> str:
    """A reply in the person's language (the UI catalogs hold them, complete in all five)."""
    values = variable_values(country) if country else {}
    hotline = values.get("hotline") or ""
    url = values.get("official_info_url") or ""
    words = {"stop": STOP_WORD.get(language, "STOP"), "join": JOIN_WORD.get(language, "START"),
             "yes": YES_WORD.get(language, "YES")}
    with force_locale(language):
        if kind == "opt_out":
            return _("You will receive no more messages from us. To join again, reply %(join)s.", **words)
        if kind == "opt_in":
            return _("Welcome: you will receive our messages. To stop at any time, reply %(stop)s.", **words)
        if kind == "help":
            text = _("This is the information service of the Regional Migration Programme. We never ask for "
                     "money. To stop, reply %(stop)s.", **words)
            return text + (" " + _("Help line: %(hotline)s", hotline=hotline) if hotline else "")
        if kind == "language":
            return _("From now on we will write to you in English.")
        if kind == "erase_ask":
            return _("To delete your number and your messages from our service, reply %(yes)s within one hour.",
                     **words)
        if kind == "erased":
            return _("Your data has been deleted. You will receive no more messages from us.")
        if kind == "real":
            text = _("Our messages come only from this number. We never ask for money, documents or passwords, "
                     "and we never promise jobs or visas.")
            return text + (" " + _("Official information: %(url)s", url=url) if url else "")
        if kind == "welcome":
            return _("Hello, this is the information service of the Regional Migration Programme. To receive "
                     "our messages, reply %(join)s. To stop, reply %(stop)s.", **words)
        if kind == "ack":
            return _("Thank you for your message. Our team reads every message, but may not answer each one.")
        if kind == "reask":
            return _("Sorry, we did not understand. Please reply with the number of your answer.")
        if kind == "thanks":
            return _("Thank you for your answer.")
    raise ValueError(kind)


# --- keywords administration ---------------------------------------------------------------------------

def save_keyword(word: str, action: str, language: str, value: str | None, actor) -> Keyword:
    normal = kw.normalise(word)
    if not normal or len(normal) > 60:
        raise ServiceError("keyword_invalid", value=word[:60])
    if action not in ("opt_out", "opt_in", "help", "language", "erase", "real"):
        raise ServiceError("keyword_invalid", value=action)
    language = audience.check_language(language)
    if action == "language":
        value = audience.check_language(value or "")
    if db.session.scalar(sa.select(Keyword.id).where(Keyword.word == normal)):
        raise ServiceError("keyword_taken", value=normal)
    row = Keyword(word=normal, action=action, language=language, value=value if action == "language" else None)
    db.session.add(row)
    db.session.flush()
    audit("keyword.added", actor, target_type="keyword", target_id=row.id, word=normal, keyword_action=action)
    return row


def set_keyword_active(row: Keyword, active: bool, actor) -> None:
    row.active = active
    audit("keyword.enabled" if active else "keyword.disabled", actor, target_type="keyword", target_id=row.id)


def delete_keyword(row: Keyword, actor) -> None:
    audit("keyword.deleted", actor, target_type="keyword", target_id=row.id, word=row.word)
    db.session.delete(row)


def process_pending(config, limit: int = 200) -> int:
    """Finish messages a crash left ``received`` (the webhook normally processes at once)."""
    cutoff = utcnow() - timedelta(seconds=30)
    ids = list(db.session.scalars(sa.select(InboundMessage.id).where(
        InboundMessage.status == "received", InboundMessage.received_at < cutoff)
        .order_by(InboundMessage.id).limit(limit)))
    for message_id in ids:
        message = db.session.get(InboundMessage, message_id)
        direct = process(message) if message is not None else []
        db.session.commit()
        send_direct(direct, config)
    return len(ids)
