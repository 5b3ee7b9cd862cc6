"""What the simulator does: Twilio Messages API calls (validate like Twilio, store, fetch, list), each
accepted message's planned life (queued -> sent -> delivered, read on WhatsApp, or undelivered) reported
by signed status callbacks, and the fake handsets of the phone screen, whose replies reach the app as
signed inbound webhooks.

Validation follows Twilio's order and error codes closely enough that the channel's error mapping is
exercised for real; error messages never quote the number (Twilio's do; ours end up in test logs).
Nothing here logs a number or a text: ids, statuses and HTTP codes only.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime

import requests
import sqlalchemy as sa
from flask import Flask, current_app

from ..audience.models import Contact, PhoneNumber
from ..core import phones
from ..core.crypto import keys
from ..core.models import utcnow
from ..extensions import db
from ..messaging import services as messaging_services
from ..messaging.models import Sender
from ..messaging.segments import segments
from . import settings as sim_settings
from .models import SimulatorEvent, SimulatorMessage
from .signature import compute_signature, signing_token

log = logging.getLogger(__name__)

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
                   validity_period: str | int | None = None, settings: sim_settings.SimSettings | None = None,
                   now: datetime | None = None) -> SimulatorMessage:
    """Accept a message as Twilio's ``POST …/Messages.json`` would, or raise ``TwilioApiError``; plan its
    life with ``settings`` (default: those in force), which may also refuse it with 21610. Flushes."""
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
    settings = settings or sim_settings.current()
    if settings.rate_21610 and sim_settings.rng().random() < settings.rate_21610:
        raise TwilioApiError(21610, "Attempt to send to unsubscribed recipient")

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
        num_segments=num_segments, status="accepted" if messaging_service_sid else "queued",
        created_at=now or utcnow())
    db.session.add(message)
    db.session.flush()
    plan_lifecycle(message, settings)
    return message


def get_message(account_sid: str, sid: str) -> SimulatorMessage:
    message = db.session.scalar(sa.select(SimulatorMessage).where(
        SimulatorMessage.sid == sid, SimulatorMessage.account_sid == account_sid))
    if message is None:
        raise TwilioApiError(20404, f"The requested resource /{API_VERSION}/Accounts/{account_sid}/Messages/"
                                    f"{sid}.json was not found", 404)
    apply_due_statuses([message.id])
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
    # As Twilio: DateSent filters read date_sent, which a message still queued does not have yet.
    when = SimulatorMessage.sent_at
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
    apply_due_statuses([m.id for m in rows[:page_size]])
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


# --- fault injection at create time ----------------------------------------------------------------

#: What a create request gets instead of a plain answer (see ``settings.OUTCOME_RATES``).
OUTCOMES = ("429", "500", "timeout", "accepted_then_500", "accepted_then_timeout")


def draw_outcome(settings: sim_settings.SimSettings) -> str | None:
    """One of ``OUTCOMES`` with the configured rates, or None for a plain answer. One random draw."""
    rates = [getattr(settings, name) for name in sim_settings.OUTCOME_RATES]
    if not any(rates):
        return None
    roll, edge = sim_settings.rng().random(), 0.0
    for outcome, rate in zip(OUTCOMES, rates, strict=True):
        edge += rate
        if roll < edge:
            return outcome
    return None


def latency_seconds(settings: sim_settings.SimSettings) -> float:
    low, high = settings.latency_ms
    if high <= 0:
        return 0.0
    return (low if low == high else sim_settings.rng().uniform(low, high)) / 1000


# --- the planned life of a message ------------------------------------------------------------------

UNDELIVERED_CODE = 30003  # unreachable destination handset
#: Status order: a message never moves back (a late or reordered event changes nothing).
RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "undelivered": 4,
        "failed": 4, "read": 5, "canceled": 4, "received": 0}
DUPLICATE_GAP = timedelta(milliseconds=100)
REORDER_GAP = timedelta(milliseconds=200)


def plan_lifecycle(message: SimulatorMessage, settings: sim_settings.SimSettings) -> list[SimulatorEvent]:
    """The events of an accepted message: ``queued`` (Messaging Service messages only: no callback is
    sent for the initial status), ``sent``, then ``delivered`` (and ``read`` on WhatsApp) or
    ``undelivered`` with 30003, at the configured delays after creation. Injected: callbacks posted
    twice, and ``sent`` posted after the final status. Flushes."""
    rnd = sim_settings.rng()
    sent, delivered, read = (timedelta(seconds=d) for d in settings.callback_delays)
    steps: list[tuple[str, int | None, timedelta]] = []
    if message.status == "accepted":
        steps.append(("queued", None, timedelta(0)))
    steps.append(("sent", None, sent))
    if settings.rate_undelivered and rnd.random() < settings.rate_undelivered:
        steps.append(("undelivered", UNDELIVERED_CODE, delivered))
    else:
        steps.append(("delivered", None, delivered))
        if message.channel == "whatsapp":
            steps.append(("read", None, read))
    if settings.rate_reorder and rnd.random() < settings.rate_reorder:
        sent_step = next(step for step in steps if step[0] == "sent")
        steps.remove(sent_step)
        steps.append(("sent", None, steps[-1][2] + REORDER_GAP))
    events = []
    for status, code, delay in steps:
        due = message.created_at + delay
        events.append(SimulatorEvent(message_id=message.id, status=status, error_code=code, due_at=due,
                                     applied=False, duplicate=False, state="pending", attempts=0))
        if settings.rate_duplicate and rnd.random() < settings.rate_duplicate:
            events.append(SimulatorEvent(message_id=message.id, status=status, error_code=code,
                                         due_at=due + DUPLICATE_GAP, applied=True, duplicate=True,
                                         state="pending", attempts=0))
    db.session.add_all(events)
    db.session.flush()
    return events


def _apply(message: SimulatorMessage, event: SimulatorEvent) -> None:
    if RANK.get(event.status, 0) > RANK.get(message.status, 0):
        message.status = event.status
        if event.error_code is not None:
            message.error_code = event.error_code
    if message.sent_at is None and RANK.get(event.status, 0) >= RANK["sent"]:
        message.sent_at = event.due_at
    event.applied = True


def apply_due_statuses(message_ids: Sequence[int] | None = None, now: datetime | None = None) -> int:
    """Move messages to the statuses their due events give (the simulated clock), whether or not a
    callback is posted: a fetch or a list shows what Twilio would. Returns how many events applied.
    Flushes."""
    now = now or utcnow()
    q = (sa.select(SimulatorEvent).where(SimulatorEvent.applied.is_(False), SimulatorEvent.due_at <= now)
         .order_by(SimulatorEvent.due_at, SimulatorEvent.id))
    if message_ids is not None:
        if not message_ids:
            return 0
        q = q.where(SimulatorEvent.message_id.in_(list(message_ids)))
    if db.engine.dialect.name == "postgresql":  # events before messages, as the pump locks them: no deadlock
        q = q.with_for_update(skip_locked=True, of=SimulatorEvent)
    events = db.session.scalars(q).all()
    if not events:
        return 0
    messages = {m.id: m for m in db.session.scalars(
        sa.select(SimulatorMessage).where(SimulatorMessage.id.in_({e.message_id for e in events})))}
    for event in events:
        message = messages.get(event.message_id)
        if message is not None:
            _apply(message, event)
    db.session.flush()
    return len(events)


def status_callback_params(message: SimulatorMessage, event: SimulatorEvent) -> list[tuple[str, str]]:
    """The form Twilio posts to a StatusCallback for this event."""
    params = [("MessageSid", message.sid), ("SmsSid", message.sid), ("MessageStatus", event.status),
              ("SmsStatus", event.status), ("AccountSid", message.account_sid)]
    if message.from_address:
        params.append(("From", message.from_address))
    params += [("To", message.to_address), ("ApiVersion", API_VERSION)]
    if message.messaging_service_sid:
        params.append(("MessagingServiceSid", message.messaging_service_sid))
    if event.error_code is not None and event.status in ("undelivered", "failed"):
        params.append(("ErrorCode", str(event.error_code)))
    if message.channel == "whatsapp":
        params.append(("ChannelPrefix", "whatsapp"))
        if event.status == "read":
            params.append(("EventType", "READ"))
    elif event.status in ("delivered", "undelivered"):
        params.append(("RawDlrDoneDate", event.due_at.astimezone(UTC).strftime("%y%m%d%H%M")))
    return params


# --- posting webhooks -----------------------------------------------------------------------------

#: ``post(url, data, headers, timeout) -> HTTP status``; raises on a network failure.
Post = Callable[[str, list[tuple[str, str]], dict[str, str], float], int]

CLAIM_LEASE = timedelta(seconds=60)  # a callback claimed by a pump that died is posted again after this
USER_AGENT = "TwilioProxy/1.1 (c4d-simulator)"


def http_post(url: str, data: list[tuple[str, str]], headers: dict[str, str], timeout: float) -> int:
    """POST a form like Twilio does; the HTTP status of the answer."""
    response = requests.post(url, data=data, headers=headers, timeout=timeout, allow_redirects=False)
    response.close()
    return response.status_code


def signed_post(url: str, params: list[tuple[str, str]], *, post: Post | None = None,
                token: str | None = None, timeout: float | None = None) -> int | None:
    """POST ``params`` to ``url`` with Twilio's signature; the HTTP status, or None when nothing answered.
    Never raises for a network failure, never logs the URL's query, a number or a text."""
    cfg = current_app.config
    token = token or signing_token(cfg)
    headers = {"X-Twilio-Signature": compute_signature(token, url, params), "User-Agent": USER_AGENT,
               "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    try:
        return (post or http_post)(url, params, headers, timeout or cfg.get("C4D_SIM_CALLBACK_TIMEOUT", 5.0))
    except Exception as exc:  # noqa: BLE001 - a receiver that is down is an expected state
        log.info("simulator webhook not delivered: %s", type(exc).__name__)
        return None


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


@dataclass
class _Job:
    event_id: int
    message_id: int
    url: str
    params: list[tuple[str, str]]
    attempts: int
    result: int | None = None


def _claim(now: datetime, limit: int) -> list[int]:
    """Ids of due pending events this process now holds: one UPDATE … RETURNING moves their due time
    past a lease, so two pumps never post the same attempt (the row is re-checked under its lock; on
    PostgreSQL rows another pump holds are skipped, on SQLite the statement takes the write lock first)."""
    due = (sa.select(SimulatorEvent.id).where(SimulatorEvent.state == "pending", SimulatorEvent.due_at <= now)
           .order_by(SimulatorEvent.due_at, SimulatorEvent.id).limit(limit))
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = db.session.scalars(
        sa.update(SimulatorEvent)
        .where(SimulatorEvent.id.in_(due.scalar_subquery()), SimulatorEvent.state == "pending",
               SimulatorEvent.due_at <= now)
        .values(due_at=now + CLAIM_LEASE).returning(SimulatorEvent.id)
        .execution_options(synchronize_session=False))
    return list(claimed)


def deliver_due_callbacks(now: datetime | None = None, *, post: Post | None = None, limit: int = 500) -> int:
    """Apply every due event to its message and post its status callback, signed like Twilio's, to the
    message's StatusCallback URL. A callback that fails (no answer, or not 2xx) is tried again after
    1, 2, 4… × ``C4D_SIM_CALLBACK_BACKOFF`` seconds, and given up (recorded as ``given_up``) after
    ``C4D_SIM_CALLBACK_ATTEMPTS`` attempts. Commits: this is a job, run by the pump (or a test).
    Returns the number of callbacks posted, whatever their answer."""
    now = now or utcnow()
    cfg = current_app.config
    # Statuses first, at their planned times: the claim below moves each due time past a lease, and a
    # message's date_sent must be when it was sent, not when its callback was taken up.
    apply_due_statuses(now=now)
    ids = _claim(now, limit)
    if not ids:
        db.session.commit()
        return 0
    events = db.session.scalars(sa.select(SimulatorEvent).where(SimulatorEvent.id.in_(ids))
                                .order_by(SimulatorEvent.due_at, SimulatorEvent.id)).all()
    messages = {m.id: m for m in db.session.scalars(
        sa.select(SimulatorMessage).where(SimulatorMessage.id.in_({e.message_id for e in events})))}
    # The claim moved due_at; ids follow the plan (a reordered "sent" was planned last).
    events = sorted(events, key=lambda e: (e.message_id, e.id))
    jobs: list[_Job] = []
    for event in events:
        message = messages.get(event.message_id)
        if message is None:
            continue
        if not event.applied:
            _apply(message, event)
        if not message.status_callback:
            event.state = "done"
            continue
        jobs.append(_Job(event.id, message.id, message.status_callback, status_callback_params(message, event),
                         event.attempts))
    db.session.commit()  # nothing held open while the receiver (often this very app) answers

    token = signing_token(cfg)
    timeout = float(cfg.get("C4D_SIM_CALLBACK_TIMEOUT", 5.0))
    by_message: dict[int, list[_Job]] = {}
    for job in jobs:
        by_message.setdefault(job.message_id, []).append(job)

    def run(group: list[_Job]) -> None:
        for job in group:  # one message's callbacks in their planned order
            job.result = signed_post(job.url, job.params, post=post, token=token, timeout=timeout)

    app = current_app._get_current_object()
    workers = max(1, int(cfg.get("C4D_SIM_CALLBACK_WORKERS", 4)))
    if len(by_message) <= 1 or workers == 1:
        for group in by_message.values():
            run(group)
    else:
        def run_in_app(group: list[_Job]) -> None:
            with app.app_context():
                run(group)

        with ThreadPoolExecutor(max_workers=min(workers, len(by_message))) as pool:
            list(pool.map(run_in_app, by_message.values()))

    max_attempts = max(1, int(cfg.get("C4D_SIM_CALLBACK_ATTEMPTS", 4)))
    backoff = float(cfg.get("C4D_SIM_CALLBACK_BACKOFF", 1.0))
    finished = utcnow() if now is None else now
    for job in jobs:
        event = db.session.get(SimulatorEvent, job.event_id)
        if event is None:  # erased meanwhile
            continue
        event.attempts = job.attempts + 1
        event.last_http_status = job.result
        event.posted_at = finished
        if _ok(job.result):
            event.state = "done"
        elif event.attempts >= max_attempts:
            event.state = "given_up"
            log.info("simulator callback given up: event %s after %s attempts (last HTTP %s)",
                     event.id, event.attempts, job.result)
        else:
            event.due_at = now + timedelta(seconds=backoff * 2 ** (event.attempts - 1))
    db.session.commit()
    return len(jobs)


class CallbackPump(threading.Thread):
    """Calls ``deliver_due_callbacks`` every ``interval`` seconds in an app context until ``stop()``."""

    def __init__(self, app: Flask, interval: float = 0.25):
        super().__init__(name="c4d-simulator-callbacks", daemon=True)
        self.app, self.interval = app, interval
        self._stopping = threading.Event()

    def run(self) -> None:
        while not self._stopping.is_set():
            posted = 0
            with self.app.app_context():
                try:
                    posted = deliver_due_callbacks()
                except Exception as exc:  # noqa: BLE001 - keep pumping; the error is the class name only
                    log.error("simulator callback pump: %s", type(exc).__name__)
                    db.session.rollback()
                finally:
                    db.session.remove()
            if not posted:
                self._stopping.wait(self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)


def start_callback_pump(app: Flask, interval: float = 0.25) -> CallbackPump:
    """Start the thread that posts status callbacks. Started by ``c4d serve`` (with the simulator on)
    and ``c4d simulator`` only, never by ``create_app`` (a forking server would start one per worker)."""
    pump = CallbackPump(app, interval)
    pump.start()
    return pump


# --- the phone screen: fake handsets ----------------------------------------------------------------

#: The person's side of a message: the recipient of an outbound one, the sender of an inbound one.
_HANDSET = sa.case((SimulatorMessage.direction == "inbound", SimulatorMessage.from_index),
                   else_=SimulatorMessage.to_index)


@dataclass(frozen=True)
class Handset:
    id: str               # the number's blind index: opaque, never the number
    number: str           # E.164; shown masked only
    pseudonym: str | None  # of the contact with this number, if any
    channels: tuple[str, ...]
    messages: int
    last_at: datetime | None

    @property
    def masked(self) -> str:
        return phones.mask(self.number)


def _number_of(message: SimulatorMessage) -> str:
    address = message.from_address if message.direction == "inbound" else message.to_address
    return _split_address(address or "")[1]


def _pseudonyms(indexes: Iterable[str]) -> dict[str, str]:
    indexes = list(indexes)
    if not indexes:
        return {}
    rows = db.session.execute(sa.select(PhoneNumber.blind_index, Contact.pseudonym)
                              .join(Contact, Contact.id == PhoneNumber.contact_id)
                              .where(PhoneNumber.blind_index.in_(indexes)))
    return dict(rows.all())


def list_handsets(page: int = 1, per_page: int = 50) -> tuple[list[Handset], bool]:
    """One page of the handsets that sent or received simulated messages, most recent first."""
    last = sa.func.max(SimulatorMessage.created_at)
    rows = db.session.execute(
        sa.select(_HANDSET.label("handset"), last, sa.func.count(), sa.func.max(SimulatorMessage.id))
        .where(_HANDSET.is_not(None)).group_by(_HANDSET).order_by(last.desc(), sa.func.max(SimulatorMessage.id).desc())
        .limit(per_page + 1).offset((max(page, 1) - 1) * per_page)).all()
    more, rows = len(rows) > per_page, rows[:per_page]
    indexes = [r[0] for r in rows]
    samples = {m.id: m for m in db.session.scalars(
        sa.select(SimulatorMessage).where(SimulatorMessage.id.in_([r[3] for r in rows])))} if rows else {}
    channels: dict[str, set[str]] = {}
    if indexes:
        for index, channel in db.session.execute(sa.select(_HANDSET, SimulatorMessage.channel)
                                                 .where(_HANDSET.in_(indexes)).distinct()):
            channels.setdefault(index, set()).add(channel)
    names = _pseudonyms(indexes)
    handsets = [Handset(id=index, number=_number_of(samples[sample_id]), pseudonym=names.get(index),
                        channels=tuple(sorted(channels.get(index, ()))), messages=count, last_at=last_at)
                for index, last_at, count, sample_id in rows]
    return handsets, more


def get_handset(handset_id: str) -> Handset | None:
    if not re.fullmatch(r"[0-9a-f]{64}", handset_id or ""):
        return None
    rows = db.session.execute(
        sa.select(sa.func.max(SimulatorMessage.created_at), sa.func.count(), sa.func.max(SimulatorMessage.id))
        .where(_HANDSET == handset_id)).one()
    if not rows[1]:
        return None
    sample = db.session.get(SimulatorMessage, rows[2])
    channels = db.session.scalars(sa.select(SimulatorMessage.channel).where(_HANDSET == handset_id).distinct())
    return Handset(id=handset_id, number=_number_of(sample), pseudonym=_pseudonyms([handset_id]).get(handset_id),
                   channels=tuple(sorted(channels)), messages=rows[1], last_at=rows[0])


def conversation(handset: Handset, limit: int = 200) -> list[SimulatorMessage]:
    """The handset's last ``limit`` messages, oldest first, statuses brought up to date. Flushes."""
    rows = db.session.scalars(sa.select(SimulatorMessage).where(_HANDSET == handset.id)
                              .order_by(SimulatorMessage.created_at.desc(), SimulatorMessage.id.desc())
                              .limit(limit)).all()
    apply_due_statuses([m.id for m in rows])
    return list(reversed(rows))


def reply_targets(handset: Handset) -> list[str]:
    """Where the handset can write to: the numbers that wrote to it (newest first), then the active
    senders' numbers, then the configured default senders."""
    seen: list[str] = []

    def add(address: str | None) -> None:
        if address and address not in seen and (_E164.match(_split_address(address)[1])
                                                or _SHORT_CODE.match(_split_address(address)[1])):
            seen.append(address)

    for m in db.session.scalars(sa.select(SimulatorMessage).where(_HANDSET == handset.id)
                                .order_by(SimulatorMessage.created_at.desc()).limit(200)):
        add(m.from_address if m.direction == "outbound-api" else m.to_address)
    for address in new_phone_targets():
        add(address)
    return seen


SIMULATOR_FROM = messaging_services.SIMULATOR_FROM  # what the app sends from when no sender is configured


def new_phone_targets() -> list[str]:
    """The service's numbers a new handset can write to: active senders with a number, the configured
    defaults, and without any of those the number the app uses with the simulator."""
    out: list[str] = []

    def add(channel: str, address: str | None) -> None:
        if not address:
            return
        if channel == "whatsapp" and not address.startswith("whatsapp:"):
            address = "whatsapp:" + address
        if address not in out:
            out.append(address)

    for channel, address in db.session.execute(sa.select(Sender.channel, Sender.from_address).where(
            Sender.active.is_(True), Sender.from_address.is_not(None)).order_by(Sender.name)):
        add(channel, address)
    cfg = current_app.config
    add("sms", cfg.get("TWILIO_SMS_FROM"))
    add("whatsapp", cfg.get("TWILIO_WHATSAPP_FROM"))
    if not out:
        add("sms", SIMULATOR_FROM)
        add("whatsapp", SIMULATOR_FROM)
    return out


def inbound_account_sid() -> str:
    cfg = current_app.config
    return cfg.get("TWILIO_ACCOUNT_SID") or cfg["C4D_SIMULATOR_ACCOUNT_SID"]


def record_inbound(number: str, to: str, body: str) -> SimulatorMessage:
    """A message a fake handset sends to the service number ``to`` (``whatsapp:`` in front for
    WhatsApp). Raises ``ValueError`` (with a code, no personal data) for an unusable number or text.
    Flushes; post it with ``post_inbound`` once committed."""
    body = (body or "").strip()
    if not body or len(body) > MAX_BODY:
        raise ValueError("body")
    to_channel, to_number = _split_address((to or "").strip())
    if not (_E164.match(to_number) or (to_channel == "sms" and _SHORT_CODE.match(to_number))):
        raise ValueError("to")
    channel = to_channel
    try:
        number = phones.parse(_split_address(number)[1]).e164
    except phones.InvalidNumber:
        raise ValueError("number") from None
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    message = SimulatorMessage(
        sid="SM" + secrets.token_hex(16), account_sid=inbound_account_sid(), direction="inbound", channel=channel,
        to_address=prefix + to_number, to_index=_index(to_number), from_address=prefix + number,
        from_index=_index(number), body=body, media_urls=[],
        num_segments=1 if channel == "whatsapp" else max(segments(body), 1), status="received")
    db.session.add(message)
    db.session.flush()
    return message


def inbound_params(message: SimulatorMessage) -> list[tuple[str, str]]:
    """The form Twilio posts to the app's messaging webhook for an incoming message."""
    params = [("MessageSid", message.sid), ("SmsSid", message.sid), ("SmsMessageSid", message.sid),
              ("AccountSid", message.account_sid), ("From", message.from_address or ""),
              ("To", message.to_address), ("Body", message.body or ""), ("NumMedia", "0"),
              ("NumSegments", str(message.num_segments)), ("SmsStatus", "received"), ("ApiVersion", API_VERSION)]
    if message.channel == "whatsapp":
        params += [("WaId", _number_of(message).lstrip("+")), ("MessageType", "text")]
    return params


def inbound_webhook_url() -> str:
    return current_app.config["C4D_PUBLIC_URL"].rstrip("/") + "/twilio/messages"


def post_inbound(message: SimulatorMessage, *, post: Post | None = None) -> int | None:
    """POST the signed inbound webhook to ``C4D_PUBLIC_URL/twilio/messages`` and note the app's answer
    on the message (None: the app did not answer). Call it after the commit that stored the message, so
    no transaction is held while the app handles the webhook. Flushes."""
    status = signed_post(inbound_webhook_url(), inbound_params(message), post=post)
    message.webhook_status = status
    db.session.flush()
    return status
