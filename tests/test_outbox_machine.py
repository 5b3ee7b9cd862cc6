"""The outbox's promises under any order of events (issue 12), as a hypothesis state machine on the real
database, the real outbox, dispatcher and inbound services, and a fake Twilio that records what reaches
each person.

Rules interleave: campaign rows and answers of every purpose, people writing (STOP, BAJA, START, HELP,
a poll answer, a question), an officer's reply, erasure, pausing and resuming, claims, sends that succeed
or fail (429, 500, accepted-then-timeout, a refusal, 21610), callbacks in any order, lease expiry,
lookups and the status poll. After every step and at the end:

- nothing but an answer the person explicitly asked for (the opt-out confirmation, HELP, START…) reaches
  a person whose opt-out is stored when it reaches them;
- no row reaches a person twice;
- no status moves backwards once Twilio has the message, and a final status never changes;
- once everything has run its course, every row is final or at Twilio: nothing is left in flight.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.orm import Session

from whp_c4d.audience import services as audience
from whp_c4d.audience.erasure import erase_contact
from whp_c4d.audience.models import Contact, ContactChannel
from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.inbound import services as inbound
from whp_c4d.messaging import channels as ch
from whp_c4d.messaging import outbox
from whp_c4d.messaging.dispatcher import Dispatcher, TickStats
from whp_c4d.messaging.models import STATUS_RANK, TERMINAL, OutboundMessage

NUMBERS = ("+50255509101", "+50255509102")  # clearly fake: +502 55 50 91 0x
WORDS = ("STOP", "BAJA", "ALTA", "START", "AYUDA", "1", "si", "Hola, ¿cómo renuevo mi permiso?")
OUTCOMES = ("ok", "ok", "ok", "429", "500", "accepted_timeout", "refused", "21610")
STATUSES = ("queued", "sent", "delivered", "read", "undelivered", "failed", "accepted", "bogus")
_sids = itertools.count(1)


class FakeTwilio:
    """A channel whose next answer the machine chooses; it checks every message that reaches a person
    against what the database says of that person at that moment."""

    def __init__(self, machine: OutboxMachine):
        self.machine = machine
        self.outcome = "ok"

    def send(self, *, to, before_call=None, status_callback=None, **fields):
        outcome, self.outcome = self.outcome, "ok"
        if outcome == "429":
            raise ch.SendError(ch.RETRY, code=20429, http_status=429)
        if outcome == "500":
            raise ch.SendError(ch.UNCERTAIN, code=20500, http_status=500)
        if outcome == "refused":
            raise ch.SendError(ch.FATAL, code=21408, http_status=400)
        if outcome == "21610":
            raise ch.SendError(ch.OPTED_OUT, code=21610, http_status=400)
        row_id = int(status_callback.rsplit("m=", 1)[1])
        sid = f"SM{next(_sids):032x}"
        self.machine.reached(row_id, sid, to, fields.get("body"))
        if outcome == "accepted_timeout":
            raise ch.SendError(ch.UNCERTAIN)
        return ch.SendResult(sid=sid, status="queued")

    def fetch(self, sid):
        status = self.machine.at_twilio.get(sid)
        if status is None:
            raise ch.SendError(ch.FATAL, code=20404, http_status=404)
        return ch.SendResult(sid=sid, status=status)

    def find(self, *, to, since, from_=None):
        return [ch.SendResult(sid=sid, status=self.machine.at_twilio[sid], body=body, date_created=at)
                for sid, (number, body, at) in self.machine.sent.items() if number == to and at >= since]

    def close(self):
        pass


class OutboxMachine(RuleBasedStateMachine):
    empty_database = None  # set by the test from the fixture of the same name

    def __init__(self):
        super().__init__()
        self.empty_database()
        self.contacts = [audience.create_contact(
            phone=n, country="GT", language="es", channels=["sms"], actor=None,
            consent=audience.ConsentInput(source="form")).id for n in NUMBERS]
        from whp_c4d.auth import services as auth

        self.officer = auth.create_user("oficial@example.org", "Oficial", "officer", password="x" * 12)
        db.session.commit()
        self.fake = FakeTwilio(self)
        self.dispatcher = Dispatcher(current_app._get_current_object(), name="machine", pool_size=1, channel_factory=lambda: self.fake)
        self.dispatcher.start()
        self.jobs: list = []
        self.sent: dict[str, tuple[str, str, object]] = {}  # sid -> (to, body, when)
        self.at_twilio: dict[str, str] = {}  # sid -> the status Twilio would report
        self.reached_rows: list[int] = []
        self.reached_texts: dict[tuple, int] = {}
        self.violations: list[str] = []
        self.seen: dict[int, str] = {}
        self.steps = itertools.count(1)
        self.clock = utcnow()  # the engine's clock: it only moves forward, and never behind the real one

    def now(self, later: timedelta = timedelta(0)):
        self.clock = max(self.clock, utcnow()) + later
        return self.clock

    def teardown(self):
        try:
            self._drain()
        finally:
            self.dispatcher.stop()
            db.session.remove()

    # --- what reaches people -------------------------------------------------------------------------

    def reached(self, row_id: int, sid: str, to: str, body: str | None) -> None:
        """Called by the fake at the moment Twilio accepts a message: is the person allowed to get it?"""
        with Session(db.engine) as s:
            row = s.get(OutboundMessage, row_id)
            state = s.get(ContactChannel, (row.contact_id, "sms")) if row is not None else None
            if row is None:
                self.violations.append(f"row {row_id} reached a person after it was erased")
            elif state is not None and state.opted_out_at is not None:
                kind = row.occurrence.rsplit(":", 1)[-1] if row.occurrence.startswith("r") else "manual"
                explicit = kind in outbox.EXPLICIT_REPLIES or (
                    kind == "manual" and state.last_inbound_at and state.last_inbound_at > state.opted_out_at)
                if row.purpose != "reply" or row.created_at < state.opted_out_at or not explicit:
                    self.violations.append(f"row {row_id} ({row.purpose}, {row.occurrence}) reached an opted-out "
                                           f"person")
        # Exactly once: no more messages with a text reach a person than rows of theirs hold that text
        # (rows with the same text are indistinguishable to the person, and a lookup may pair them either way).
        with Session(db.engine) as s:
            m = OutboundMessage
            meant = s.scalar(sa.select(sa.func.count()).select_from(m).where(
                m.contact_id == (row.contact_id if row is not None else -1), m.body == body,
                sa.or_(m.status.in_(("sending", "uncertain", "undelivered", *outbox.AT_TWILIO)),
                       sa.and_(m.status == "failed", sa.or_(m.provider_sid.is_not(None),
                                                            m.reason == "lookup_ambiguous")))))
        key = (to, body)
        self.reached_texts[key] = self.reached_texts.get(key, 0) + 1
        if self.reached_texts[key] > (meant or 0):
            self.violations.append(f"row {row_id}: its text reached the person more often than rows hold it")
        self.reached_rows.append(row_id)
        self.sent[sid] = (to, body, self.now())  # Twilio's clock agrees with ours
        self.at_twilio[sid] = "queued"

    def _alive(self) -> list[int]:
        return list(db.session.scalars(sa.select(Contact.id).where(Contact.id.in_(self.contacts))))

    # --- rules: what is asked of the outbox ---------------------------------------------------------------

    @rule(who=st.integers(0, 1), purpose=st.sampled_from(("campaigns", "polls")))
    def campaign_message(self, who, purpose):
        contact_id = self.contacts[who]
        if contact_id not in self._alive():
            return
        now = utcnow()
        outbox.insert_planned([(contact_id, {
            "campaign_id": 1, "step_id": next(self.steps), "occurrence": "2027-01-01", "language": "es",
            "channel": "sms", "purpose": purpose, "country": "GT", "body": "Mensaje de campaña", "template_sid": None,
            "template_variables": {}, "media_url": None, "sms_fallback_body": None, "segments": 1,
            "earliest_at": now - timedelta(seconds=1), "expires_at": now + timedelta(days=1),
            "timezone": "America/Guatemala", "quiet_start": None, "quiet_end": None})])
        db.session.commit()

    @rule(who=st.integers(0, 1), text=st.sampled_from(WORDS))
    def person_writes(self, who, text):
        if self.contacts[who] not in self._alive():
            return
        form = {"MessageSid": f"SM{next(_sids):032x}", "From": NUMBERS[who], "To": "+15550100", "Body": text,
                "NumMedia": "0", "FromCountry": "GT"}
        message = inbound.receive(form).message
        db.session.commit()
        inbound.send_direct(inbound.process(message), current_app._get_current_object().config)
        db.session.commit()

    @rule(who=st.integers(0, 1))
    def officer_replies(self, who):
        from whp_c4d.core.errors import ServiceError
        from whp_c4d.inbound.inbox_services import queue_manual_reply

        contact = db.session.get(Contact, self.contacts[who])
        if contact is None:
            return
        try:
            queue_manual_reply(contact, "sms", f"Respuesta {next(self.steps)}", self.officer)
            db.session.commit()
        except ServiceError:
            db.session.rollback()

    @rule(who=st.integers(0, 1))
    def erase(self, who):
        contact = db.session.get(Contact, self.contacts[who])
        if contact is not None:
            erase_contact(contact, None, reason="request")
            db.session.commit()

    @rule(action=st.sampled_from(("hold", "release", "cancel")))
    def campaign_control(self, action):
        getattr(outbox, action)(1)
        db.session.commit()

    # --- rules: the dispatcher and Twilio ---------------------------------------------------------------

    @rule()
    def claim(self):
        self.jobs += self.dispatcher._claim(self.now(), TickStats())

    @precondition(lambda self: self.jobs)
    @rule(outcome=st.sampled_from(OUTCOMES), pick=st.integers(0, 20))
    def send(self, outcome, pick):
        job = self.jobs.pop(pick % len(self.jobs))
        self.fake.outcome = outcome
        self.dispatcher._send(job)

    @precondition(lambda self: self.at_twilio)
    @rule(status=st.sampled_from(STATUSES), pick=st.integers(0, 50), duplicate=st.booleans())
    def callback(self, status, pick, duplicate):
        sid = sorted(self.at_twilio)[pick % len(self.at_twilio)]
        if not duplicate:
            self.at_twilio[sid] = status if status != "bogus" else self.at_twilio[sid]
        row_id = db.session.scalar(sa.select(OutboundMessage.id).where(OutboundMessage.provider_sid == sid))
        if row_id is not None:
            outbox.record_callback(db.session, row_id, status, 30003 if status == "undelivered" else None, sid)
            db.session.commit()

    @rule()
    def leases_expire(self):
        outbox.expire_leases(db.session, self.now(self.dispatcher.lease + timedelta(seconds=1)))
        db.session.commit()

    @rule(late=st.booleans())
    def reconcile(self, late):
        now = self.now(self.dispatcher.reconcile_grace if late else timedelta(0))
        for row_id in db.session.scalars(sa.select(OutboundMessage.id).where(OutboundMessage.status == "uncertain")):
            self.dispatcher._reconcile_one(row_id, now)

    @rule()
    def poll(self):
        now = self.now(self.dispatcher.check_after)
        for row_id in db.session.scalars(sa.select(OutboundMessage.id).where(
                OutboundMessage.status.in_(outbox.AWAITING_REPORT))):
            self.dispatcher._poll_one(row_id, now)

    # --- invariants ---------------------------------------------------------------------------------

    @invariant()
    def nothing_reaches_anyone_it_should_not(self):
        assert not self.violations, self.violations

    @invariant()
    def no_status_moves_backwards(self):
        db.session.expire_all()
        now = dict(db.session.execute(sa.select(OutboundMessage.id, OutboundMessage.status)).all())
        self.seen = {k: v for k, v in self.seen.items() if k in now}  # erased: a new row may take the id
        for row_id, status in now.items():
            before = self.seen.get(row_id)
            if before in TERMINAL:
                assert status == before, (row_id, before, status)
            elif before in outbox.AT_TWILIO:
                assert STATUS_RANK[status] >= STATUS_RANK[before], (row_id, before, status)
            self.seen[row_id] = status

    def _drain(self) -> None:
        """Let everything run its course with a well-behaved Twilio, then check where every row is."""
        self.fake.outcome = "ok"
        for job in self.jobs:
            self.dispatcher._send(job)
        self.jobs = []
        outbox.release(1)
        db.session.commit()
        for _round in range(6):
            self.leases_expire()
            self.reconcile(late=True)
            for job in self.dispatcher._claim(self.now(), TickStats()):
                self.dispatcher._send(job)
        self.nothing_reaches_anyone_it_should_not()
        self.no_status_moves_backwards()
        db.session.expire_all()
        left = db.session.execute(sa.select(OutboundMessage.id, OutboundMessage.status, OutboundMessage.reason).where(
            OutboundMessage.status.not_in([*TERMINAL, *outbox.AT_TWILIO]))).all()
        assert left == [], left


def test_the_outbox_keeps_its_promises_whatever_the_order_of_events(app, empty_database):
    OutboxMachine.empty_database = staticmethod(empty_database)
    run_state_machine_as_test(OutboxMachine, settings=hsettings(
        max_examples=100, stateful_step_count=40, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))


def test_two_uncertain_messages_with_the_same_text_are_never_mistaken_for_each_other(app, empty_database):
    """Found while writing the machine above: two rows for one person with the same text, one lost before
    Twilio (500), one accepted with its answer lost. The lookup for the first found the second's message
    and took its SID; the second then found nothing and was sent again: one person, the same text twice."""
    OutboxMachine.empty_database = staticmethod(empty_database)
    machine = OutboxMachine()
    try:
        machine.campaign_message(0, "campaigns")
        machine.campaign_message(0, "campaigns")
        machine.claim()
        first, second = sorted(machine.jobs, key=lambda job: job.message_id)
        machine.jobs = []
        machine.fake.outcome = "500"
        machine.dispatcher._send(first)
        machine.fake.outcome = "accepted_timeout"
        machine.dispatcher._send(second)
        machine.reconcile(late=True)
        machine.reconcile(late=True)
        for job in machine.dispatcher._claim(machine.now(), TickStats()):
            machine.dispatcher._send(job)
        machine.nothing_reaches_anyone_it_should_not()
        db.session.expire_all()
        rows = db.session.scalars(sa.select(OutboundMessage)).all()
        assert len(machine.sent) == 2  # two rows, two messages: one lost before Twilio was sent again
        assert {r.status for r in rows} == {"queued"} and len({r.provider_sid for r in rows}) == 2
    finally:
        machine.teardown()
