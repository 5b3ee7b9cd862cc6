"""Contacts, numbers, consent and who may see what. Callers commit."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from ..auth.models import User
from ..auth.services import audit
from ..core import phones
from ..core.crypto import keys
from ..core.errors import ServiceError
from ..core.models import utcnow
from ..core.permissions import ROLES_SEEING_NUMBERS
from ..core.signals import consent_withdrawn, contact_erasing
from ..extensions import db
from .models import (
    CHANNELS,
    PURPOSES,
    ConsentEvent,
    Contact,
    ContactChannel,
    ContentLanguage,
    PartnerRegistration,
    PhoneNumber,
    SuppressionEntry,
    Tag,
)

DEFAULT_LANGUAGES = ("es", "en", "fr", "ht", "nl")
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U


# --- languages -------------------------------------------------------------------------------

def enabled_languages() -> list[str]:
    rows = db.session.scalars(sa.select(ContentLanguage.code).where(ContentLanguage.enabled.is_(True))
                              .order_by(ContentLanguage.code)).all()
    return list(rows)


def set_language_enabled(code: str, enabled: bool, actor: User) -> None:
    code = code.strip().lower()
    if not (2 <= len(code) <= 3 and code.isascii() and code.isalpha()):
        raise ServiceError("invalid_language_code", value=code)
    row = db.session.get(ContentLanguage, code) or ContentLanguage(code=code)
    row.enabled = enabled
    db.session.add(row)
    audit("settings.language_" + ("enabled" if enabled else "disabled"), actor, code=code)
    db.session.flush()


# --- scoping ---------------------------------------------------------------------------------

def visible_contacts(user: User) -> sa.Select:
    """Contacts a user may see: partners their organisation's registrations, limited officers their
    countries, everybody else all."""
    q = sa.select(Contact)
    if user.role == "partner":  # partners see their registrations (``partner_registrations``), never contacts
        q = q.where(sa.false())
    elif user.role == "officer" and user.countries:
        q = q.where(Contact.country.in_(user.countries))
    return q


def get_visible_contact(user: User, contact_id: int) -> Contact:
    """The contact, or 404 (never 403: whether an id exists is itself information)."""
    contact = db.session.scalar(visible_contacts(user).where(Contact.id == contact_id))
    if contact is None:
        raise NotFound()
    return contact


def number_for_display(contact: Contact, user: User) -> str | None:
    """Masked number for roles that may see numbers; None for everybody else (they get the pseudonym)."""
    if user.role not in ROLES_SEEING_NUMBERS or contact.current_number is None:
        return None
    return phones.mask(contact.current_number.e164)


def reveal_number(contact: Contact, user: User, ip: str | None) -> str | None:
    if user.role not in ROLES_SEEING_NUMBERS:
        raise NotFound()
    number = contact.current_number
    audit("contact.number_revealed", user, target_type="contact", target_id=contact.id, ip=ip)
    return number.e164 if number else None


# --- contacts --------------------------------------------------------------------------------

def _unique_code(prefix: str, length: int, column) -> str:
    """A random code (Crockford's alphabet) no row holds in ``column`` yet."""
    while True:
        candidate = prefix + "".join(secrets.choice(_PSEUDONYM_ALPHABET) for _ in range(length))
        if not db.session.scalar(sa.select(column).where(column == candidate)):
            return candidate


def new_pseudonym() -> str:
    return _unique_code("C-", 6, Contact.pseudonym)


def is_suppressed(e164: str) -> bool:
    h = keys().suppression_hash(e164)
    return bool(db.session.scalar(sa.select(SuppressionEntry.id).where(SuppressionEntry.number_hash == h)))


def find_by_number(e164: str) -> Contact | None:
    row = db.session.scalar(sa.select(PhoneNumber).where(PhoneNumber.blind_index == keys().blind_index(e164)))
    return row.contact if row else None


def check_language(code: str) -> str:
    code = (code or "").strip().lower()
    if code not in enabled_languages():
        raise ServiceError("unknown_language", value=code)
    return code


def check_country(code: str) -> str:
    code = (code or "").strip().upper()
    if not phones.is_country(code):
        raise ServiceError("unknown_country", value=code)
    return code


def parse_number(raw: str, country: str | None) -> phones.ParsedNumber:
    try:
        return phones.parse(raw, country)
    except phones.InvalidNumber:
        raise ServiceError("invalid_phone", value=raw, country=country or "?") from None


def resolve_tags(names: Iterable[str]) -> list[Tag]:
    wanted = sorted({n.strip().lower()[:60] for n in names if n and n.strip()})
    if not wanted:
        return []
    existing = {t.name: t for t in db.session.scalars(sa.select(Tag).where(Tag.name.in_(wanted)))}
    for name in wanted:
        if name not in existing:
            existing[name] = Tag(name=name)
            db.session.add(existing[name])
    return [existing[n] for n in wanted]


@dataclass
class ConsentInput:
    source: str
    at: datetime | None = None
    notice_version: str | None = None
    purposes: tuple[str, ...] = PURPOSES


def create_contact(*, phone: str, country: str | None, language: str, channels: Iterable[str],
                   consent: ConsentInput, actor: User | None, tags: Iterable[str] = (),
                   timezone: str | None = None, partner_id: int | None = None,
                   status: str = "active") -> Contact:
    language = check_language(language)
    country = check_country(country) if country else None
    parsed = parse_number(phone, country)
    channels = _check_channels(channels)
    if is_suppressed(parsed.e164):
        raise ServiceError("phone_suppressed")
    if find_by_number(parsed.e164):
        raise ServiceError("phone_taken")
    if timezone and not phones.is_timezone(timezone):
        raise ServiceError("unknown_timezone", value=timezone)
    contact = Contact(
        pseudonym=new_pseudonym(), status=status, language=language,
        country=country or parsed.country,
        timezone=timezone or phones.timezone_for(parsed.e164, country or parsed.country),
        registered_by_partner_id=partner_id, tags=resolve_tags(tags),
    )
    contact.numbers.append(PhoneNumber(e164=parsed.e164, blind_index=keys().blind_index(parsed.e164),
                                       country=parsed.country))
    db.session.add(contact)
    db.session.flush()
    for channel in channels:
        record_consent(contact, channel, granted=True, source=consent.source, actor=actor, at=consent.at,
                       notice_version=consent.notice_version, purposes=consent.purposes)
    audit("contact.created", actor, target_type="contact", target_id=contact.id, source=consent.source)
    return contact


def register_for_partner(*, partner_id: int, phone: str, country: str | None, language: str,
                         channels: Iterable[str], consent: ConsentInput, actor: User | None,
                         tags: Iterable[str] = (), timezone: str | None = None) -> PartnerRegistration:
    """A partner registers a person. The answer is the same receipt whether the number is new (a contact
    is created), already known (the partner's consent is added on each channel where the person has not
    opted out: a STOP is never overridden by someone else) or was erased (nothing about the person is
    kept). Invalid input is refused as for anyone, since it says nothing about who is in the programme."""
    language = check_language(language)
    country = check_country(country) if country else None
    parsed = parse_number(phone, country)
    channels = _check_channels(channels)
    if timezone and not phones.is_timezone(timezone):
        raise ServiceError("unknown_timezone", value=timezone)
    contact = None
    if not is_suppressed(parsed.e164):
        contact = find_by_number(parsed.e164)
        if contact is None:
            contact = create_contact(phone=phone, country=country, language=language, channels=channels,
                                     consent=consent, actor=actor, tags=tags, timezone=timezone,
                                     partner_id=partner_id)
        else:
            for channel in channels:
                state = contact.channel(channel)
                if state is None or state.opted_out_at is None:
                    record_consent(contact, channel, granted=True, source=consent.source, actor=actor,
                                   at=consent.at, notice_version=consent.notice_version,
                                   purposes=consent.purposes)
    registration = PartnerRegistration(
        reference=new_registration_reference(), partner_id=partner_id, contact_id=contact.id if contact else None,
        user_id=actor.id if actor else None, country=country or parsed.country, language=language,
        channels=channels)
    db.session.add(registration)
    db.session.flush()
    audit("contact.registered_by_partner", actor, target_type="partner_registration", target_id=registration.id)
    return registration


def new_registration_reference() -> str:
    return _unique_code("R-", 8, PartnerRegistration.reference)


def partner_registrations(partner_id: int) -> sa.Select:
    """A partner's registrations, newest first (what partners see instead of contacts)."""
    return (sa.select(PartnerRegistration).where(PartnerRegistration.partner_id == partner_id)
            .order_by(PartnerRegistration.id.desc()))


@contact_erasing.connect
def _forget_registrations(_sender, *, contact_id: int, **_kw) -> None:
    """The receipt stays with the partner; the link to the person goes."""
    db.session.execute(sa.update(PartnerRegistration).where(PartnerRegistration.contact_id == contact_id)
                       .values(contact_id=None).execution_options(synchronize_session=False))


def _check_channels(channels: Iterable[str]) -> list[str]:
    out = []
    for ch in channels:
        ch = ch.strip().lower()
        if ch not in CHANNELS:
            raise ServiceError("unknown_channel", value=ch)
        if ch not in out:
            out.append(ch)
    if not out:
        raise ServiceError("no_channel")
    return out


def update_contact(contact: Contact, *, language: str, country: str, timezone: str, tags: Iterable[str],
                   actor: User) -> Contact:
    contact.language = check_language(language)
    contact.country = check_country(country)
    if not phones.is_timezone(timezone):
        raise ServiceError("unknown_timezone", value=timezone)
    contact.timezone = timezone
    contact.tags = resolve_tags(tags)
    audit("contact.updated", actor, target_type="contact", target_id=contact.id)
    db.session.flush()
    return contact


def add_number(contact: Contact, raw: str, country: str | None, actor: User | None) -> PhoneNumber:
    """A new number becomes the contact's current one; the old one is retired, kept for recognising
    replies until retention removes it. Country and time zone follow the new number."""
    parsed = parse_number(raw, country)
    if is_suppressed(parsed.e164):
        raise ServiceError("phone_suppressed")
    owner = find_by_number(parsed.e164)
    if owner is not None and owner.id != contact.id:
        raise ServiceError("phone_taken")
    now = utcnow()
    for n in contact.numbers:
        if n.retired_at is None:
            n.retired_at = now
    existing = next((n for n in contact.numbers if n.e164 == parsed.e164), None)
    if existing:
        existing.retired_at = None
        number = existing
    else:
        number = PhoneNumber(e164=parsed.e164, blind_index=keys().blind_index(parsed.e164),
                             country=parsed.country)
        contact.numbers.append(number)
    contact.country = parsed.country
    contact.timezone = phones.timezone_for(parsed.e164, parsed.country)
    db.session.flush()
    audit("contact.number_changed", actor, target_type="contact", target_id=contact.id, country=parsed.country)
    return number


# --- consent ledger --------------------------------------------------------------------------

def record_consent(contact: Contact, channel: str, *, granted: bool, source: str, actor: User | None,
                   at: datetime | None = None, notice_version: str | None = None,
                   purposes: Iterable[str] = PURPOSES) -> list[ConsentEvent]:
    """Append to the ledger and bring the channel's current state in line. An opt-out covers every
    purpose on that channel."""
    if channel not in CHANNELS:
        raise ServiceError("unknown_channel", value=channel)
    purposes = list(PURPOSES) if not granted else [p for p in purposes if p in PURPOSES]
    state = contact.channel(channel)
    if state is None:
        state = ContactChannel(channel=channel, campaigns=False, polls=False)
        contact.channels.append(state)
    events = []
    for purpose in purposes:
        ev = ConsentEvent(contact_id=contact.id, channel=channel, purpose=purpose, granted=granted,
                          source=source, notice_version=notice_version,
                          recorded_by_id=actor.id if actor else None, at=at or utcnow())
        db.session.add(ev)
        events.append(ev)
        setattr(state, purpose, granted)
    state.opted_out_at = None if granted else utcnow()
    if granted and contact.status == "inbound_only" and state.campaigns:
        contact.status = "active"
    db.session.flush()
    if not granted:
        consent_withdrawn.send(contact_id=contact.id, channel=channel)
    audit("consent.granted" if granted else "consent.withdrawn", actor, target_type="contact",
          target_id=contact.id, channel=channel, purposes=purposes, source=source)
    return events


def consent_history(contact: Contact) -> list[ConsentEvent]:
    return list(db.session.scalars(sa.select(ConsentEvent).where(ConsentEvent.contact_id == contact.id)
                                   .order_by(ConsentEvent.recorded_at.desc(), ConsentEvent.id.desc())))


def mark_activity(contact: Contact, when: datetime | None = None) -> None:
    contact.last_activity_at = when or utcnow()
