"""What the simulator does with Twilio Messages API calls: validate like Twilio, store, fetch, list.

Validation follows Twilio's order and error codes closely enough that the channel's error mapping is
exercised for real; error messages never quote the number (Twilio's do; ours end up in test logs).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime

import sqlalchemy as sa

from ..core import phones
from ..core.crypto import keys
from ..extensions import db
from ..messaging.segments import segments
from .models import SimulatorMessage

API_VERSION = "2010-04-01"
MAX_BODY = 1600
MAX_MEDIA = 10
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SHORT_CODE = re.compile(r"^\d{3,8}$")
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


class TwilioApiError(Exception):
    """An answer in Twilio's error shape: ``{"code", "message", "more_info", "status"}``."""

    def __init__(self, code: int, message: str, status: int = 400):
        super().__init__(f"{code}")
        self.code, self.message, self.status = code, message, status

    def payload(self) -> dict:
        return {"code": self.code, "message": self.message,
                "more_info": f"https://www.twilio.com/docs/errors/{self.code}", "status": self.status}


def _split_address(value: str) -> tuple[str, str]:
    """``whatsapp:+502…`` -> ("whatsapp", "+502…"); anything else is SMS."""
    if value.lower().startswith("whatsapp:"):
        return "whatsapp", value[9:]
    return "sms", value


def _index(number: str) -> str:
    return keys().blind_index(number)


def create_message(account_sid: str, *, to: str | None, from_: str | None = None,
                   messaging_service_sid: str | None = None, body: str | None = None,
                   media_urls: list[str] | None = None, status_callback: str | None = None,
                   content_sid: str | None = None, content_variables: str | None = None,
                   validity_period: str | int | None = None) -> SimulatorMessage:
    """Accept a message as Twilio's ``POST …/Messages.json`` would, or raise ``TwilioApiError``."""
    to, from_ = (to or "").strip(), (from_ or "").strip() or None
    messaging_service_sid = (messaging_service_sid or "").strip() or None
    content_sid = (content_sid or "").strip() or None
    media_urls = [u for u in (media_urls or []) if u]
    if not to:
        raise TwilioApiError(21604, "A 'To' phone number is required.")
    if not from_ and not messaging_service_sid:
        raise TwilioApiError(21603, "A 'From' phone number is required.")
    if not body and not media_urls and not content_sid:
        raise TwilioApiError(21602, "Message body is required.")
    channel, to_number = _split_address(to)
    try:
        to_number = phones.parse(to_number).e164
    except phones.InvalidNumber:
        raise TwilioApiError(21211, "Invalid 'To' Phone Number") from None
    from_index = None
    if from_:
        from_channel, from_number = _split_address(from_)
        if not (_E164.match(from_number) or (from_channel == "sms" and (
                _SHORT_CODE.match(from_number) or _ALPHANUMERIC.match(from_number)))):
            raise TwilioApiError(21212, "Invalid 'From' Number")
        if from_channel != channel:
            raise TwilioApiError(21910, "Invalid From and To pair. From and To should be of the same channel")
        from_index = _index(from_number)
    if messaging_service_sid and not _MESSAGING_SERVICE_SID.match(messaging_service_sid):
        raise TwilioApiError(21705, "The Messaging Service is invalid")
    if body and len(body) > MAX_BODY:
        raise TwilioApiError(21617, "The concatenated message body exceeds the 1600 character limit.")
    if len(media_urls) > MAX_MEDIA:
        raise TwilioApiError(21623, "Number of media files exceeds allowed limit.")
    if content_sid and not _CONTENT_SID.match(content_sid):
        raise TwilioApiError(21655, "The ContentSid is Invalid")
    if content_variables:
        try:
            if not isinstance(json.loads(content_variables), dict):
                raise ValueError
        except ValueError:
            raise TwilioApiError(21656, "The ContentVariables Parameter is invalid") from None
    period = None
    if validity_period not in (None, ""):
        try:
            period = int(validity_period)
        except (TypeError, ValueError):
            period = 0
        if not 1 <= period <= 36000:
            raise TwilioApiError(21624, "Invalid validity period value")

    if channel == "whatsapp" or content_sid or not body:
        num_segments = 1
    else:
        num_segments = max(segments(body), 1)
    message = SimulatorMessage(
        sid="SM" + secrets.token_hex(16), account_sid=account_sid, direction="outbound-api", channel=channel,
        to_address=to_number if channel == "sms" else f"whatsapp:{to_number}", to_index=_index(to_number),
        from_address=from_, from_index=from_index, messaging_service_sid=messaging_service_sid,
        body=body or None, media_urls=media_urls, content_sid=content_sid,
        content_variables=(content_variables or None) if content_sid else None,
        status_callback=(status_callback or "").strip() or None, validity_period=period,
        num_segments=num_segments, status="accepted" if messaging_service_sid else "queued")
    db.session.add(message)
    db.session.flush()
    return message


