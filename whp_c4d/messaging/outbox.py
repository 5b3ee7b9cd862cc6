"""The outbox's one owner: every outbound row is created here and every change of its status goes through
here, so the promises made to people hold at one gate.

Other domains ask; they never build a row or set a status themselves:

- **enqueue**: ``insert_planned`` (campaign steps, in bulk), ``enqueue_reply`` (answers, keyword
  confirmations, officers' replies), ``record_history`` (the demo's past campaign);
- **campaign controls**: ``hold``, ``release``, ``cancel``, ``discard_held``;
- **people**: an opt-out cancels, in the same transaction, every row still waiting for the person on
  that channel (``consent_withdrawn`` receiver); erasure deletes them (``ON DELETE CASCADE``);
- **the dispatcher**: ``claimed`` / ``skip`` / ``postpone`` at the claim, then ``record_send`` /
  ``record_failure`` / ``record_skip_before_send`` / ``record_crash`` around the call,
  ``expire_leases``, ``record_report`` (lookups) and ``resend`` while reconciling;
- **Twilio's callbacks**: ``record_callback``.

**One status function.** ``advance`` moves a row only from the statuses the rules allow for that
source (``allowed_from``) with one conditional UPDATE, and the event it logs says truthfully whether it
applied. Twilio's reports (the send's answer, callbacks, lookups, polls) only ever move a row forward by
rank; the engine's own moves (claim, retry, uncertain, resend, hold, cancel) only from the one status
they are about, so a late or racing source can never undo what another has recorded. Statuses from
``queued`` on mean Twilio has the message: nothing moves a row back from there.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ..core.models import utcnow
from ..core.signals import consent_withdrawn, outbox_rows_removed
from ..extensions import db
from .models import STATUS_RANK, TERMINAL, MessageEvent, OutboundMessage
from .segments import segments as count_segments

log = logging.getLogger(__name__)

# --- statuses -----------------------------------------------------------------------------------------

#: Rows that have not reached Twilio (as far as we know) and may still be stopped.
NOT_SENT = ("pending", "held")
#: Twilio has the message: from here on a row only moves forward, and only on Twilio's word.
AT_TWILIO = ("queued", "sent", "delivered", "read")
#: Rows Twilio accepted whose final report has not come: the status poll asks about them (lost callbacks).
AWAITING_REPORT = ("queued", "sent")
#: How often to ask, by the message's age: a carrier may report late, or never (then we stop after 3 days).
CHECK_SCHEDULE = ((timedelta(hours=1), timedelta(minutes=30)), (timedelta(hours=6), timedelta(hours=2)),
                  (timedelta(hours=24), timedelta(hours=6)), (timedelta(hours=72), timedelta(hours=24)))

#: Twilio's statuses in ours: everything Twilio holds before handing over to the carrier is "queued".
TWILIO_TO_OURS = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued", "sent": "sent",
    "delivered": "delivered", "read": "read", "undelivered": "undelivered", "failed": "failed",
    "canceled": "cancelled", "received": "delivered",
}

#: Lanes: the dispatcher claims the first before the second, within each sender's cap, so an answer to a
#: person (a STOP confirmation above all) never waits behind a broadcast.
LANE_NOW, LANE_BROADCAST = 0, 1
LANES = (LANE_NOW, LANE_BROADCAST)

REPLY_VALIDITY = timedelta(hours=1)

#: What a person explicitly asks for and gets even after opting out: the confirmation of the opt-out
#: itself, joining again, help, "is this real?", a language switch, the erasure question. Automatic
#: answers (thanks, acknowledgements, welcome, re-asks, menu replies) never go to an opted-out person.
EXPLICIT_REPLIES = frozenset({"opt_out", "opt_in", "help", "real", "language", "erase_ask"})



# --- the rules of one status function --------------------------------------------------------------------

#: Moves the engine makes itself, each from the only statuses it concerns (source -> (to, from)).
ENGINE_MOVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "claim": ("sending", ("pending",)),
    "retry": ("pending", ("sending",)),              # 429: never processed by Twilio
    "timeout": ("uncertain", ("sending",)),          # 5xx, timeout, reset: Twilio may have it
    "crash": ("uncertain", ("sending",)),
    "lease": ("uncertain", ("sending",)),            # left "sending" past its lease
    "refused": ("failed", ("sending",)),             # Twilio refused the create (4xx): it never existed
    "check": ("skipped", ("sending",)),              # our last check before the call said no
    "returned": ("pending", ("sending",)),           # claimed, never called: the dispatcher is stopping
    "resend": ("pending", ("uncertain",)),           # the lookup found nothing: it never reached Twilio
    "ambiguous": ("failed", ("uncertain",)),         # the lookup found several: we cannot tell, never resend
    "hold": ("held", ("pending",)),
    "release": ("pending", ("held",)),
    "cancel": ("cancelled", NOT_SENT),
}
#: Sources that are Twilio's word about a message: they move a row forward by rank, never back.
TWILIO_SOURCES = frozenset({"send", "callback", "lookup", "poll"})


def allowed_from(to: str, source: str) -> tuple[str, ...]:
    """The statuses a row may be in for ``source`` to move it to ``to``; empty means never."""
    if source in TWILIO_SOURCES:
        if to not in STATUS_RANK or to in ("pending", "held", "claimed", "sending", "uncertain"):
            return ()
        return tuple(s for s, rank in STATUS_RANK.items() if rank < STATUS_RANK[to] and s not in TERMINAL)
    move = ENGINE_MOVES.get(source)
    return move[1] if move is not None and move[0] == to else ()


def next_status(current: str, twilio_status: str | None) -> str | None:
    """Our status after a report from Twilio, or None when it does not move the row forward (late,
    repeated, backward, unknown, or the row is already terminal)."""
    ours = TWILIO_TO_OURS.get((twilio_status or "").lower())
    if ours is None or current not in allowed_from(ours, "callback"):
        return None
    return ours


def advance(session: Session, msg: OutboundMessage | int, to: str, *, source: str, error_code: int | None = None,
            reason: str | None = None, provider_sid: str | None = None, event_status: str | None = None,
            values: dict | None = None, log_event: bool | None = None, now: datetime | None = None) -> bool:
    """Move one row to ``to`` if ``source`` may move it from the status it is in now; returns whether it
    moved. One conditional UPDATE, so two sources racing (a callback in one web process, the send's
    answer in a worker) cannot undo each other as a read-then-write would let them. Reports from Twilio
    are logged in ``message_event`` with ``applied`` saying whether they moved the row."""
    now = now or utcnow()
    message_id = msg if isinstance(msg, int) else msg.id
    sources = allowed_from(to, source)
    changes = {"status": to, "updated_at": now, **(values or {})}
    if reason is not None:
        changes["reason"] = reason
    if to in ("undelivered", "failed") and error_code is not None:
        changes["error_code"] = error_code
    if to == "undelivered" and reason is None:
        changes["reason"] = "undelivered"
    elif to == "failed" and source in ("callback", "lookup", "poll") and reason is None:
        changes["reason"] = "failed_at_twilio"
    applied = False
    if sources:
        m = OutboundMessage
        result = session.execute(sa.update(m).where(m.id == message_id, m.status.in_(sources)).values(**changes)
                                 .execution_options(synchronize_session=False))
        applied = result.rowcount == 1
        if applied and not isinstance(msg, int):
            for key, value in changes.items():
                set_committed_value(msg, key, value)
    if log_event if log_event is not None else source in TWILIO_SOURCES | {"timeout", "refused", "retry"}:
        session.add(MessageEvent(message_id=message_id, provider_sid=provider_sid, status=(event_status or to)[:16],
                                 error_code=error_code, source=_event_source(source), applied=applied,
                                 received_at=now))
    return applied


def _event_source(source: str) -> str:
    return "send" if source in ("timeout", "refused", "retry") else source


# --- enqueue: campaign steps -------------------------------------------------------------------------------

def lane_of(purpose: str) -> int:
    return LANE_NOW if purpose == "reply" else LANE_BROADCAST


def insert_planned(rows: list[tuple[int, dict]]) -> int:
    """Insert the rows of one step occurrence, skipping those it already has (unique step, contact,
    occurrence); returns how many were added. The caller commits (one transaction per expansion).

    ``rows``: (contact id, the row's content columns), in the order the rows should get their ids; rows
    that differ only by their contact share one dict (a step's rows come in a few such groups). The
    outbox adds what it owns: status ``pending``, no attempts, the lane, the times.

    The unique (step, contact, occurrence) constraint is what makes expansion exactly-once, even when
    several workers sweep at the same time: ON CONFLICT DO NOTHING skips (or, on PostgreSQL, waits for
    and then skips) a row another transaction holds. The count is the statement's rowcount, which
    counts only the rows this call really inserted (never those another worker added meanwhile).

    PostgreSQL: one INSERT … SELECT per batch that joins the contact ids (with the number of their
    group) to the groups' columns, all passed as arrays: a few dozen parameters, where a multi-row
    VALUES had ~23,000 placeholders for psycopg to parse and the server to plan for every batch, and an
    executemany a round trip of 23 parameters per row. ORDER BY keeps the ids in the order given (the
    dispatcher sends rows due at the same time in id order, as before: by contact).
    SQLite: an executemany of the plain INSERT on the driver's cursor, each group's values converted
    once by SQLAlchemy's own bind processors (sqlite3 sums the rowcount over the rows)."""
    if not rows:
        return 0
    now = utcnow()
    owned: dict[int, dict] = {}  # id() of a caller's group dict -> the full columns of its rows

    def full(columns: dict) -> dict:
        out = owned.get(id(columns))
        if out is None:
            out = owned[id(columns)] = {**columns, "status": "pending", "attempts": 0,
                                        "priority": lane_of(columns["purpose"]), "created_at": now, "updated_at": now}
        return out

    rows = [(contact_id, full(columns)) for contact_id, columns in rows]
    if db.engine.dialect.name == "postgresql":
        number: dict[int, int] = {}  # id() of a group's dict -> its position in ``groups``, from 1
        groups: list[dict] = []
        of_row = []
        for _contact_id, columns in rows:
            n = number.get(id(columns))
            if n is None:
                groups.append(columns)
                n = number[id(columns)] = len(groups)
            of_row.append(n)
        names = tuple(groups[0])
        params = {"contact_ids": ",".join(str(contact_id) for contact_id, _ in rows),
                  "groups": ",".join(map(str, of_row)),
                  **{f"g{i}": [g[name] for g in groups] for i, name in enumerate(names)}}
        result = db.session.execute(_grouped_insert(names), params, execution_options={"preserve_rowcount": True})
    else:
        sql, order = _sqlite_insert(tuple(rows[0][1]))
        bound: dict[int, tuple[tuple, tuple]] = {}  # id() of a group's dict -> its values, converted once
        values = []
        for contact_id, columns in rows:
            around = bound.get(id(columns))
            if around is None:
                around = bound[id(columns)] = _bind(columns, order)
            values.append((*around[0], contact_id, *around[1]))
        result = db.session.connection().exec_driver_sql(sql, values, execution_options={"preserve_rowcount": True})
    if result.rowcount < 0:  # pragma: no cover - a driver that does not report it
        raise RuntimeError("the database driver did not report how many rows were inserted")
    return result.rowcount


@functools.cache
def _sqlite_insert(names: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The INSERT … ON CONFLICT DO NOTHING for SQLite, and its parameters' order."""
    stmt = sqlite.insert(OutboundMessage.__table__).on_conflict_do_nothing(
        index_elements=["step_id", "contact_id", "occurrence"])
    compiled = stmt.compile(dialect=db.engine.dialect, column_keys=[*names, "contact_id"])
    order = tuple(compiled.positiontup)
    assert sorted(order) == sorted([*names, "contact_id"]), order  # no column defaults left to SQLAlchemy
    return str(compiled), order


def _bind(columns: dict, order: tuple[str, ...]) -> tuple[tuple, tuple]:
    """A group's values as the driver gets them (SQLAlchemy's conversions: JSON, UTC datetimes…), split
    around the contact id."""
    dialect, table = db.engine.dialect, OutboundMessage.__table__
    out = []
    for name in order:
        if name == "contact_id":
            continue
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        out.append(process(columns[name]) if process else columns[name])
    at = order.index("contact_id")
    return tuple(out[:at]), tuple(out[at:])


@functools.cache
def _grouped_insert(names: tuple[str, ...]) -> sa.Insert:
    """INSERT INTO outbound_message (names…, contact_id)
       SELECT g.names…, r.contact_id
       FROM unnest(string_to_array(:contact_ids, ',')::int[], string_to_array(:groups, ',')::int[])
            WITH ORDINALITY AS r(contact_id, grp, position)
       JOIN unnest(:g0, :g1, …) WITH ORDINALITY AS g(names…, grp) ON g.grp = r.grp
       ORDER BY r.position ON CONFLICT (step_id, contact_id, occurrence) DO NOTHING"""
    table = OutboundMessage.__table__

    def numbers(name: str):
        return sa.cast(sa.func.string_to_array(sa.bindparam(name, type_=sa.Text), ","), postgresql.ARRAY(sa.Integer))

    r = sa.func.unnest(numbers("contact_ids"), numbers("groups")).table_valued(
        "contact_id", "grp", with_ordinality="position").render_derived(name="r")
    g = sa.func.unnest(*[sa.bindparam(f"g{i}", type_=postgresql.ARRAY(table.c[name].type))
                         for i, name in enumerate(names)]).table_valued(
        *names, with_ordinality="grp").render_derived(name="g")
    select = (sa.select(*[g.c[name] for name in names], r.c.contact_id).select_from(r.join(g, g.c.grp == r.c.grp))
              .order_by(r.c.position))
    return postgresql.insert(table).from_select([*names, "contact_id"], select).on_conflict_do_nothing(
        index_elements=["step_id", "contact_id", "occurrence"])


def record_history(rows: list[dict]) -> None:
    """Rows of messages sent in the past, with their final statuses (the demo's completed campaign)."""
    db.session.execute(sa.insert(OutboundMessage), [{"priority": lane_of(r.get("purpose", "campaigns")), **r}
                                                    for r in rows])


# --- enqueue: answers to a person ------------------------------------------------------------------------

def enqueue_reply(contact, channel: str, text: str, *, kind: str, occurrence: str, campaign_id: int | None = None,
                  language: str | None = None, now: datetime | None = None) -> OutboundMessage | None:
    """Queue an answer to a person in the first lane, due now, valid one hour (``purpose = "reply"``: it relies on no
    campaign consent, the person wrote to us). ``kind`` says what it answers: after an opt-out on this
    channel only what the person explicitly asks for is queued (``EXPLICIT_REPLIES``, and an officer's
    answer to a message the person wrote after opting out); anything else returns None. ``occurrence``
    makes the row unique per contact (``r<inbound id>:<kind>``, ``manual:<inbound id>``). Flushes."""
    now = now or utcnow()
    state = contact.channel(channel)
    if state is not None and state.opted_out_at is not None:
        wrote_since = state.last_inbound_at is not None and state.last_inbound_at > state.opted_out_at
        if not (kind in EXPLICIT_REPLIES or (kind == "manual" and wrote_since)):
            log.info("answer %s to contact %s not queued: opted out of %s", kind, contact.id, channel)
            return None
    row = OutboundMessage(
        contact_id=contact.id, campaign_id=campaign_id, step_id=None, occurrence=occurrence[:32],
        language=language or contact.language, channel=channel, purpose="reply", priority=LANE_NOW,
        country=contact.country, body=text, segments=count_segments(text) if channel == "sms" else 1,
        earliest_at=now, expires_at=now + REPLY_VALIDITY, status="pending", attempts=0, created_at=now,
        updated_at=now)
    db.session.add(row)
    db.session.flush()
    return row


# --- campaign controls -----------------------------------------------------------------------------------

def _campaign_move(campaign_id: int, source: str, reason: str | None = None) -> int:
    to, sources = ENGINE_MOVES[source]
    values = {"status": to, "updated_at": utcnow()}
    if reason:
        values["reason"] = reason
    m = OutboundMessage
    return db.session.execute(sa.update(m).where(m.campaign_id == campaign_id, m.status.in_(sources))
                              .values(**values).execution_options(synchronize_session=False)).rowcount or 0


def hold(campaign_id: int) -> int:
    """Pause: what has not left yet waits (claimed rows finish their call)."""
    return _campaign_move(campaign_id, "hold")


def release(campaign_id: int) -> int:
    return _campaign_move(campaign_id, "release")


def cancel(campaign_id: int, reason: str = "campaign_ended") -> int:
    return _campaign_move(campaign_id, "cancel", reason)


def discard_held(campaign_id: int) -> int:
    """The content changed while paused: rows that never left are dropped; the next sweep after the new
    approval plans those people again with the approved text."""
    m = OutboundMessage
    removed = db.session.execute(sa.delete(m).where(m.campaign_id == campaign_id, m.status == "held")
                                 .execution_options(synchronize_session=False)).rowcount or 0
    if removed:
        outbox_rows_removed.send(campaign_id=campaign_id)
    return removed



# --- people ----------------------------------------------------------------------------------------------

def cancel_for_contact(contact_id: int, channels: list[str], reason: str = "opted_out") -> int:
    """Every row still waiting for this person on these channels, of every purpose, is cancelled: what
    was queued before an opt-out never goes after it. A row already claimed is stopped by the
    dispatcher's last check; the confirmation the opt-out queues comes after this, in the same
    transaction."""
    m = OutboundMessage
    return db.session.execute(
        sa.update(m).where(m.contact_id == contact_id, m.channel.in_(channels), m.status.in_(NOT_SENT))
        .values(status="cancelled", reason=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount or 0


@consent_withdrawn.connect
def _on_consent_withdrawn(_sender, *, contact_id: int, channel: str, **_extra) -> None:
    cancel_for_contact(contact_id, [channel])


# --- the dispatcher ---------------------------------------------------------------------------------------

def claimed(row: OutboundMessage, *, holder: str, lease_until: datetime, sender_id: int | None, channel: str,
            units: int, now: datetime) -> None:
    """A due row this dispatcher locked (``FOR UPDATE``) is now ``sending``, committed before any call."""
    assert row.status == "pending", row.status
    row.status, row.attempts, row.lease_until = "sending", row.attempts + 1, lease_until
    row.claimed_by, row.sender_id, row.sent_channel, row.updated_at = holder, sender_id, channel, now
    if channel == "sms":
        row.segments = units


def skip(row: OutboundMessage, status: str, reason: str, now: datetime) -> None:
    """A due row this dispatcher locked that will never go (``skipped``, ``missed``, ``failed``)."""
    assert row.status == "pending" and status in ("skipped", "missed", "failed"), (row.status, status)
    row.status, row.reason, row.updated_at = status, reason, now


def postpone(row: OutboundMessage, until: datetime, now: datetime) -> None:
    """A due row this dispatcher locked waits (quiet hours where the person is)."""
    row.earliest_at, row.updated_at = until, now


def return_unsent(session: Session, message_ids: list[int], holder: str) -> int:
    """Rows this dispatcher claimed and never called go back to ``pending`` at once (a clean stop), not
    after their lease and a lookup. Only rows still ``sending`` under this holder's claim."""
    if not message_ids:
        return 0
    m = OutboundMessage
    return session.execute(
        sa.update(m).where(m.id.in_(message_ids), m.status.in_(allowed_from("pending", "returned")),
                           m.claimed_by == holder)
        .values(status="pending", claimed_by=None, lease_until=None, attempts=m.attempts - 1, reason="returned",
                updated_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount or 0


def expire_leases(session: Session, now: datetime) -> int:
    """A row left ``sending`` past its lease may or may not have reached Twilio: uncertain."""
    m = OutboundMessage
    return session.execute(sa.update(m).where(m.status == "sending", m.lease_until < now)
                           .values(status="uncertain", reason="lease_expired", updated_at=now)).rowcount or 0


_m = OutboundMessage
# The statements each send runs, built once: at hundreds of sends a second, building SQLAlchemy
# statements costs more CPU than running them.
_SENT = sa.update(_m).where(_m.id == sa.bindparam("message_id_"), _m.status.in_(allowed_from("queued", "send"))).values(
    provider_sid=sa.bindparam("sid"), sent_at=sa.bindparam("now"), error_code=None, updated_at=sa.bindparam("now"),
    next_check_at=sa.bindparam("check"),
    status=sa.case((_m.status.in_(allowed_from("sent", "send")), sa.bindparam("ours")), else_=_m.status))
# The send's answer came after a callback had already moved the row on: keep the SID and time only.
_SENT_LATE = sa.update(_m).where(_m.id == sa.bindparam("message_id_")).values(
    provider_sid=sa.func.coalesce(_m.provider_sid, sa.bindparam("sid")),
    sent_at=sa.func.coalesce(_m.sent_at, sa.bindparam("now")))
_EVENT = sa.insert(MessageEvent).values(
    message_id=sa.bindparam("message_id_"), provider_sid=sa.bindparam("sid"), status=sa.bindparam("status_"),
    error_code=sa.bindparam("code"), source=sa.bindparam("source_"), applied=sa.bindparam("applied_"),
    received_at=sa.bindparam("now"))


def record_send(conn: sa.Connection, message_id: int, sid: str, twilio_status: str, now: datetime,
                check_after: timedelta) -> bool:
    """Twilio accepted the message: its SID, the time, and the status it gave (``queued`` or ``accepted``,
    both ours ``queued``); if no final report comes within ``check_after``, the status poll asks. A
    status callback may have overtaken the answer: then only the SID and the time are kept, and the
    event says it did not apply."""
    ours = TWILIO_TO_OURS.get((twilio_status or "").lower(), "queued")
    params = {"message_id_": message_id, "sid": sid, "now": now, "ours": ours, "check": now + check_after}
    applied = conn.execute(_SENT, params).rowcount == 1
    if not applied:
        conn.execute(_SENT_LATE, params)
    conn.execute(_EVENT, {"message_id_": message_id, "sid": sid, "status_": (twilio_status or "")[:16], "code": None,
                          "source_": "send", "applied_": applied, "now": now})
    return applied


#: What the dispatcher does after a failed call, by the kind of failure (see ``channels.KINDS``).
FAILURE_REASONS = {"opted_out": "opted_out_at_twilio", "invalid_number": "invalid_number",
                   "window": "whatsapp_window_closed", "fatal": "error", "retry": "too_many_attempts"}


def record_failure(session: Session, message_id: int, kind: str, code: int | None, *, attempts_left: bool,
                   retry_at: datetime | None = None, now: datetime | None = None) -> str:
    """A call that failed. 429 and other "never processed" errors go back to ``pending`` for a later
    retry while attempts are left; 5xx and timeouts make the row ``uncertain`` (reconciled before any
    resend); a refusal fails it. Only a row still ``sending`` moves: one a callback already moved on
    (Twilio had it after all) stays where it is. Returns the outcome for the tick's counts."""
    now = now or utcnow()
    if kind == "retry" and attempts_left:
        moved = advance(session, message_id, "pending", source="retry", reason="rate_limited", error_code=code,
                        values={"next_attempt_at": retry_at, "error_code": code}, now=now)
        outcome = "retried"
    elif kind == "uncertain":
        moved = advance(session, message_id, "uncertain", source="timeout", reason="no_reply", error_code=code,
                        values={"error_code": code}, now=now)
        outcome = "uncertain"
    else:
        moved = advance(session, message_id, "failed", source="refused", reason=FAILURE_REASONS.get(kind, "error"),
                        error_code=code, now=now)
        outcome = "failed"
    session.commit()
    return outcome if moved else "overtaken"


def record_skip_before_send(session: Session, message_id: int, reason: str) -> bool:
    moved = advance(session, message_id, "skipped", source="check", reason=reason)
    session.commit()
    return moved


def record_crash(session: Session, message_id: int) -> bool:
    moved = advance(session, message_id, "uncertain", source="crash", reason="send_crashed")
    session.commit()
    return moved


# --- what Twilio tells us afterwards ----------------------------------------------------------------------

def record_report(session: Session, msg: OutboundMessage, twilio_status: str, error_code: int | None, *,
                  source: str, provider_sid: str | None = None, check_at: datetime | None = None) -> bool:
    """A status from Twilio (``callback``, ``lookup``, ``poll``), logged and applied by rank: never
    backwards, terminal stays terminal. A lookup that finds a row we were unsure about also gives it its
    SID and send time."""
    ours = TWILIO_TO_OURS.get((twilio_status or "").lower())
    now = utcnow()
    values: dict = {}
    if provider_sid and not msg.provider_sid:
        values["provider_sid"] = provider_sid
    if source == "lookup" and msg.sent_at is None:
        values["sent_at"] = now
    if source in ("lookup", "poll"):  # when to ask again, should it still be waiting for its final report
        values["next_check_at"] = check_at
    if ours is None:  # a status we do not know: kept in the log, applied to nothing
        session.add(MessageEvent(message_id=msg.id, provider_sid=provider_sid or msg.provider_sid,
                                 status=(twilio_status or "")[:16], error_code=error_code, source=source,
                                 applied=False, received_at=now))
        applied = False
    else:
        applied = advance(session, msg, ours, source=source, error_code=error_code, values=values,
                          provider_sid=provider_sid or msg.provider_sid, event_status=twilio_status, now=now)
    if not applied and values:  # the SID, the time and the next poll are facts even when the status is not
        m = OutboundMessage
        keep = {k: v for k, v in values.items() if k != "sent_at"}
        if source == "lookup" and msg.sent_at is None:
            keep["sent_at"] = sa.func.coalesce(m.sent_at, now)
        if keep:
            session.execute(sa.update(m).where(m.id == msg.id).values(**keep)
                            .execution_options(synchronize_session=False))
    return applied


def record_callback(session: Session, message_id: int, twilio_status: str, error_code: int | None,
                    sid: str) -> str:
    """A signed status callback: ``"unknown"`` (the row is gone: erased or purged), ``"mismatch"`` (the
    SID is another message's), else ``"recorded"``. The caller commits."""
    msg = session.get(OutboundMessage, message_id)
    if msg is None:
        return "unknown"
    if msg.provider_sid and sid and sid != msg.provider_sid:
        return "mismatch"
    record_report(session, msg, twilio_status, error_code, source="callback",
                  provider_sid=sid[:34] if sid.startswith(("SM", "MM")) else None)
    return "recorded"


def schedule_lookup(session: Session, message_ids: list[int], at: datetime) -> None:
    """When to look these uncertain rows up at Twilio next (also: taken for a lookup until then)."""
    m = OutboundMessage
    session.execute(sa.update(m).where(m.id.in_(message_ids), m.status == "uncertain").values(next_attempt_at=at)
                    .execution_options(synchronize_session=False))


def give_up(session: Session, msg: OutboundMessage, reason: str, now: datetime) -> bool:
    """An uncertain row whose fate cannot be told: failed with its reason, never resent."""
    return advance(session, msg, "failed", source="ambiguous", reason=reason, now=now)


def resend(session: Session, msg: OutboundMessage, now: datetime) -> bool:
    """Twilio has no record of an uncertain row well after its call: it never got it; send it again."""
    return advance(session, msg, "pending", source="resend", reason="resend_after_lookup",
                   values={"next_attempt_at": now}, now=now)


# --- the status poll: recovering lost callbacks ---------------------------------------------------------

def next_check(sent_at: datetime | None, now: datetime) -> datetime | None:
    """When to ask Twilio again about a message still waiting for its final report; None: stop asking."""
    age = now - (sent_at or now)
    for younger_than, every in CHECK_SCHEDULE:
        if age < younger_than:
            return now + every
    return None


def take_for_check(session: Session, now: datetime, limit: int, *, lease: timedelta, skip_locked: bool) -> list[int]:
    """Rows due for a status poll, taken: their next check moves past ``lease``, so that no other tick or
    worker asks about them meanwhile. The caller commits."""
    m = OutboundMessage
    q = (sa.select(m.id).where(m.status.in_(AWAITING_REPORT), m.next_check_at <= now)
         .order_by(m.next_check_at).limit(limit))
    if skip_locked:
        q = q.with_for_update(skip_locked=True)
    ids = list(session.scalars(q))
    if ids:
        schedule_check(session, ids, now + lease)
    return ids


def schedule_check(session: Session, message_ids: list[int], at: datetime | None) -> None:
    """When to poll these rows next (None: never again)."""
    m = OutboundMessage
    session.execute(sa.update(m).where(m.id.in_(message_ids)).values(next_check_at=at)
                    .execution_options(synchronize_session=False))
