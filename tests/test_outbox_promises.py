"""Promises to people, held at the outbox's one gate (issue 12): an opt-out stops everything queued for
the person but its confirmation, nothing moves a status backwards, answers go before broadcasts, lost
reports are recovered, and what the checks say is what the dispatcher does. Each test names the case
of the issue it comes from."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from test_inbound import POLL, _sent_step, replies, sms, twilio_post
from test_outbox import _campaign, _due_now

from whp_c4d.core.models import utcnow
from whp_c4d.extensions import db
from whp_c4d.messaging import outbox
from whp_c4d.messaging.dispatcher import Dispatcher
from whp_c4d.messaging.models import MessageEvent, OutboundMessage

GT = "+50255500601"


def _rows(contact_id: int) -> list[OutboundMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboundMessage).where(OutboundMessage.contact_id == contact_id)
                                   .order_by(OutboundMessage.id)))


# --- 1. STOP stops queued replies ---------------------------------------------------------------------------

def test_stop_cancels_the_acknowledgement_and_the_officers_answer_queued_before_it(
        app, client, live_app, make_contact, make_user, login, dispatchers):
    """Case 1: a person wrote, an officer answered from the inbox (and the automatic acknowledgement was
    queued), then the person sent STOP: only the STOP confirmation goes out."""
    from whp_c4d.simulator.models import SimulatorMessage

    contact = make_contact(phone=GT)
    twilio_post(client, app, sms(GT, "Tengo una pregunta sobre el permiso de trabajo"))
    officer = app.test_client()
    login(officer, make_user("officer"))
    assert officer.post(f"/inbox/{contact.id}/reply", data={"channel": "sms", "body": "Con gusto le ayudamos."}
                        ).status_code in (200, 302)
    assert [r.status for r in _rows(contact.id)] == ["pending", "pending"]  # the acknowledgement, the answer
    twilio_post(client, app, sms(GT, "STOP"))
    rows = _rows(contact.id)
    assert [r.status for r in rows] == ["cancelled", "cancelled", "pending"]
    assert rows[0].occurrence.endswith(":ack") and rows[1].occurrence.startswith("manual:")
    assert rows[2].occurrence.endswith(":opt_out")
    assert {r.reason for r in rows[:2]} == {"opted_out"}
    dispatchers().tick()
    db.session.expire_all()
    sent = db.session.scalars(sa.select(SimulatorMessage.body)).all()
    assert len(sent) == 1 and sent[0] == rows[2].body


def test_an_answer_claimed_before_the_stop_is_not_sent_after_it(app, client, live_app, make_contact, dispatchers):
    """Case 1, the race: the acknowledgement was already claimed (``sending``) when STOP was stored; the
    last check before the call stops it, as it stops campaign messages."""
    from whp_c4d.messaging.dispatcher import TickStats

    contact = make_contact(phone=GT)
    twilio_post(client, app, sms(GT, "Hola, ¿cómo me inscribo?"))
    d = dispatchers()
    [job] = d._claim(utcnow(), TickStats())
    twilio_post(client, app, sms(GT, "BAJA"))
    assert d._send(job) == "skipped"
    ack = _rows(contact.id)[0]
    assert (ack.status, ack.reason, ack.provider_sid) == ("skipped", "opted_out_before_send", None)


# --- 2. no automatic answer to an opted-out person -----------------------------------------------------------

def test_an_opted_out_person_who_answers_a_poll_gets_no_thanks(app, client, make_user, make_contact):
    """Case 2: opted out, then answered "si" to a poll still open: the answer is recorded, nothing is sent."""
    from whp_c4d.inbound.models import PollResponse

    person = make_contact(phone=GT)
    _sent_step(make_user("officer"), POLL, [person])
    twilio_post(client, app, sms(GT, "BAJA"))
    twilio_post(client, app, sms(GT, "si"))
    assert db.session.scalar(sa.select(PollResponse.choice)) == 1
    assert [r.occurrence.split(":")[-1] for r in replies(person.id)] == ["opt_out"]
    twilio_post(client, app, sms(GT, "¿Por qué ya no me escriben?"))  # feedback: no acknowledgement either
    assert [r.occurrence.split(":")[-1] for r in replies(person.id)] == ["opt_out"]


def test_after_opting_out_a_person_still_gets_what_they_explicitly_ask_for(app, client, make_contact):
    """Case 2: HELP and START are answered after an opt-out; START brings the person back."""
    person = make_contact(phone=GT)
    twilio_post(client, app, sms(GT, "STOP"))
    twilio_post(client, app, sms(GT, "AYUDA"))
    twilio_post(client, app, sms(GT, "ALTA"))
    assert [r.occurrence.split(":")[-1] for r in replies(person.id)] == ["opt_out", "help", "opt_in"]
    assert {r.status for r in replies(person.id)} == {"pending"}


def test_the_outbox_refuses_an_automatic_answer_to_an_opted_out_channel(app, make_contact):
    from whp_c4d.audience.services import record_consent

    person = make_contact(phone=GT)
    record_consent(person, "sms", granted=False, source="keyword", actor=None)
    assert outbox.enqueue_reply(person, "sms", "Gracias", kind="thanks", occurrence="r1:thanks") is None
    assert outbox.enqueue_reply(person, "sms", "Ayuda", kind="help", occurrence="r1:help") is not None


# --- 4. nothing moves backwards --------------------------------------------------------------------------

def _sending_row(author, contacts) -> OutboundMessage:
    _due_now(_campaign(author))
    row = db.session.scalars(sa.select(OutboundMessage).order_by(OutboundMessage.id)).first()
    row.status, row.attempts, row.claimed_by = "sending", 1, "test"
    row.lease_until = utcnow() + timedelta(seconds=60)
    db.session.commit()
    return row


def test_a_timed_out_send_never_moves_a_delivered_message_back(app, audience):
    """Case 4: Twilio withheld the reply to the create while the callbacks already said delivered; the
    timeout that follows leaves the row delivered, and the events say which report applied."""
    author, contacts = audience
    row = _sending_row(author, contacts)
    sid = "SM" + "d" * 32
    assert outbox.record_callback(db.session, row.id, "sent", None, sid) == "recorded"
    assert outbox.record_callback(db.session, row.id, "delivered", None, sid) == "recorded"
    db.session.commit()
    assert outbox.record_failure(db.session, row.id, "uncertain", None, attempts_left=True) == "overtaken"
    assert outbox.record_failure(db.session, row.id, "retry", 20429, attempts_left=True) == "overtaken"
    assert outbox.record_failure(db.session, row.id, "fatal", 21408, attempts_left=True) == "overtaken"
    db.session.expire_all()
    assert db.session.get(OutboundMessage, row.id).status == "delivered"
    events = db.session.scalars(sa.select(MessageEvent).where(MessageEvent.message_id == row.id)
                                .order_by(MessageEvent.id)).all()
    assert [(e.source, e.status, e.applied) for e in events] == [
        ("callback", "sent", True), ("callback", "delivered", True), ("send", "uncertain", False),
        ("send", "pending", False), ("send", "failed", False)]


def test_a_lookup_event_says_it_applied_when_it_did(app, audience):
    """Case 4: a lookup that moves an uncertain row forward is logged as applied."""
    author, contacts = audience
    row = _sending_row(author, contacts)
    outbox.record_failure(db.session, row.id, "uncertain", None, attempts_left=True)
    row = db.session.get(OutboundMessage, row.id)
    assert row.status == "uncertain"
    assert outbox.record_report(db.session, row, "sent", None, source="lookup", provider_sid="SM" + "e" * 32)
    assert not outbox.record_report(db.session, row, "queued", None, source="lookup")
    db.session.commit()
    db.session.expire_all()
    row = db.session.get(OutboundMessage, row.id)
    assert (row.status, row.provider_sid) == ("sent", "SM" + "e" * 32) and row.sent_at is not None
    lookups = db.session.scalars(sa.select(MessageEvent).where(MessageEvent.source == "lookup")
                                 .order_by(MessageEvent.id)).all()
    assert [(e.status, e.applied) for e in lookups] == [("sent", True), ("queued", False)]


@pytest.mark.parametrize("source,to", [("retry", "pending"), ("timeout", "uncertain"), ("crash", "uncertain"),
                                       ("refused", "failed"), ("check", "skipped"), ("resend", "pending"),
                                       ("hold", "held"), ("cancel", "cancelled")])
def test_no_engine_move_starts_from_a_status_twilio_reported(source, to):
    """The engine's own moves start only from the one status they are about, never from a status that
    means Twilio has the message."""
    assert not set(outbox.allowed_from(to, source)) & set(outbox.AT_TWILIO)
    assert not set(outbox.allowed_from(to, source)) & set(outbox.TERMINAL)


# --- 5. answers before broadcasts ------------------------------------------------------------------------

def test_a_stop_confirmation_goes_before_the_broadcast_waiting_at_the_cap(
        app, client, live_app, make_user, make_contact, dispatchers):
    """Case 5: 40 broadcast messages due before the STOP, a sender capped at 5 a second: the confirmation
    is claimed in the next second, not after the whole queue."""
    from whp_c4d.audience.models import Segment
    from whp_c4d.demo import fictional_numbers
    from whp_c4d.messaging.services import save_sender

    numbers = fictional_numbers("GT", 40, start=700)
    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    people = [make_contact(phone=n) for n in numbers]
    save_sender(None, name="GT lento", channel="sms", from_address=fictional_numbers("GT", 1, start=990)[0],
                countries=["GT"], cap_per_second=5)
    db.session.commit()
    assert _due_now(_campaign(make_user("officer"))) == 40
    d = dispatchers()
    now = utcnow()
    assert d.tick(now).claimed == 5
    twilio_post(client, app, sms(numbers[-1], "STOP"))  # the last person in the queue
    stats = d.tick(now + timedelta(seconds=1))
    [confirmation] = replies(people[-1].id)
    assert confirmation.priority == outbox.LANE_NOW and confirmation.status == "queued"
    assert sum(stats.by_sender.values()) <= 5  # within the cap: the confirmation took slots of the broadcast
    broadcast = db.session.scalars(sa.select(OutboundMessage.status).where(OutboundMessage.purpose == "campaigns")).all()
    assert broadcast.count("queued") == 5 + stats.claimed - 1 and broadcast.count("cancelled") == 1


# --- 10. what the checks say is what the dispatcher does ---------------------------------------------------

def _whatsapp_campaign(author, **over):
    from whp_c4d.campaigns import services

    data = {"key": "wa-fallback", "name": "WhatsApp con respaldo SMS", "objective": "regular_pathways",
            "countries": ["GT"], "languages": ["es"], "channels": ["sms", "whatsapp"], "sms_fallback": True,
            "audience": "Todos",
            "steps": [{"key": "hola", "timing": {"type": "drip", "day": 0, "time": "10:00"},
                       "content": {"es": {"sms": "Hola, le escribe el programa regional.",
                                          "whatsapp": "Hola 👋, le escribe el programa regional."}}}]}
    data.update(over)
    campaign = services.create_campaign(services.campaign_schema().load(data), author)
    db.session.commit()
    return campaign


def test_checks_estimate_and_dispatcher_agree_on_who_cannot_be_reached(app, live_app, make_user, make_contact,
                                                                       dispatchers):
    """Case 10: WhatsApp with SMS fallback and no template; 14 of 40 people have WhatsApp only. The checks
    said "no blocking problems" and the estimate "0 cannot be reached", then the dispatcher skipped 14.
    Now all three say 14, for the same reason; with a template, all three say everybody."""
    from whp_c4d.audience.models import Segment
    from whp_c4d.campaigns.checks import blocking_problems
    from whp_c4d.campaigns.estimates import estimate
    from whp_c4d.campaigns.progress import progress
    from whp_c4d.demo import fictional_numbers

    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    numbers = fictional_numbers("GT", 40, start=800)
    for i, number in enumerate(numbers):
        make_contact(phone=number, channels=("whatsapp",) if i < 14 else ("whatsapp", "sms"))
    campaign = _whatsapp_campaign(make_user("officer"))

    [problem] = blocking_problems(campaign)
    assert problem.code == "unreachable" and problem.params["count"] == 14
    assert "14" in problem.message and "template" in problem.message
    plan = estimate(campaign)
    assert (plan.recipients, plan.unreachable, plan.unreachable_by_reason) == (40, 14, {"no_whatsapp_template": 14})
    assert {(line.channel, line.messages) for line in plan.lines} == {("sms", 26)}  # the fallback, priced as SMS
    assert progress(campaign).unreachable == 14

    _due_now(campaign)
    d = dispatchers(pool_size=4)
    for second in range(4):  # 26 SMS at the default 10 a second
        d.tick(utcnow() + timedelta(seconds=second))
    db.session.expire_all()
    outcome = db.session.execute(sa.select(OutboundMessage.status, OutboundMessage.reason, OutboundMessage.sent_channel,
                                           sa.func.count()).group_by(OutboundMessage.status, OutboundMessage.reason,
                                                                     OutboundMessage.sent_channel)).all()
    assert sorted(outcome, key=str) == sorted([("queued", None, "sms", 26),
                                               ("skipped", "no_whatsapp_template", None, 14)], key=str)


def test_with_a_template_the_checks_pass_and_everybody_is_reached(app, make_user, make_contact):
    from whp_c4d.audience.models import Segment
    from whp_c4d.campaigns.checks import blocking_problems
    from whp_c4d.campaigns.estimates import estimate
    from whp_c4d.demo import fictional_numbers

    db.session.add(Segment(name="Todos", filters={}))
    db.session.commit()
    for i, number in enumerate(fictional_numbers("GT", 10, start=850)):
        make_contact(phone=number, channels=("whatsapp",) if i < 4 else ("whatsapp", "sms"))
    campaign = _whatsapp_campaign(make_user("officer"), steps=[
        {"key": "hola", "timing": {"type": "drip", "day": 0, "time": "10:00"},
         "content": {"es": {"sms": "Hola, le escribe el programa regional.",
                            "template": {"sid": "HX" + "a" * 32}}}}])
    assert blocking_problems(campaign) == []
    plan = estimate(campaign)
    assert (plan.unreachable, {(line.channel, line.messages) for line in plan.lines}) == (0, {("whatsapp", 10)})


# --- 8. reconciliation finds what Twilio accepted but has not sent ------------------------------------------

def test_reconciliation_finds_messages_twilio_accepted_but_has_not_sent_yet(live_app, audience, dispatchers):
    """Case 8: Twilio accepted every message but its answers were lost, and the messages still wait in
    its queue (no date_sent). Looking them up by DateSent found nothing, and a resend would have
    duplicated them; listing by To and From finds each one."""
    from whp_c4d.simulator import settings as sim
    from whp_c4d.simulator.models import SimulatorMessage

    author, contacts = audience
    live_app.config["TWILIO_TIMEOUT_SECONDS"] = 0.5
    sim.save({"rate_accepted_then_timeout": "1", "timeout_seconds": "1", "callback_delays": "3600,3700,3800"})
    db.session.commit()
    try:
        _due_now(_campaign(author))
        d = dispatchers(pool_size=4, reconcile_grace=timedelta(seconds=5))
        now = utcnow()
        assert d.tick(now).uncertain == 10  # the default SMS cap: 10 a second
        sim.save({"rate_accepted_then_timeout": "0"})
        db.session.commit()
        d.tick(now + timedelta(seconds=1))  # the other two, then the lookups
        for second in range(2, 12):
            d.tick(now + timedelta(seconds=second))
    finally:
        sim.reset()
        db.session.commit()
    db.session.expire_all()
    rows = db.session.scalars(sa.select(OutboundMessage)).all()
    assert {r.status for r in rows} == {"queued"} and all(r.provider_sid for r in rows)
    sent = db.session.scalars(sa.select(SimulatorMessage.to_index)).all()
    assert len(sent) == len(set(sent)) == 12  # nobody got it twice


# --- 7. short timeouts, quick resends ---------------------------------------------------------------------

def test_a_withheld_answer_holds_a_sending_thread_seconds_not_a_quarter_minute(app):
    """Case 7: a reply Twilio withholds held a thread for 15 s; with 2 % withheld the rate fell from
    37/s to 7/s. Connecting and waiting for the answer now have short limits of their own."""
    from whp_c4d.messaging.channels.twilio import TwilioChannel

    channel = TwilioChannel.from_config(app.config)
    try:
        assert channel.http_client.timeout == (3.0, 5.0)  # (connect, read), requests' own semantics
    finally:
        channel.close()


def _uncertain_row() -> OutboundMessage:
    db.session.expire_all()
    return db.session.scalar(sa.select(OutboundMessage).where(OutboundMessage.status == "uncertain"))


def test_a_twilio_500_is_resent_seconds_after_a_lookup_finds_nothing(app, audience, scripted_twilio, dispatchers):
    """Case 7: each Twilio 500 cost two minutes or more before the resend; now one lookup at once, one
    when the grace period (10 s by default) ends, then the resend."""
    author, _contacts = audience
    _due_now(_campaign(author))
    scripted_twilio.replies = [(500, {"code": 20500, "message": "Internal Server Error", "status": 500})]
    d = dispatchers(pool_size=1)
    now = utcnow()
    assert d.tick(now).uncertain == 1
    row = _uncertain_row()
    d.tick(now + timedelta(seconds=2))  # looked up at once: Twilio has nothing yet, so wait (the last two go)
    assert _uncertain_row().id == row.id and scripted_twilio.created == 12
    d.tick(now + timedelta(seconds=12))  # the grace period is over: resent, in the same tick
    assert scripted_twilio.created == 13
    db.session.expire_all()
    row = db.session.get(OutboundMessage, row.id)
    assert (row.status, row.attempts) == ("queued", 2) and row.provider_sid
    events = db.session.scalars(sa.select(MessageEvent.source).where(MessageEvent.message_id == row.id)
                                .order_by(MessageEvent.id)).all()
    assert events == ["send", "send"]  # the 500 and the resend: lookups that find nothing log nothing


def test_a_lookup_that_finds_more_messages_than_it_lost_takes_one_and_never_resends(
        app, audience, scripted_twilio, dispatchers):
    """Two messages at Twilio with the row's text that no row of ours holds: the person has it, so the row
    takes the oldest and nothing is sent again."""
    from email.utils import format_datetime
    author, contacts = audience
    _due_now(_campaign(author))
    scripted_twilio.replies = [(500, {"code": 20500, "message": "Internal Server Error", "status": 500})]
    d = dispatchers(pool_size=1)
    now = utcnow()
    d.tick(now)
    d.tick(now + timedelta(seconds=1))  # the other two
    row = _uncertain_row()
    number = db.session.get(type(contacts[0]), row.contact_id).current_number.e164
    scripted_twilio.listing = [{"sid": "SM" + c * 32, "status": "sent", "body": row.body, "to": number,
                                "num_segments": "1", "error_code": None,
                                "date_created": format_datetime(now + timedelta(seconds=n), usegmt=True)}
                               for n, c in enumerate("ab")]
    created = scripted_twilio.created
    d.tick(now + timedelta(seconds=12))
    db.session.expire_all()
    row = db.session.get(OutboundMessage, row.id)
    assert (row.status, row.provider_sid) == ("sent", "SM" + "a" * 32)
    assert scripted_twilio.created == created  # nothing resent


# --- 6. lost status callbacks are recovered -------------------------------------------------------------------

def test_messages_whose_callbacks_were_lost_get_their_status_from_a_poll(live_app, audience, dispatchers):
    """Case 6: callbacks were dropped and 227 rows stayed sent/queued for good. Nobody posts the
    simulator's callbacks here (no pump): half an hour after sending, the dispatcher asks Twilio."""
    from whp_c4d.simulator import settings as sim

    author, _contacts = audience
    sim.save({"callback_delays": "0,0,0"})  # delivered at once at "Twilio"; its callbacks never come
    db.session.commit()
    _due_now(_campaign(author))
    d = dispatchers(pool_size=4)
    now = utcnow()
    d.tick(now)
    d.tick(now + timedelta(seconds=1))
    db.session.expire_all()
    assert {r.status for r in db.session.scalars(sa.select(OutboundMessage))} == {"queued"}
    assert d.tick(now + timedelta(minutes=10)).polled == 0  # too early to ask
    assert d.tick(now + timedelta(minutes=31)).polled == 12
    db.session.expire_all()
    rows = db.session.scalars(sa.select(OutboundMessage)).all()
    assert {r.status for r in rows} == {"delivered"}
    polls = db.session.scalars(sa.select(MessageEvent).where(MessageEvent.source == "poll")).all()
    assert len(polls) == 12 and all(e.applied and e.status == "delivered" for e in polls)
    assert d.tick(now + timedelta(hours=2)).polled == 0  # delivered: nothing more to ask


