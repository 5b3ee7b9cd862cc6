"""The dispatcher: claims due outbox rows within each sender's budget, sends them concurrently through
the channel, and records what happened so that nobody gets a message twice and nothing is lost.

Claiming: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (any number of dispatchers); on SQLite one dispatcher
holds the ``dispatcher_lock`` row and a second one refuses to start. A row is marked ``sending`` (and
committed) before its API call; a row still ``sending`` after its lease is *uncertain* and is reconciled
with a lookup at Twilio before anything is sent again.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from ..audience.models import Contact, ContactChannel
from ..core.database import dialect_insert
from ..core.localtime import in_quiet_hours, out_of_quiet_hours
from ..core.models import utcnow
from ..extensions import db
from . import channels as ch
from . import outbox, sendability
from .models import DispatcherLock, OutboundMessage, Sender, SenderBudget
from .segments import segments
from .services import SendingAddress, sending_address

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)  # defaults; the app's C4D_DISPATCH_* settings override them
LOCK_STALE = timedelta(seconds=30)
MAX_ATTEMPTS = 5  # sends that reached Twilio's door and failed in a way that may repeat
MAX_RATE_LIMITED = 30  # 429s were never processed: retrying is safe, so they get far more patience
VALIDITY_PERIOD = 4 * 3600  # seconds Twilio may hold a message in its queue before giving up
RECONCILE_GRACE = timedelta(seconds=10)  # a lookup that finds nothing this long after the failure: resend
LOOKUP_MARGIN = timedelta(minutes=10)
LOOKUP_LEASE = timedelta(seconds=30)  # a row taken for a lookup is not taken again for this long
LOOKUP_RETRY = timedelta(seconds=10)  # Twilio did not answer the lookup: try again after this
LOOKUP_THREADS = 4
HOUSEKEEPING = 1.0  # seconds between two rounds of lease expiry, lookups and polls on the real clock
AMBIGUOUS = object()  # a lookup found more than one message that could be this row's
HORIZON = timedelta(seconds=1)  # claim at most this far ahead of each sender's pace
# Pacing on the real clock. Slots are booked in the sender's shared budget row 1/(cap × HEADROOM) apart, so
# every worker's calls together keep to the cap; a job is handed to a thread LEAD before its slot (the
# last check and the SDK's work on the request happen before it) and leaves at its slot. A job that
# reaches the wire more than LATE after its slot (a busy interpreter, a slow query) books a new slot
# rather than go on a stale one: in any one-second window at Twilio's end there are then at most
# cap × HEADROOM × (1 + LATE) + 1 calls, within the 5 % that network jitter is allowed.
HEADROOM = 0.98
LEAD = 0.1
LATE = 0.04


class DispatcherBusy(RuntimeError):
    """Another dispatcher is running on this SQLite database."""


@dataclass
class SendJob:
    message_id: int
    contact_id: int
    channel: str
    purpose: str
    to: str
    sender: SendingAddress
    fields: dict
    units: int
    not_before: datetime | None = None  # this job's slot in its sender's second (pacing)
    step: float = 0.0  # seconds of the sender's budget the slot takes (a late job books as much again)
    claimed_at: datetime | None = None  # the tick's time at the claim (the tests' clocks may be simulated)
    claimed_mono: float = field(default_factory=time.monotonic)


@dataclass
class TickStats:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    uncertain: int = 0
    failed: int = 0
    skipped: int = 0
    overtaken: int = 0  # a callback had already moved the row on when the call's answer came
    reconciled: int = 0
    polled: int = 0  # statuses asked of Twilio for rows whose final report did not come
    returned: int = 0  # claimed, then given back unsent because the dispatcher was stopping
    # Rows were due but waited: the pool was full, or a sender's next second was booked (by this worker or
    # another). Then the next tick comes soon, not after an idle pause, or the booked second runs out.
    held_back: bool = False
    by_sender: dict[str, int] = field(default_factory=dict)


class Dispatcher:
    def __init__(self, app, *, name: str | None = None, pool_size: int = 16, batch: int = 500,
                 channel_factory: Callable | None = None, reconcile_grace: timedelta | None = None):
        self.app = app
        cfg = app.config
        self.lease = timedelta(seconds=cfg.get("C4D_DISPATCH_LEASE_SECONDS", LEASE.total_seconds()))
        # A call starts only if its row's lease outlasts the HTTP timeouts by a second.
        self.call_budget = timedelta(seconds=cfg.get("TWILIO_TIMEOUT_SECONDS", 5)
                                     + cfg.get("TWILIO_CONNECT_TIMEOUT_SECONDS", 3) + 1)
        if self.lease <= self.call_budget:
            raise ValueError("C4D_DISPATCH_LEASE_SECONDS must exceed TWILIO_TIMEOUT_SECONDS + "
                             "TWILIO_CONNECT_TIMEOUT_SECONDS by more than a second")
        self.lock_stale = timedelta(seconds=cfg.get("C4D_DISPATCH_LOCK_STALE_SECONDS", LOCK_STALE.total_seconds()))
        # A message Twilio accepted and that has no final report this long after: ask Twilio (lost callbacks).
        self.check_after = timedelta(minutes=cfg.get("C4D_STATUS_CHECK_AFTER_MINUTES", 30))
        self.reconcile_grace = reconcile_grace or timedelta(
            seconds=cfg.get("C4D_RECONCILE_GRACE_SECONDS", RECONCILE_GRACE.total_seconds()))
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        self.batch = batch
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="c4d-send")
        self.channel_factory = channel_factory or (lambda: ch.channel_from_config(app.config))
        self._local = threading.local()
        self.postgres = db.engine.dialect.name == "postgresql"
        self.engine = db.engine  # the sending threads use it directly, outside any app context
        self._inflight: list = []
        self.max_inflight = pool_size * 4
        self._pacer = _Pacer(self._submit)
        self._queued: dict = {}  # future -> job, for jobs handed to the pool and not finished
        self._queued_lock = threading.Lock()
        self._stopping = False
        self._housekeeping_at = 0.0
        # Lookups (reconciling uncertain rows) run beside the sends, never in the tick: a slow answer from
        # Twilio must not hold up the claims.
        self._lookups = ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="c4d-lookup")
        self._lookup_backlog = 0
        self._lookup_lock = threading.Lock()
        self._spacing = _Spacing()

    # --- life cycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.postgres:
            self._take_sqlite_lock()

    def stop(self) -> None:
        """A clean stop (SIGTERM, Ctrl+C): rows claimed but not yet called go back to ``pending`` at once,
        not after a lease and a lookup; calls already on their way finish (within the HTTP timeouts)."""
        self._stopping = True
        unsent = self._pacer.stop()  # jobs still waiting for their slot
        self.pool.shutdown(wait=False, cancel_futures=True)  # jobs in the pool's queue, not started
        with self._queued_lock:
            unsent += [job for future, job in self._queued.items() if future.cancelled()]
        if unsent:
            with Session(self.engine) as session:
                returned = outbox.return_unsent(session, [job.message_id for job in unsent], self.name)
                session.commit()
            log.info("stopping: %s claimed messages returned to the queue", returned)
        self.pool.shutdown(wait=True)
        self._lookups.shutdown(wait=True, cancel_futures=True)
        if not self.postgres:
            db.session.execute(sa.delete(DispatcherLock).where(DispatcherLock.name == "dispatcher",
                                                               DispatcherLock.holder == self.name))
            db.session.commit()

    def _take_sqlite_lock(self, now: datetime | None = None) -> None:
        now = now or utcnow()
        row = db.session.get(DispatcherLock, "dispatcher")
        if (row is not None and row.holder != self.name and now - row.heartbeat_at < self.lock_stale
                and not _holder_is_dead(row.holder)):
            db.session.rollback()
            raise DispatcherBusy(
                f"another dispatcher ({row.holder}) is running on this SQLite database; SQLite allows one. "
                "Stop it first, or use PostgreSQL to run several workers.")
        if row is None:
            db.session.add(DispatcherLock(name="dispatcher", holder=self.name, heartbeat_at=now))
        else:
            row.holder, row.heartbeat_at = self.name, now
        db.session.commit()

    # --- one tick ----------------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, *, wait: bool = True) -> TickStats:
        """Reconcile what is uncertain, claim what is due within budget, send it, record the results.

        Running on the real clock (``now`` not given), each claimed send waits for its slot in its
        sender's second, so the rate Twilio sees is even and under the cap. With ``wait=False`` (the
        worker) the sends run on while the next tick claims; in-flight work is bounded."""
        pace = now is None
        now = now or utcnow()
        stats = TickStats()
        # The rest of the housekeeping (the SQLite lock's heartbeat, leases, lookups, polls) once a second
        # on the real clock, not at every tick: several workers ticking a hundred times a second each
        # spent the database (and the CPU the sends need) on queries that find nothing.
        if not pace or time.monotonic() >= self._housekeeping_at:
            self._housekeeping_at = time.monotonic() + HOUSEKEEPING
            if not self.postgres:
                self._take_sqlite_lock(now)
            self._expire_leases(now)
            stats.reconciled = self._reconcile(now, inline=wait or not pace)
            stats.polled = self._poll(now, inline=wait or not pace)
        self._inflight = [f for f in self._inflight if not f.done()] + self._pacer.take_futures()
        if len(self._inflight) + self._pacer.waiting() >= self.max_inflight:
            stats.held_back = True
            return stats  # the pool is busy; claim again when it catches up
        room = self.max_inflight - len(self._inflight) - self._pacer.waiting()
        jobs = self._claim(now, stats, pace=pace, limit=min(room, self.batch) if not wait else self.batch)
        if not wait and pace:  # each job leaves at its slot; the pacer keeps pool threads free meanwhile
            for job in jobs:
                self._pacer.add(job)
            return stats
        futures = [self._submit(job) for job in jobs]
        self._inflight.extend(futures)
        if wait:
            for future in futures:
                outcome = future.result()
                setattr(stats, outcome, getattr(stats, outcome) + 1)
        return stats

    def _expire_leases(self, now: datetime) -> None:
        outbox.expire_leases(db.session, now)
        db.session.commit()

    def _due_query(self, now: datetime, limit: int, lane: int) -> sa.Select:
        """Due rows of one lane, oldest first. One query per lane, each an index range on (status, lane,
        earliest_at): ordering by the lane within one query would walk every future row of the first
        lane before reaching the second."""
        m = OutboundMessage
        q = (sa.select(m)
             .where(m.status == "pending", m.priority == lane, m.earliest_at <= now,
                    sa.or_(m.next_attempt_at.is_(None), m.next_attempt_at <= now))
             .order_by(m.earliest_at, m.id).limit(limit))
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        return q

    def _due(self, now: datetime, limit: int) -> list[OutboundMessage]:
        """Due rows, answers to people first (a STOP confirmation never waits behind a broadcast)."""
        rows: list[OutboundMessage] = []
        for lane in outbox.LANES:
            if len(rows) < limit:
                rows += db.session.scalars(self._due_query(now, limit - len(rows), lane)).all()
        return rows

    def _budget(self, key: str, now: datetime, pace: bool) -> tuple[SenderBudget, datetime]:
        """The sender's row, locked for this claim on PostgreSQL, and the earliest slot it may book (a
        second of slots is booked from there).
        ``window_start`` holds the sender's next free slot: a continuous token bucket, so no burst can
        straddle two seconds. On the real clock the time is read once the lock is held (the tick's
        ``now`` may be stale by then, and slots booked in the past would all leave at once)."""
        q = sa.select(SenderBudget).where(SenderBudget.sender_key == key)
        if self.postgres:
            q = q.with_for_update()
        row = db.session.scalar(q)
        if row is None:  # the sender's first claim; several dispatchers may get here at once
            db.session.execute(dialect_insert(SenderBudget.__table__).values(sender_key=key, window_start=now, used=0)
                               .on_conflict_do_nothing())
            row = db.session.scalar(q)
        at = utcnow() if pace else now
        earliest = at + timedelta(seconds=LEAD) if pace else at  # room for the job to reach its thread
        if row.window_start < earliest:
            row.window_start = earliest  # idle capacity is not saved up: no burst after a quiet spell
        return row, earliest

    def _claim(self, now: datetime, stats: TickStats, *, pace: bool = False, limit: int | None = None
               ) -> list[SendJob]:
        """Due rows within each sender's budget, marked ``sending``; at most ``limit`` (the room left in
        the pool: a claimed row waits for a thread, and its lease runs while it waits)."""
        config = self.app.config
        rows = self._due(now, limit or self.batch)
        if not rows:
            db.session.commit()
            return []
        contacts = {c.id: c for c in db.session.scalars(
            sa.select(Contact).where(Contact.id.in_({r.contact_id for r in rows}))
            .options(selectinload(Contact.numbers), selectinload(Contact.channels)))}
        senders: dict[tuple[str, str], SendingAddress | None] = {}
        going: dict[str, list[tuple]] = {}  # sender key -> rows that may go, in claim order (lane 0 first)
        for row in rows:
            if row.expires_at and now > row.expires_at:
                outbox.skip(row, "missed", "too_late", now)
                stats.skipped += 1
                continue
            later = _after_quiet_hours(row, now)
            if later is not None:  # late after downtime, and it is night where the person is: wait
                outbox.postpone(row, later, now)
                continue
            contact = contacts.get(row.contact_id)
            decision = self._decide(row, contact, now)
            if isinstance(decision, str):  # a reason to skip
                outbox.skip(row, "skipped", decision, now)
                stats.skipped += 1
                continue
            channel, fields, units = decision
            where = (channel, row.country)
            if where not in senders:  # one lookup per channel and country per claim, not per row
                senders[where] = sending_address(channel, row.country, config)
            sender = senders[where]
            if sender is None:
                outbox.skip(row, "failed", "no_sender", now)
                stats.failed += 1
                continue
            going.setdefault(sender.key, []).append((row, contact, channel, fields, units, sender))
        # Slots last: each sender's budget row is locked only for the booking, just before the commit, so
        # that other workers wait on it briefly and the slots are booked from a fresh clock.
        jobs: list[SendJob] = []
        for key, candidates in going.items():
            budget, booked_at = self._budget(key, now, pace)
            for row, contact, channel, fields, units, sender in candidates:
                slot = budget.window_start
                if slot >= booked_at + HORIZON:
                    stats.held_back = True
                    break  # this sender's next second is booked; its other rows wait for a later tick
                step = units / (sender.cap * (HEADROOM if pace else 1))
                budget.window_start = slot + timedelta(seconds=step)
                budget.used += units
                to = ("whatsapp:" if channel == "whatsapp" else "") + contact.current_number.e164
                outbox.claimed(row, holder=self.name, lease_until=now + self.lease, sender_id=sender.sender_id,
                               channel=channel, units=units, now=now)
                jobs.append(SendJob(row.id, row.contact_id, channel, row.purpose, to, sender, fields, units,
                                    slot if pace else None, step, now))
                stats.by_sender[key] = stats.by_sender.get(key, 0) + units
        stats.claimed = len(jobs)
        db.session.commit()  # rows are "sending" before any call leaves the process
        return jobs

    def _decide(self, row: OutboundMessage, contact: Contact | None, now: datetime):
        """The channel, API fields and units for this row now, or the reason it cannot go: the one
        sendability decision (``sendability.decide``), the same the checks and the estimate make."""
        if contact is None:
            return "not_active"
        route = sendability.decide(sendability.message_of(row), active=contact.status == "active",
                                   has_number=contact.current_number is not None,
                                   channels=sendability.states_of(contact, row.purpose), now=now)
        if isinstance(route, str):
            return route
        callback = self.app.config["C4D_PUBLIC_URL"].rstrip("/") + f"/twilio/status?m={row.id}"
        base = {"status_callback": callback, "validity_period": VALIDITY_PERIOD}
        if route.form == "template":
            return "whatsapp", {**base, "content_sid": row.template_sid,
                                "content_variables": row.template_variables or {}}, 1
        if route.form == "fallback":
            return "sms", {**base, "body": row.sms_fallback_body}, segments(row.sms_fallback_body)
        fields = {**base, "body": row.body}
        if route.channel == "whatsapp":
            if row.media_url:
                fields["media_url"] = [row.media_url]
            return "whatsapp", fields, 1
        return "sms", fields, max(row.segments, 1)

    # --- sending (in the pool's threads) -------------------------------------------------------------

    def _channel(self):
        channel = getattr(self._local, "channel", None)
        if channel is None:  # one HTTP session per thread: connections are reused
            channel = self._local.channel = self.channel_factory()
        return channel

    def _check(self, job: SendJob) -> str | None:
        """Right before the call, one read: is the row still ours, with enough lease left for the call to
        finish (or time out) before anyone may call it uncertain? A job that waited too long (a stalled
        process, a long queue) may already be uncertain and reconciled, even resent: it must not go.
        And the person may have said STOP since the row was claimed. None means go."""
        with self.engine.connect() as conn:
            row = conn.execute(_check_statement(job.purpose), {"id": job.message_id, "channel": job.channel}).first()
        # The claim itself is the token: the same holder, person and lease. On SQLite a row deleted with an
        # erased person leaves its id free for the next row, which must not inherit this job.
        if (row is None or row.status != "sending" or row.claimed_by != self.name or row.contact_id != job.contact_id
                or row.lease_until != job.claimed_at + self.lease
                or row.lease_until < job.claimed_at + timedelta(seconds=time.monotonic() - job.claimed_mono)
                + self.call_budget):
            return "stale"
        if job.purpose == "reply":  # an answer queued before the opt-out never goes after it
            if row.opted_out_at is not None and row.created_at < row.opted_out_at:
                return "opted_out"
        elif row.opted_out_at is not None or not row[4]:
            return "opted_out"
        return None

    def _submit(self, job: SendJob):
        """Hand a job to the pool, remembered until it finishes (a stop returns those never started)."""
        future = self.pool.submit(self._send, job)
        with self._queued_lock:
            self._queued[future] = job
        future.add_done_callback(self._forget)
        return future

    def _forget(self, future) -> None:
        if not future.cancelled():  # a cancelled job is returned by stop(), which reads it here
            with self._queued_lock:
                self._queued.pop(future, None)

    def _send(self, job: SendJob) -> str:
        """One API call, with plain statements around it: this runs hundreds of times a second."""
        if self._stopping:  # started just as the worker stops: back to the queue, no call
            with Session(self.engine) as session:
                outbox.return_unsent(session, [job.message_id], self.name)
                session.commit()
            return "returned"
        problem = self._check(job)
        if problem == "stale":
            log.warning("message %s waited too long for its call; left to reconciliation", job.message_id)
            return "uncertain"
        if problem == "opted_out":
            with Session(self.engine) as session:
                outbox.record_skip_before_send(session, job.message_id, "opted_out_before_send")
            return "skipped"
        channel = self._channel()  # before the spacing: a thread's first client takes a while to build
        gate = None
        if job.not_before is not None:  # paced: the job leaves at its slot, never on a stale one
            def gate(job=job):
                self._pace(job)
        try:
            result = channel.send(to=job.to, **job.sender.api_fields, **job.fields, before_call=gate)
        except ch.SendError as exc:
            with Session(self.engine) as session:
                outcome = _record_failure(session, job, exc)
            if exc.kind == ch.OPTED_OUT:
                self._opt_out(job)
            return outcome
        except Exception:  # noqa: BLE001 - never lose track of a row: unknown outcome means uncertain
            log.exception("send of message %s raised", job.message_id)
            with Session(self.engine) as session:
                outbox.record_crash(session, job.message_id)
            return "uncertain"
        with self.engine.begin() as conn:
            outbox.record_send(conn, job.message_id, result.sid, result.status, utcnow(), self.check_after)
        return "sent"

    def _pace(self, job: SendJob) -> None:
        """Right before the request goes on the wire: wait for the job's slot; a job that comes more than
        LATE after it books a new one in the sender's shared budget (other workers' calls fill the slots
        around its old one). On SQLite (one dispatcher) the in-process spacing then guards against threads
        bunching up."""
        slot = job.not_before.timestamp()
        for attempt in range(4):
            wait = slot - time.time()
            if wait > 0:
                time.sleep(wait)
            # Late on arrival, or woken late from the wait (a busy interpreter): a new slot, not this one.
            if time.time() - slot <= LATE or not self.postgres or attempt == 3:  # SQLite: one dispatcher
                break
            slot = self._rebook(job)
        if not self.postgres:
            # One dispatcher owns the sender: it can also keep its own calls apart. With several workers
            # (PostgreSQL) the shared slots are the only truth; holding a call back here, past its slot,
            # would put it among other workers' calls.
            self._spacing.wait(job.sender.key, job.units, job.sender.cap)

    def _rebook(self, job: SendJob) -> float:
        """A new slot for a late job, at the sender's next free one (one statement, the row's lock held
        only for it); returns it as a Unix time."""
        now = utcnow()
        with self.engine.begin() as conn:
            end = conn.execute(_REBOOK, {"key": job.sender.key, "now": now + timedelta(seconds=LEAD),
                                         "step": job.step, "units": job.units}).scalar_one()
        return end.timestamp() - job.step

    def _opt_out(self, job: SendJob) -> None:
        """Twilio says the person replied STOP to this sender (21610): the channel is opted out through
        the consent service, in the ledger and the current state, like a STOP we received ourselves."""
        from ..audience.services import record_consent

        with self.app.app_context():
            contact = db.session.get(Contact, job.contact_id)
            state = contact.channel(job.channel) if contact is not None else None
            if state is not None and state.opted_out_at is None:
                record_consent(contact, job.channel, granted=False, source="keyword", actor=None,
                               notice_version="twilio-21610")
                db.session.commit()
            db.session.remove()

    # --- reconciling uncertain rows -------------------------------------------------------------------

    def _reconcile(self, now: datetime, *, inline: bool = True, limit: int = 50) -> int:
        """Uncertain rows due for a lookup are taken (their next lookup moved past a lease, so that no
        other tick or worker looks them up meanwhile), then looked up: at once (tests, ``tick(now)``) or
        in the lookup threads, so that the claims never wait for Twilio's answers. Returns how many were
        settled (inline only)."""
        if not inline:
            limit = self._lookup_room(limit)
            if limit <= 0:
                return 0
        m = OutboundMessage
        q = (sa.select(m.id).where(m.status == "uncertain",
                                   sa.or_(m.next_attempt_at.is_(None), m.next_attempt_at <= now))
             .order_by(m.id).limit(limit))
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        ids = list(db.session.scalars(q))
        if ids:
            outbox.schedule_lookup(db.session, ids, now + LOOKUP_LEASE)
        db.session.commit()  # never hold a transaction (on SQLite: the write lock) across an HTTP call
        if inline:
            return sum(self._reconcile_one(row_id, now) for row_id in ids)
        self._in_lookup_threads(self._reconcile_one, ids)
        return 0

    def _lookup_room(self, limit: int) -> int:
        """How many more lookups the lookup threads may take on now (their queue stays short)."""
        with self._lookup_lock:
            return min(limit, LOOKUP_THREADS * 8 - self._lookup_backlog)

    def _in_lookup_threads(self, work: Callable[[int, datetime], int], ids: list[int]) -> None:
        with self._lookup_lock:
            self._lookup_backlog += len(ids)
        for row_id in ids:
            self._lookups.submit(self._run_lookup, work, row_id)

    def _run_lookup(self, work: Callable[[int, datetime], int], row_id: int) -> None:
        try:
            with self.app.app_context():
                try:
                    work(row_id, utcnow())
                except Exception:  # noqa: BLE001 - the row is taken up again after its lease
                    db.session.rollback()
                    log.exception("lookup of message %s failed", row_id)
                finally:
                    db.session.remove()
        finally:
            with self._lookup_lock:
                self._lookup_backlog -= 1

    # --- the status poll: lost callbacks ------------------------------------------------------------------

    def _poll(self, now: datetime, *, inline: bool = True, limit: int = 20) -> int:
        """Rows Twilio accepted whose final report has not come by their next check: ask Twilio (fetch by
        SID), in the lookup threads unless ``inline``. Returns how many were asked (inline only)."""
        if not inline:
            limit = self._lookup_room(limit)
            if limit <= 0:
                return 0
        ids = outbox.take_for_check(db.session, now, limit, lease=LOOKUP_LEASE, skip_locked=self.postgres)
        db.session.commit()
        if inline:
            return sum(self._poll_one(row_id, now) for row_id in ids)
        self._in_lookup_threads(self._poll_one, ids)
        return 0

    def _poll_one(self, row_id: int, now: datetime) -> int:
        row = db.session.get(OutboundMessage, row_id)
        if row is None or row.status not in outbox.AWAITING_REPORT or not row.provider_sid:
            return 0
        try:
            found = self._channel().fetch(row.provider_sid)
        except ch.SendError as exc:
            db.session.rollback()
            # Unreachable or slow: ask again later. Refused (the message is gone at Twilio): stop asking.
            again = now + LOOKUP_RETRY if exc.kind in (ch.UNCERTAIN, ch.RETRY) else None
            outbox.schedule_check(db.session, [row_id], again)
            db.session.commit()
            return 0
        outbox.record_report(db.session, row, found.status, found.error_code, source="poll",
                             check_at=outbox.next_check(row.sent_at, now))
        db.session.commit()
        return 1

    def _reconcile_one(self, row_id: int, now: datetime) -> int:
        """Look one uncertain row up at Twilio. Found: its status, by rank. Not found, and the failure is
        older than the grace period: Twilio never got it; it goes again (within seconds, not minutes).
        Not found yet: one more lookup when the grace period ends. Twilio unreachable: later, never a
        blind resend. Two candidates: we cannot tell which; after the grace period the row fails with
        its reason rather than risk a duplicate."""
        row = db.session.get(OutboundMessage, row_id)
        if row is None or row.status != "uncertain":
            return 0
        since = row.updated_at  # when it became uncertain (the call's end, or its lease's)
        try:
            found = self._lookup(self._channel(), row, now)
        except ch.SendError:
            db.session.rollback()
            outbox.schedule_lookup(db.session, [row_id], now + LOOKUP_RETRY)
            db.session.commit()
            return 0
        settled = 1
        if found is AMBIGUOUS:  # another row's call is in flight: its answer (or its lease) settles it
            if now - since >= self.lease + 2 * self.reconcile_grace:
                outbox.give_up(db.session, row, "lookup_ambiguous", now)
            else:
                outbox.schedule_lookup(db.session, [row_id], now + self.reconcile_grace)
                settled = 0
        elif found is not None:
            outbox.record_report(db.session, row, found.status, found.error_code, source="lookup",
                                 provider_sid=found.sid, check_at=now + self.check_after)
        elif now - since >= self.reconcile_grace:
            outbox.resend(db.session, row, now)  # Twilio has no such message well after the call
        else:
            outbox.schedule_lookup(db.session, [row_id], since + self.reconcile_grace)
            settled = 0
        db.session.commit()
        return settled

    def _lookup(self, channel, row: OutboundMessage, now: datetime | None = None):
        """Twilio's record of this row's send, if it has one: by SID; else the messages Twilio has for the
        person, from our sender, since the call, with the text we sent, that no row of ours holds yet.

        Other rows of the same person with the same text whose fate is open (their answers lost too)
        could have sent any of those messages; the person cannot tell them apart, but two lookups must not
        take the same message, or the other row would be resent as a duplicate. So the open rows (in id
        order) and the candidates (oldest first) are paired: the k-th row gets the k-th message, and a row
        left without one was never accepted. While one of them still has a call in flight its answer may
        settle it: ``AMBIGUOUS``, look again later (past its lease, it is as uncertain as this one)."""
        if row.provider_sid:
            return channel.fetch(row.provider_sid)
        contact = db.session.get(Contact, row.contact_id)
        if contact is None or contact.current_number is None:
            return None
        to = ("whatsapp:" if row.sent_channel == "whatsapp" else "") + contact.current_number.e164
        since = _claimed_at(row, self.lease) - LOOKUP_MARGIN
        m = OutboundMessage
        known = set(db.session.scalars(sa.select(m.provider_sid).where(
            m.contact_id == row.contact_id, m.provider_sid.is_not(None))))
        body = _sent_text(row)
        candidates = [c for c in channel.find(to=to, since=since, from_=self._sender_from(row)) if c.sid not in known]
        if body is not None:
            candidates = [c for c in candidates if c.body == body]
        if not candidates:
            return None
        rivals = (sa.select(m.id, m.status, m.lease_until).where(
            m.contact_id == row.contact_id, m.id != row.id, m.provider_sid.is_(None),
            m.status.in_(("sending", "uncertain")), m.sent_channel == row.sent_channel).order_by(m.id))
        if body is not None:
            rivals = rivals.where(sa.or_(m.body == body, m.sms_fallback_body == body))
        rivals = db.session.execute(rivals).all()
        now = now or utcnow()
        if any(status == "sending" and lease_until >= now for _id, status, lease_until in rivals):
            return AMBIGUOUS  # a call in flight: its answer will say which message is its own
        order = sorted([row.id, *(rid for rid, _status, _lease in rivals)])
        candidates.sort(key=lambda c: (c.date_created or since, c.sid))
        place = order.index(row.id)
        return candidates[place] if place < len(candidates) else None

    def _sender_from(self, row: OutboundMessage) -> str | None:
        """The number the row went out from (None for a Messaging Service, whose number Twilio picks)."""
        if row.sender_id is not None:
            sender = db.session.get(Sender, row.sender_id)
            return sender.from_address if sender is not None else None
        address = sending_address(row.sent_channel or row.channel, row.country, self.app.config)
        return address.from_ if address is not None and address.sender_id is None else None


_CHECK: dict[str, sa.Select] = {}
_REBOOK = sa.text(
    "UPDATE sender_budget SET window_start = greatest(window_start, :now) + make_interval(secs => :step), "
    "used = used + :units WHERE sender_key = :key RETURNING window_start").columns(
    window_start=SenderBudget.__table__.c.window_start.type)


def _check_statement(purpose: str) -> sa.Select:
    if purpose not in _CHECK:
        m, c = OutboundMessage, ContactChannel
        consent = getattr(c, purpose) if purpose in ("campaigns", "polls") else sa.true()
        _CHECK[purpose] = (
            sa.select(m.status, m.claimed_by, m.lease_until, c.opted_out_at, consent, m.created_at, m.contact_id)
            .select_from(m).outerjoin(c, sa.and_(c.contact_id == m.contact_id, c.channel == sa.bindparam("channel")))
            .where(m.id == sa.bindparam("id")))
    return _CHECK[purpose]


class _Spacing:
    """In-process spacing of calls per sender: the database budget decides how many go each second;
    this keeps them evenly apart when threads are delayed (the GIL, a slow query) and bunch up. A sliding
    one-second window over the calls actually started makes sure a stall followed by a catch-up never
    puts more than the cap into any one second, and a tenth-of-a-second window holds each tenth of a
    second to a tenth of the cap, so calls held back by the first window do not leave in one burst (they
    would reach Twilio together). For its first two seconds a sender gets half its cap: the first calls
    open connections, and the set-up delays them while later calls catch up, so at Twilio's end they
    would bunch."""

    SLOW_START = 2.0  # seconds at half the cap when a sender starts (or restarts) in this process
    FINE = 0.05  # seconds: the short window, allowed this share of the cap

    def __init__(self):
        self.lock = threading.Lock()
        self.next_at: dict[str, float] = {}
        self.recent: dict[str, deque] = {}  # (when, units) of the last second
        self.used: dict[str, float] = {}
        self.fine: dict[str, deque] = {}  # (when, units) of the last tenth of a second
        self.fine_used: dict[str, float] = {}
        self.started: dict[str, float] = {}

    def wait(self, key: str, units: int, cap: float) -> None:
        with self.lock:
            now = time.monotonic()
            at = max(self.next_at.get(key, now), now)
            self.next_at[key] = at + units / cap
        if at > now:
            time.sleep(at - now)
        while True:
            with self.lock:
                now = time.monotonic()
                recent, fine = self.recent.setdefault(key, deque()), self.fine.setdefault(key, deque())
                used, fine_used = self.used.get(key, 0), self.fine_used.get(key, 0)
                while recent and recent[0][0] <= now - 1.0:
                    used -= recent.popleft()[1]
                while fine and fine[0][0] <= now - self.FINE:
                    fine_used -= fine.popleft()[1]
                if not recent:  # idle for a second: new connections ahead, whose set-up delays the first
                    self.started[key] = now  # calls and lets later ones catch up with them at Twilio
                # (Rounded up: a small cap, whose calls are far apart, keeps every one of its calls.)
                limit = math.ceil(cap * HEADROOM / (2 if now - self.started.get(key, now) < self.SLOW_START else 1))
                second_ok = not recent or used + units <= limit
                fine_ok = not fine or fine_used + units <= math.ceil(limit * self.FINE)
                if second_ok and fine_ok:
                    recent.append((now, units))
                    fine.append((now, units))
                    self.used[key], self.fine_used[key] = used + units, fine_used + units
                    return
                self.used[key], self.fine_used[key] = used, fine_used
                pause = (recent[0][0] + 1.0 if not second_ok else fine[0][0] + self.FINE) - now
            time.sleep(max(pause, 0.0005))


class _Pacer:
    """Hands each claimed job to the pool when its slot comes, so waiting never occupies a sender thread."""

    def __init__(self, submit: Callable):
        self.submit = submit
        self.heap: list = []
        self.futures: list = []
        self.cond = threading.Condition()
        self.stopped = False
        self.counter = 0
        self.thread = threading.Thread(target=self._run, name="c4d-pacer", daemon=True)
        self.thread.start()

    def add(self, job: SendJob) -> None:
        with self.cond:
            self.counter += 1
            heapq.heappush(self.heap, (job.not_before or utcnow(), self.counter, job))
            self.cond.notify()

    def waiting(self) -> int:
        with self.cond:
            return len(self.heap)

    def take_futures(self) -> list:
        with self.cond:
            out, self.futures = self.futures, []
        return out

    def _run(self) -> None:
        with self.cond:
            while not self.stopped:
                if not self.heap:
                    self.cond.wait(0.5)
                    continue
                due, _n, job = self.heap[0]
                delay = (due - utcnow()).total_seconds() - LEAD  # the job waits for its slot in the gate
                if delay > 0:
                    self.cond.wait(min(delay, 0.5))
                    continue
                heapq.heappop(self.heap)
                self.futures.append(self.submit(job))

    def stop(self) -> list[SendJob]:
        """Stop handing jobs over; returns those still waiting (their rows are ``sending``, never called)."""
        with self.cond:
            self.stopped = True
            pending, self.heap = [job for _due, _n, job in self.heap], []
            self.cond.notify()
        self.thread.join(5)
        return pending


def _holder_is_dead(holder: str) -> bool:
    """A lock left by a process of this machine that no longer exists (killed, crashed) is free at once."""
    host, _sep, rest = holder.partition(":")
    pid = rest.split(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _after_quiet_hours(row: OutboundMessage, now: datetime) -> datetime | None:
    """When the row may go if the person's local time is now inside quiet hours, else None."""
    if not (row.timezone and row.quiet_start and row.quiet_end):
        return None
    local = now.astimezone(ZoneInfo(row.timezone))
    if not in_quiet_hours(local.time(), row.quiet_start, row.quiet_end):
        return None
    return out_of_quiet_hours(local, row.quiet_start, row.quiet_end).astimezone(UTC)


def _sent_text(row: OutboundMessage) -> str | None:
    """The text the call carried, to recognise it at Twilio (None for a WhatsApp template: Twilio shows
    the template's words, not ours)."""
    if row.sent_channel == "sms":
        return row.body if row.channel == "sms" else row.sms_fallback_body
    return None if row.template_sid and row.purpose != "reply" and not row.body else row.body


def _claimed_at(row: OutboundMessage, lease: timedelta = LEASE) -> datetime:
    return row.lease_until - lease if row.lease_until else row.created_at


def _record_failure(session: Session, job: SendJob, exc: ch.SendError) -> str:
    now = utcnow()
    attempts = session.scalar(sa.select(OutboundMessage.attempts).where(OutboundMessage.id == job.message_id)) or 0
    return outbox.record_failure(session, job.message_id, exc.kind, exc.code, attempts_left=attempts < MAX_RATE_LIMITED,
                                 retry_at=now + timedelta(seconds=min(2 ** attempts, 60)), now=now)
