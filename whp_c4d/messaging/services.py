"""Sender operations: validate and save senders, and choose the sender for a recipient's country."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from ..auth.models import User
from ..auth.services import audit
from ..core import phones
from ..core.errors import ServiceError
from ..extensions import db
from .models import CHANNELS, DEFAULT_CAP_PER_SECOND, Sender

# Format only, not phonenumbers' validity: Twilio test numbers and fictional demo senders must pass.
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
MIN_CAP, MAX_CAP = 1, 10_000
_AUDITED_FIELDS = ("name", "channel", "from_address", "messaging_service_sid", "countries", "cap_per_second",
                   "is_default", "active")


def list_senders() -> list[Sender]:
    return list(db.session.scalars(sa.select(Sender).order_by(Sender.channel, Sender.name)))


def sender_for(channel: str, country: str | None) -> Sender | None:
    """The active sender for a recipient in ``country``: one that lists the country (the default one
    first when several do, then the oldest), else the channel's default sender, else None."""
    rows = db.session.scalars(
        sa.select(Sender).where(Sender.channel == channel, Sender.active.is_(True))
        .order_by(Sender.is_default.desc(), Sender.id)
    ).all()
    country = (country or "").upper()
    for sender in rows:
        if country and country in (sender.countries or []):
            return sender
    return next((s for s in rows if s.is_default), None)


# Twilio's magic test "From": what the built-in simulator sends from when no sender is configured.
SIMULATOR_FROM = "+15005550006"


@dataclass(frozen=True)
class SendingAddress:
    """Where a message leaves from, and the budget key and cap that pace it."""

    key: str
    sender_id: int | None
    cap: int
    from_: str | None
    messaging_service_sid: str | None

    @property
    def api_fields(self) -> dict[str, str]:
        return {"from_": self.from_} if self.from_ else {"messaging_service_sid": self.messaging_service_sid}


def sending_address(channel: str, country: str | None, config: Mapping) -> SendingAddress | None:
    """The configured sender for the channel and country; else the default ``TWILIO_*`` settings; else,
    with no Twilio account (the simulator), Twilio's test number. None when nothing can send."""
    sender = sender_for(channel, country)
    if sender is not None:
        return SendingAddress(str(sender.id), sender.id, sender.cap_per_second, sender.from_address,
                              sender.messaging_service_sid)
    configured = config.get("TWILIO_WHATSAPP_FROM" if channel == "whatsapp" else "TWILIO_SMS_FROM")
    service = config.get("TWILIO_MESSAGING_SERVICE_SID")
    if not configured and not service and not config.get("TWILIO_ACCOUNT_SID"):
        configured = SIMULATOR_FROM
    if not configured and not service:
        return None
    if configured and channel == "whatsapp" and not configured.startswith("whatsapp:"):
        configured = "whatsapp:" + configured
    return SendingAddress(f"default:{channel}", None, DEFAULT_CAP_PER_SECOND[channel], configured,
                          None if configured else service)


def _clean_address(channel: str, raw: str | None) -> str | None:
    value = re.sub(r"[\s().-]", "", raw or "")
    if not value:
        return None
    prefixed = value.lower().startswith("whatsapp:")
    number = value[9:] if prefixed else value
    if prefixed and channel != "whatsapp":
        raise ServiceError("sender_channel_mismatch")
    if not _E164.match(number):
        raise ServiceError("invalid_sender_number", value=(raw or "").strip()[:40])
    return f"whatsapp:{number}" if channel == "whatsapp" else number


def _clean_service_sid(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if not value:
        return None
    if not _MESSAGING_SERVICE_SID.match(value):
        raise ServiceError("invalid_messaging_service_sid", value=value[:40])
    return value


def _clean_countries(codes: Iterable[str]) -> list[str]:
    out = set()
    for code in codes or ():
        code = (code or "").strip().upper()
        if not code:
            continue
        if not phones.is_country(code):
            raise ServiceError("unknown_country", value=code[:10])
        out.add(code)
    return sorted(out)


def save_sender(sender: Sender | None, *, name: str, channel: str, from_address: str | None = None,
                messaging_service_sid: str | None = None, countries: Iterable[str] = (),
                cap_per_second: int | None = None, is_default: bool = False, active: bool = True,
                actor: User | None = None) -> Sender:
    """Create (``sender=None``) or update a sender after validating every field. Making a sender the
    default of its channel takes that role away from the previous default."""
    name = (name or "").strip()
    if not name:
        raise ServiceError("sender_name_required")
    if channel not in CHANNELS:
        raise ServiceError("unknown_channel", value=channel)
    clash = db.session.scalar(sa.select(Sender.id).where(sa.func.lower(Sender.name) == name.lower()))
    if clash and (sender is None or clash != sender.id):
        raise ServiceError("sender_name_taken")
    address = _clean_address(channel, from_address)
    service_sid = _clean_service_sid(messaging_service_sid)
    if (address is None) == (service_sid is None):
        raise ServiceError("sender_needs_one_address")
    countries = _clean_countries(countries)
    cap = DEFAULT_CAP_PER_SECOND[channel] if cap_per_second is None else cap_per_second
    if not isinstance(cap, int) or isinstance(cap, bool) or not MIN_CAP <= cap <= MAX_CAP:
        raise ServiceError("invalid_sender_cap", min=MIN_CAP, max=MAX_CAP)
    if is_default and not active:
        raise ServiceError("default_sender_inactive")

    if is_default:
        # Flushed before this sender becomes default, so the partial unique index never sees two.
        others = sa.update(Sender).where(Sender.channel == channel, Sender.is_default.is_(True))
        if sender is not None and sender.id is not None:
            others = others.where(Sender.id != sender.id)
        db.session.execute(others.values(is_default=False).execution_options(synchronize_session="fetch"))

    created = sender is None
    sender = sender or Sender()
    before = {f: getattr(sender, f) for f in _AUDITED_FIELDS}
    sender.name, sender.channel = name, channel
    sender.from_address, sender.messaging_service_sid = address, service_sid
    sender.countries, sender.cap_per_second = countries, cap
    sender.is_default, sender.active = is_default, active
    db.session.add(sender)
    db.session.flush()
    # Field names only: a sender's number is the organisation's, but audit details never hold numbers.
    changed = sorted(f for f in _AUDITED_FIELDS if before[f] != getattr(sender, f))
    audit("sender.created" if created else "sender.updated", actor, target_type="sender", target_id=sender.id,
          channel=channel, fields=changed)
    return sender