def test_a_message_that_never_gets_a_final_report_is_asked_about_less_and_less_then_not_at_all():
    from datetime import UTC, datetime

    sent = datetime(2027, 1, 1, 12, tzinfo=UTC)
    gaps = []
    now = sent + timedelta(minutes=30)
    while (after := outbox.next_check(sent, now)) is not None:
        gaps.append(after - now)
        now = after
    assert gaps[0] == timedelta(minutes=30) and gaps[-1] == timedelta(hours=24)
    assert gaps == sorted(gaps) and now - sent < timedelta(hours=96) and len(gaps) < 20


# --- 9. a clean stop gives its rows back at once --------------------------------------------------------------

def test_a_stopping_worker_returns_its_claimed_but_unsent_rows_at_once(app, audience):
    """Case 9: on SIGTERM, rows claimed but never called stayed ``sending`` for the lease and the grace
    period (about 3 minutes) before they went out. A call already on its way finishes."""
    import threading

    from whp_c4d.messaging.channels import SendResult

    author, _contacts = audience
    _due_now(_campaign(author))
    release, calls = threading.Event(), []

    class HeldChannel:
        def send(self, *, to, before_call=None, **fields):
            if before_call is not None:
                before_call()
            calls.append(to)
            release.wait(10)  # the first call is on its way while the worker is told to stop
            return SendResult(sid=f"SM{len(calls):032x}", status="queued")

        def close(self):
            pass

    d = Dispatcher(app, pool_size=1, channel_factory=HeldChannel)
    d.start()
    d.tick(wait=False)  # the real clock: jobs wait for their slots, one call at a time
    for _ in range(200):
        if calls:
            break
        threading.Event().wait(0.01)
    def stop():
        with app.app_context():
            d.stop()

    stopping = threading.Thread(target=stop)
    stopping.start()
    for _ in range(200):  # stop() has given the rows back before it waits for the call in flight
        db.session.expire_all()
        if db.session.scalar(sa.select(sa.func.count()).where(OutboundMessage.reason == "returned")):
            break
        threading.Event().wait(0.01)
    release.set()
    stopping.join(20)
    db.session.expire_all()
    rows = db.session.scalars(sa.select(OutboundMessage)).all()
    assert len(calls) == 1
    assert sorted(r.status for r in rows) == ["pending"] * 11 + ["queued"]
    back = [r for r in rows if r.status == "pending" and r.reason == "returned"]
    # Four claimed (a claim takes no more than the pool has room for), one called, three given back.
    assert len(back) == 3 and all(r.attempts == 0 and r.claimed_by is None for r in back)
    assert not [r for r in rows if r.status in ("sending", "uncertain")]