def get_message(account_sid: str, sid: str) -> SimulatorMessage:
    message = db.session.scalar(sa.select(SimulatorMessage).where(
        SimulatorMessage.sid == sid, SimulatorMessage.account_sid == account_sid))
    if message is None:
        raise TwilioApiError(20404, f"The requested resource /{API_VERSION}/Accounts/{account_sid}/Messages/"
                                    f"{sid}.json was not found", 404)
    return message


@dataclass(frozen=True)
class DateFilter:
    """``DateSent`` / ``DateSent<`` / ``DateSent>`` as Twilio reads them: a date covers its whole day."""

    on: str | None = None
    before: str | None = None
    after: str | None = None


def _parse_date(value: str, *, end_of_day: bool) -> datetime:
    value = value.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day + timedelta(days=1) if end_of_day else day, time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise TwilioApiError(20001, "Invalid value for parameter DateSent") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def list_messages(account_sid: str, *, to: str | None = None, from_: str | None = None,
                  dates: DateFilter = DateFilter(), page: int = 0,
                  page_size: int = DEFAULT_PAGE_SIZE) -> tuple[list[SimulatorMessage], bool]:
    """One page of messages, newest first, and whether another page follows."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise TwilioApiError(20001, "PageSize must be between 1 and 1000")
    if page < 0:
        raise TwilioApiError(20001, "Page must not be negative")
    q = sa.select(SimulatorMessage).where(SimulatorMessage.account_sid == account_sid)
    for value, column in ((to, SimulatorMessage.to_index), (from_, SimulatorMessage.from_index)):
        if not value:
            continue
        channel, number = _split_address(value.strip())
        q = q.where(column == _index(number), SimulatorMessage.channel == channel)
    when = sa.func.coalesce(SimulatorMessage.sent_at, SimulatorMessage.created_at)
    if dates.on:
        start = _parse_date(dates.on[:10], end_of_day=False)
        q = q.where(when >= start, when < start + timedelta(days=1))
    if dates.after:
        q = q.where(when >= _parse_date(dates.after, end_of_day=False))
    if dates.before:
        whole_day = len(dates.before.strip()) == 10  # up to the end of that day
        limit = _parse_date(dates.before, end_of_day=True)
        q = q.where(when < limit if whole_day else when <= limit)
    rows = db.session.scalars(q.order_by(SimulatorMessage.created_at.desc(), SimulatorMessage.id.desc())
                              .limit(page_size + 1).offset(page * page_size)).all()
    return list(rows[:page_size]), len(rows) > page_size


def _rfc2822(value: datetime | None) -> str | None:
    return format_datetime(value.astimezone(UTC)) if value else None


def message_uri(account_sid: str, sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def message_resource(m: SimulatorMessage) -> dict:
    """The Message resource as Twilio's JSON has it (numbers of segments and media are strings)."""
    uri = message_uri(m.account_sid, m.sid)
    return {
        "account_sid": m.account_sid,
        "api_version": API_VERSION,
        "body": m.body or "",
        "date_created": _rfc2822(m.created_at),
        "date_sent": _rfc2822(m.sent_at),
        "date_updated": _rfc2822(m.updated_at or m.created_at),
        "direction": m.direction,
        "error_code": m.error_code,
        "error_message": None,
        "from": m.from_address,
        "messaging_service_sid": m.messaging_service_sid,
        "num_media": str(len(m.media_urls or [])),
        "num_segments": str(m.num_segments),
        "price": None,
        "price_unit": "USD",
        "sid": m.sid,
        "status": m.status,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": m.to_address,
        "uri": uri,
    }