# --- 3. the cap across workers ----------------------------------------------------------------------------

def _slow_sender(cap: int):
    from whp_c4d.demo import fictional_numbers
    from whp_c4d.messaging.services import save_sender

    sender = save_sender(None, name="GT lento", channel="sms", from_address=fictional_numbers("GT", 1, start=990)[0],
                         countries=["GT"], cap_per_second=cap)
    db.session.commit()
    return sender


def test_slots_are_booked_from_the_time_the_budget_is_locked_not_the_ticks(app, audience, dispatchers):
    """Case 3: a tick whose clock was read before a slow query booked slots in the past, and they all
    left at once, on top of another worker's. Slots start from the time the sender's row is locked."""
    from whp_c4d.messaging.dispatcher import TickStats

    author, _contacts = audience
    _slow_sender(10)
    _due_now(_campaign(author))
    d = dispatchers()
    before = utcnow()
    jobs = d._claim(before - timedelta(seconds=0.5), TickStats(), pace=True)  # a tick begun half a second ago
    assert len(jobs) == 10
    slots = [job.not_before for job in jobs]
    assert min(slots) >= before and slots == sorted(slots)
    gaps = {round((b - a).total_seconds(), 4) for a, b in zip(slots, slots[1:], strict=False)}
    assert gaps == {round(1 / (10 * 0.98), 4)}  # 2 % under the cap: room for the way to Twilio


def test_a_job_that_comes_late_books_a_new_slot_in_the_shared_budget(app, audience, dispatchers):
    """Case 3: a job released after its slot used to go at once; with other workers sending in the slots
    around it, Twilio saw 83 in one second at cap 50. It now takes the sender's next free slot."""
    from whp_c4d.messaging.dispatcher import TickStats
    from whp_c4d.messaging.models import SenderBudget

    if db.engine.dialect.name != "postgresql":
        pytest.skip("one dispatcher on SQLite: its in-process spacing covers lateness")
    author, _contacts = audience
    sender = _slow_sender(10)
    _due_now(_campaign(author))
    d = dispatchers()
    [job, *_rest] = d._claim(utcnow(), TickStats(), pace=True)
    job.not_before -= timedelta(seconds=2)  # as if it had waited two seconds for a thread
    booked = db.session.get(SenderBudget, str(sender.id)).window_start
    d._pace(job)
    left = utcnow()
    db.session.expire_all()
    after = db.session.get(SenderBudget, str(sender.id)).window_start
    assert after - booked == timedelta(seconds=job.step)  # one more slot, after everything booked
    assert left >= booked  # it left at its new slot, not at once


# --- a job whose row was erased -------------------------------------------------------------------------

def test_a_job_whose_person_was_erased_never_goes_even_if_its_row_id_is_taken_again(app, audience, dispatchers):
    """Found by the state machine (test_outbox_machine.py): a person is erased while their message waits
    for its slot; on SQLite the next row may take the freed id, and the waiting job passed the last
    check as if that row were its own, and sent the erased person's message. The claim is the token."""
    from whp_c4d.audience.erasure import erase_contact
    from whp_c4d.messaging.dispatcher import TickStats

    author, contacts = audience
    _due_now(_campaign(author))
    d = dispatchers()
    jobs = d._claim(utcnow(), TickStats())
    job = jobs[0]
    erase_contact(db.session.get(type(contacts[0]), job.contact_id), None)
    db.session.commit()
    assert db.session.get(OutboundMessage, job.message_id) is None
    other = db.session.scalars(sa.select(OutboundMessage).where(OutboundMessage.status == "sending")).first()
    columns = {c.name: getattr(other, c.name) for c in OutboundMessage.__table__.columns if c.name != "id"}
    db.session.execute(sa.insert(OutboundMessage).values(id=job.message_id, **{**columns, "occurrence": "x"}))
    db.session.commit()  # the freed id, taken by a row of someone else, claimed by this same dispatcher
    assert d._check(job) == "stale"
